"""Runs bareosdir-sim under valgrind for tools/test-valgrind.sh."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("BAREOSDIR_BUILD", ROOT / "build"))
JOBS = int(os.environ.get("BAREOSDIR_VALGRIND_JOBS", "200"))
OURS = re.compile(r"\((?:python-dir|module|engine|interp|errors|testing|options|"
                  r"director_model|bareosdir-sim|config)\.c:\d+\)")

PLUGIN = """
import bareosdir
def load_bareos_plugin(d):
    bareosdir.RegisterEvents([1, 2, 3, 4])
    return 0
def parse_plugin_definition(d): return 0
def handle_plugin_event(e):
    if e == 2:
        bareosdir.JobMessage(bareosdir.M_INFO, "job %d done" % bareosdir.GetValue(bareosdir.bDirVarJobId))
    return 0
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(tmp / "p")],
                       check=True, capture_output=True)
        plugdir = tmp / "p" / "lib" / "bareos" / "plugins"
        (tmp / "vgplugin.py").write_text(PLUGIN)
        failed = False
        for mode in ("isolated", "main"):
            conf = tmp / f"{mode}.conf"
            opts = f"python:module_path={tmp}:module_name=vgplugin:interpreter={mode}"
            conf.write_text(
                "Director {\n Name = bareos-dir\n Password = x\n"
                f" Plugin Directory = {plugdir}\n Plugin Names = \"python\"\n}}\n"
                "Job {\n Name = J\n Type = Backup\n"
                f' Dir Plugin Options = "{opts}:instance=0"\n'
                f' Dir Plugin Options = "{opts}:instance=1"\n}}\n')
            log = Path(os.environ.get("BAREOSDIR_VALGRIND_LOG", tmp)) / f"vg-{mode}.log"
            env = dict(os.environ, PYTHONMALLOC="malloc")
            r = subprocess.run(
                ["valgrind", "--tool=memcheck", "--leak-check=full",
                 "--show-leak-kinds=definite", "--num-callers=40",
                 f"--log-file={log}", str(BUILD / "bareosdir-sim"), "-c", str(conf),
                 "-j", "J", "--jobs", str(JOBS), "--concurrent", "4"],
                capture_output=True, text=True, env=env, timeout=3000)
            text = log.read_text()
            done = r.stdout.count(" done")
            records = re.split(r"\n==\d+== *\n", text)
            ours_leaks = [b for b in records
                          if "definitely lost" in b and OURS.search(b)]
            # Invalid accesses count when our code is anywhere on the stack;
            # uses of uninitialised values only when our code is where the
            # value is used (CPython has known ones of its own, e.g. in
            # _PyLong_FromByteArray over getrandom() data).
            ours_errors = []
            for b in records:
                if re.search(r"Invalid (read|write|free)|Mismatched free", b) and OURS.search(b):
                    ours_errors.append(b)
                elif "uninitialised" in b:
                    at = [l for l in b.splitlines() if " at 0x" in l][:1]
                    if at and OURS.search(at[0]):
                        ours_errors.append(b)
            summary = [l for l in text.splitlines() if "definitely lost:" in l or "ERROR SUMMARY" in l]
            print(f"== {mode}: sim exit {r.returncode}, {done}/{2 * JOBS} job messages; "
                  + "; ".join(s.split("== ")[-1] for s in summary))
            for b in ours_leaks + ours_errors:
                print(b)
            if r.returncode != 0 or done != 2 * JOBS or ours_leaks or ours_errors:
                failed = True
                if r.returncode != 0:
                    print(r.stdout[-2000:], r.stderr[-2000:])
        print("valgrind: " + ("FAILED" if failed else "no errors and no definite leaks in our code"))
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
