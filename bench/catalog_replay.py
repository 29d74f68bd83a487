#!/usr/bin/env python3
"""Benchmark of bareosdir-sim --catalog: jobs replayed per second with the
bundled class plugin, and the simulator's peak RSS, against a private
PostgreSQL filled with generated jobs (tests/catalogdb.py).

Usage (after tools/setup.sh --test, from the repository):
    .venv/bin/python bench/catalog_replay.py [--jobs 10000] [--repeat 3]
Prints one line per run and the median, and the simulator's command line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
os.environ.setdefault("BAREOSDIR_BUILD", os.path.join(REPO, "build"))

import catalogdb  # noqa: E402
from servers import Simulator  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with catalogdb.PostgresServer() as pg, \
            tempfile.TemporaryDirectory() as work:
        pg.create_roles()
        pg.create_catalog("bench")
        pg.copy_rows("bench", "Client", ("ClientId", "Name", "UName"),
                     [(1, "client1-fd", "u")])
        pg.copy_rows("bench", "Pool", ("PoolId", "Name", "LabelFormat"),
                     [(1, "Full", "f")])
        pg.copy_rows("bench", "Job", catalogdb.JOB_COLUMNS,
                     [catalogdb.job_row(i, "BackupClient1",
                                        status="TWE"[i % 3], bytes=i * 4096)
                      for i in range(1, args.jobs + 1)])
        sim = Simulator(work)
        reason = sim.missing_reason()
        if reason:
            sys.exit("bench: " + reason)
        sim.configure('Job {\n  Name = "BackupClient1"\n'
                      '  JobDefs = DefaultJob\n  Dir Plugin Options = '
                      '"python3:module_name=bareos-dir-class-plugin"\n}\n')
        os.remove(os.path.join(sim.config_dir, "job",
                               "backup-bareos-fd.conf"))
        with open(os.path.join(sim.config_dir, "catalog",
                               "MyCatalog.conf"), "w") as f:
            f.write('Catalog {\n  Name = MyCatalog\n  DB Name = bench\n'
                    '  DB User = %s\n  DB Password = "%s"\n'
                    '  DB Address = 127.0.0.1\n  DB Port = %d\n}\n'
                    % (catalogdb.READER, catalogdb.READER_PASSWORD, pg.port))
        command = [sim.binary, "-c", sim.workdir, "--catalog"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "PG"))}
        rates, rss = [], []
        for run in range(args.repeat):
            started = time.monotonic()
            status, odd, tail, peak = catalogdb.run_with_peak_rss(
                command, env=env, cwd=sim.workdir,
                keep=lambda line: b"values" not in line and (
                    b"FAILED" in line or b"rror" in line))
            took = time.monotonic() - started
            if status != 0 or ("%d replayed: %d OK" % (
                    args.jobs, args.jobs)) not in tail:
                sys.exit("bench: the replay failed (%d): %s%s"
                         % (status, "".join(odd), tail))
            rates.append(args.jobs / took)
            rss.append(peak / 1024)
            print("run %d: %d jobs in %.2f s = %.0f jobs/s, peak RSS %.1f MiB"
                  % (run + 1, args.jobs, took, rates[-1], rss[-1]))
        print("catalog replay, class plugin, %d jobs: median %.0f jobs/s, "
              "peak RSS %.1f MiB (max of %d runs)"
              % (args.jobs, statistics.median(rates), max(rss), args.repeat))
        print("reproduce: .venv/bin/python bench/catalog_replay.py --jobs %d"
              " --repeat %d   (runs: %s)"
              % (args.jobs, args.repeat, " ".join(command)))


if __name__ == "__main__":
    main()
