"""Plugin output (print, sys.stderr, logging, warnings, tracebacks of a
plugin's threads) reaches the Director in the job it belongs to: text
without a final newline goes out when the plugin's call or job ends, never
at the start of another job's message, and in interpreter=main a plugin's
own threads are attributed like the plugin's calls.  Through the real shim
(the main interpreter is pytest's own in-process)."""

from __future__ import annotations

import textwrap

import pytest


PARTIAL = """
    import sys
    import bareosdir

    def load_bareos_plugin(plugindef):
        bareosdir.RegisterEvents([bareosdir.bDirEventJobRun,
                                  bareosdir.bDirEventJobEnd])
        return 0

    def parse_plugin_definition(plugindef):
        return 0

    def handle_plugin_event(event):
        jobid = bareosdir.GetValue(bareosdir.bDirVarJobId)
        if event == bareosdir.bDirEventJobRun:
            sys.stderr.write("JOB%d-PARTIAL-STDERR" % jobid)
            sys.stdout.write("JOB%d-PARTIAL-STDOUT" % jobid)
        else:
            sys.stderr.write("JOB%d-" % jobid)
            sys.stderr.write("LINE\\n")
        return 0
"""


@pytest.mark.parametrize("mode", ["isolated", "main"])
def test_text_without_newline_stays_in_its_job(site, mode):
    name = site.write_plugin("partial", PARTIAL)
    conf = site.config([f"python:module_path={site.module_path}"
                        f":module_name={name}:interpreter={mode}"])
    r = site.run(conf, "--jobs", "3", "-d", "100")
    assert r.returncode == 0, r.all_output
    for jobid in (1, 2, 3):
        texts = [t for _j, t in r.job_lines(jobid)]
        assert texts == [f"Warning: JOB{jobid}-PARTIAL-STDERR",
                         f"Warning: JOB{jobid}-LINE"], \
            r.all_output
    debug = r.stderr.splitlines()
    for jobid in (1, 2, 3):
        assert sum(line.endswith(f" JOB{jobid}-PARTIAL-STDOUT")
                   for line in debug) == 1, r.stderr


THREADED = """
    import logging, sys, threading, warnings
    import bareosdir

    def work(jobid):
        print("T%d-PRINT" % jobid)
        sys.stderr.write("T%d-STDERR\\n" % jobid)
        logging.getLogger("thr").warning("T%d-LOG" % jobid)
        warnings.warn("T%d-WARN" % jobid)
        sys.stderr.write("T%d-PARTIAL" % jobid)
        raise ValueError("T%d-EXC" % jobid)

    def load_bareos_plugin(plugindef):
        bareosdir.RegisterEvents([bareosdir.bDirEventJobEnd])
        return 0

    def parse_plugin_definition(plugindef):
        return 0

    def handle_plugin_event(event):
        jobid = bareosdir.GetValue(bareosdir.bDirVarJobId)
        t = threading.Thread(target=work, args=(jobid,))
        t.start()
        t.join(60)
        return 0
"""


@pytest.mark.parametrize("mode", ["isolated", "main"])
def test_plugin_threads_output_is_attributed_to_its_job(site, mode):
    name = site.write_plugin("threaded", THREADED)
    conf = site.config([f"python:module_path={site.module_path}"
                        f":module_name={name}:interpreter={mode}"])
    r = site.run(conf, "--jobs", "2", "-d", "100")
    for jobid in (1, 2):
        text = "\n".join(t for _j, t in r.job_lines(jobid))
        for want in (f"T{jobid}-STDERR", f"thr: T{jobid}-LOG",
                     f"T{jobid}-WARN", f"T{jobid}-PARTIAL",
                     f"ValueError: T{jobid}-EXC"):
            assert want in text, (want, r.all_output)
        assert "Traceback (most recent call last)" in text
    # nothing of theirs in another job or the Director's own log
    for jobid, text in r.job_lines():
        assert f"T{3 - jobid}-" not in text, r.all_output
    others = [l for l in r.stdout.splitlines() if "JobId" not in l]
    assert not any("T1-" in l or "T2-" in l for l in others), r.stdout
    debug = r.stderr.splitlines()
    for jobid in (1, 2):
        assert any(l.endswith(f"T{jobid}-PRINT") for l in debug), r.stderr


LATE_PARTIAL = """
    import os, sys, threading, time
    import bareosdir

    GO, DONE = {go!r}, {done!r}

    def late():
        deadline = time.monotonic() + 30
        while not os.path.exists(GO) and time.monotonic() < deadline:
            time.sleep(0.01)
        sys.stderr.write("LATE-PARTIAL")
        open(DONE, "w").close()

    def load_bareos_plugin(plugindef):
        bareosdir.RegisterEvents([bareosdir.bDirEventJobEnd])
        return 0

    def parse_plugin_definition(plugindef):
        return 0

    def handle_plugin_event(event):
        threading.Thread(target=late).start()
        return 0
"""


def test_text_without_newline_after_the_last_call_ends_its_job(director,
                                                               tmp_path):
    """Written by the plugin's thread after its last event: sent when the
    job's plugin is freed, in that job (isolated; the mock Director)."""
    import time

    import bareosdir

    go, done = tmp_path / "go", tmp_path / "done"
    (tmp_path / "late.py").write_text(textwrap.dedent(
        LATE_PARTIAL.format(go=str(go), done=str(done))))
    job = director.job("BackupClient1")
    job.new_plugins()
    job.plugin_options(f"python:module_path={tmp_path}:module_name=late")
    assert job.event(bareosdir.bDirEventJobEnd) == bareosdir.bRC_OK
    go.touch()
    deadline = time.monotonic() + 30
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done.exists()
    job.free_plugins()
    assert [(m.type, m.text) for m in job.messages] == [
        (bareosdir.M_WARNING, "LATE-PARTIAL\n")]
    assert not any("LATE" in m.text for m in director.messages)

