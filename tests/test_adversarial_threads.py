"""Adversarial plugins against the Director's threads, through the real
shim under bareosdir-sim: plugins that hold the GIL, leave threads behind,
block at exit or touch signals must not stop other jobs, grow memory or
hang unloadPlugin.  Bounds here are generous "does not hang" limits; the
figures belong in bench/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shimutil import Site


def notes(path: Path) -> list[tuple[float, str]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        t, _, text = line.partition(" ")
        out.append((float(t), text))
    return out


# Job 1 holds the GIL (a pure-Python loop in an event, or a thread that
# spins for good); every other job sleeps 50 ms per event and notes it.
HOG = """
    import bareosdir, os, threading, time
    LOG = {log!r}
    def note(text):
        with open(LOG, "a") as f:
            f.write(f"{{time.monotonic():.4f}} {{text}}\\n")
    def spin():
        while True:
            pass
    def load_bareos_plugin(d):
        bareosdir.RegisterEvents([1, 2, 3, 4])
        return 0
    def parse_plugin_definition(d): return 0
    def handle_plugin_event(e):
        jobid = bareosdir.GetValue(bareosdir.bDirVarJobId)
        if jobid == 1 and e == 4:
            note("hog-start")
            if {mode!r} == "loop":
                end = time.monotonic() + 5
                while time.monotonic() < end:
                    pass
            else:
                threading.Thread(target=spin, daemon=True).start()
            note("hog-end")
        elif jobid != 1:
            time.sleep(0.05)
            note(f"event {{jobid}} {{e}}")
        return 0
"""


def hog_site(site: Site, mode: str, interp: str = "isolated"):
    log = site.root / "notes.txt"
    name = site.write_plugin("hog", HOG.format(log=str(log), mode=mode))
    conf = site.config([f"python:module_path={site.module_path}:"
                        f"module_name={name}:interpreter={interp}"])
    return conf, log


def test_cpu_bound_plugin_does_not_starve_other_interpreters(site):
    """Python 3.11 asks a GIL holder to switch only through the waiter's
    own interpreter: without the nudger, 1 event of the other jobs
    completed during the 5 s loop."""
    conf, log = hog_site(site, "loop")
    r = site.run(conf, "--jobs", "80", "--concurrent", "2",
                 env={"BAREOSDIR_UNLOAD_WAIT": "1"}, timeout=120)
    assert r.returncode == 0, r.all_output
    seen = notes(log)
    start = next(t for t, x in seen if x == "hog-start")
    end = next(t for t, x in seen if x == "hog-end")
    during = [x for t, x in seen if x.startswith("event") and start < t < end]
    assert end - start >= 5
    assert len(during) >= 30, f"{len(during)} events during the loop"


def test_spinning_plugin_thread_does_not_stop_later_jobs(site):
    conf, log = hog_site(site, "spin")
    t0 = time.monotonic()
    r = site.run(conf, "--jobs", "7", "-d", "50",
                 env={"BAREOSDIR_UNLOAD_WAIT": "1"}, timeout=120)
    assert r.returncode == 0, r.all_output
    assert "7 of 7 jobs OK" in r.stdout
    seen = notes(log)
    spun = next(t for t, x in seen if x == "hog-end")
    last = max(t for t, x in seen if x.startswith("event 7 "))
    assert last - spun < 10, f"6 jobs took {last - spun:.1f} s"
    # The whole run, unload included, ends although the thread never does.
    assert time.monotonic() - t0 < 60


def run_timing_unload(site: Site, conf: Path, *args: str, env: dict):
    """Runs the sim with -d 50; returns (result, seconds from the start of
    unloadPlugin to the end of the process)."""
    import os
    import subprocess
    import threading

    from shimutil import BUILD, SimResult

    e = dict(os.environ)
    e.pop("PYTHONPATH", None)
    e.update(env)
    p = subprocess.Popen([str(BUILD / "bareosdir-sim"), "-c", str(conf),
                          "-j", "BackupClient1", "-d", "50", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=e)
    err: list[str] = []
    unloading: list[float] = []

    def read() -> None:
        for line in p.stderr:
            if "unloading plugin" in line:
                unloading.append(time.monotonic())
            err.append(line)

    t = threading.Thread(target=read)
    t.start()
    try:
        out = p.stdout.read()
        p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        t.join()
    ended = time.monotonic()
    took = ended - unloading[0] if unloading else float("inf")
    return SimResult(p.returncode, out, "".join(err)), took


LEFTOVER = """
    import atexit, bareosdir, threading, time
    def block():
        threading.Event().wait(600)
    def spin():
        while True:
            pass
    def load_bareos_plugin(d):
        what = {what!r}
        if what == "atexit":
            atexit.register(block)
        elif what == "thread" and bareosdir.GetValue(bareosdir.bDirVarJobId) == 1:
            threading.Thread(target=block).start()      # not a daemon
        elif what == "spin" and bareosdir.GetValue(bareosdir.bDirVarJobId) == 1:
            threading.Thread(target=spin, daemon=True).start()
        bareosdir.RegisterEvents([2])
        return 0
    def parse_plugin_definition(d): return 0
    def handle_plugin_event(e): return 0
"""


@pytest.mark.parametrize("what,mode", [
    ("atexit", "isolated"), ("atexit", "main"), ("thread", "main"),
    ("thread", "isolated"), ("spin", "main"), ("spin", "isolated")])
def test_unload_is_bounded_whatever_plugins_left(site, what, mode):
    """Blocking atexit callbacks (one per job in reused interpreters), a
    non-daemon thread that Py_FinalizeEx would join, a thread that never
    lets go of the GIL: unloadPlugin returns within
    BAREOSDIR_UNLOAD_WAIT + 1 s, finalization included, and says what it
    skipped at debug level 50."""
    name = site.write_plugin("leftover", LEFTOVER.format(what=what))
    conf = site.config([f"python:module_path={site.module_path}:"
                        f"module_name={name}:interpreter={mode}"],
                       name=f"c-{what}-{mode}")
    r, took = run_timing_unload(site, conf, "--jobs", "3", env={
        "BAREOSDIR_UNLOAD_WAIT": "0.5", "BAREOSDIR_THREAD_WAIT": "0.1"})
    assert r.returncode == 0, r.all_output
    assert "3 of 3 jobs OK" in r.stdout
    assert took < 1.5, f"unload took {took:.2f} s"
    report = next(line for line in r.stderr.splitlines()
                  if "bareosdir: unload:" in line)
    if what == "atexit":
        assert "3 atexit callback(s) of plugins dropped unrun" in report \
            or mode == "isolated" and "atexit callback(s)" in report
    elif mode == "main":
        assert "1 plugin thread(s) in the main interpreter" in report
        assert "Python is not finalized" in report
    else:
        assert "1 interpreter(s) left running with plugin threads " \
               "(modules: leftover)" in report


def test_unload_waits_for_threads_about_to_end(site):
    """Threads that end within BAREOSDIR_UNLOAD_WAIT do not keep Python
    from being finalized."""
    name = site.write_plugin("late", LATE.format(late=0.5))
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}"])
    r, took = run_timing_unload(site, conf, "--jobs", "2", env={
        "BAREOSDIR_UNLOAD_WAIT": "5", "BAREOSDIR_THREAD_WAIT": "0.02"})
    assert r.returncode == 0, r.all_output
    assert "0 interpreter(s) left running" in r.stderr, r.stderr
    assert "unloaded, finalizing Python" in r.stderr
    assert took < 6


LATE = """
    import bareosdir, threading, time
    def late():
        time.sleep({late})
    def load_bareos_plugin(d):
        threading.Thread(target=late, daemon=True).start()
        bareosdir.RegisterEvents([2])
        return 0
    def parse_plugin_definition(d): return 0
    def handle_plugin_event(e): return 0
"""


def test_set_aside_interpreters_are_reclaimed_when_their_threads_end():
    """Threads ending 0.3 s after their job (past BAREOSDIR_THREAD_WAIT):
    their interpreters are ended once the threads are gone, with no later
    release or unbind needed."""
    import bareosdir
    import os
    import tempfile
    from bareosdir.testing import Director

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "late.py").write_text(
            __import__("textwrap").dedent(LATE.format(late=0.3)))
        os.environ["BAREOSDIR_THREAD_WAIT"] = "0.02"
        try:
            with Director() as director:
                for _ in range(5):
                    director.job().run([f"python:module_path={d}:module_name=late"])
                assert bareosdir._bareosdir._stats()["set_aside"] >= 1
                deadline = time.monotonic() + 20
                while bareosdir._bareosdir._stats()["set_aside"] and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)
                # Still bound: nothing else ended them.
                assert bareosdir._bareosdir._stats()["binds"] >= 1
                assert bareosdir._bareosdir._stats()["set_aside"] == 0
        finally:
            del os.environ["BAREOSDIR_THREAD_WAIT"]


def test_bound_on_set_aside_interpreters_names_the_plugin(site):
    """At BAREOSDIR_ASIDE_MAX, a new instance of the plugin holding them
    fails to load with a job message naming it and the bound."""
    site.write_plugin("late", LATE.format(late=30))
    conf = site.config([f"python:module_path={site.module_path}:module_name=late"],
                       name="late")
    r = site.run(conf, "--jobs", "4", env={"BAREOSDIR_ASIDE_MAX": "2",
                                           "BAREOSDIR_THREAD_WAIT": "0.02",
                                           "BAREOSDIR_UNLOAD_WAIT": "0.5"})
    failed = [t for j, t in r.job_lines() if "BAREOSDIR_ASIDE_MAX=2" in t]
    assert failed, r.all_output
    assert "'late'" in failed[0] and "set aside" in failed[0]
    assert "2 of 4 jobs OK" in r.stdout
    print(failed[0])


def test_shim_messages_name_the_file_loaded(site, tmp_path):
    """python3-dir.so says python3-dir:, not python-dir:."""
    import shutil

    conf = site.config([f"python:module_path={site.module_path}:"
                        "module_name=nothing-here"], plugin_names='"python3"',
                       name="p3")
    r = site.run(conf, "-d", "50")
    assert "python3-dir: unloaded" in r.stderr, r.all_output
    assert "python-dir: unloaded" not in r.stderr
    # A failed load, from a copy alone in a directory without bareosdir.
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(site.plugin_dir / "python3-dir.so", lone / "python3-dir.so")
    (tmp_path / "lone-site").mkdir()
    lone_site = Site(tmp_path / "lone-site", lone)
    conf = lone_site.config(["python:module_name=x"], plugin_names='"python3"')
    r = lone_site.run(conf)
    assert "python3-dir: cannot load the bareosdir package" in r.all_output, r.all_output
    assert "python-dir:" not in r.all_output


def test_many_path_entries_cost_linear_time(site, tmp_path):
    """2,000 BAREOSDIR_PATH entries: each new interpreter used to rebuild
    the known-path set from the whole sys.path for every entry (4 new
    interpreters took over a minute with 1,000); now one pass."""
    # Short names: one environment string may hold at most 128 KiB.
    dirs = [f"/nonexistent-bareosdir/{i}" for i in range(2000)]
    out = tmp_path / "seen.txt"
    site.write_plugin("pathcheck", f"""
        import bareosdir, sys
        def load_bareos_plugin(d):
            with open({str(out)!r}, "a") as f:
                f.write(f"{{{dirs[-1]!r} in sys.path}} {{len(sys.path)}}\\n")
            return 0
        def parse_plugin_definition(d): return 0
        def handle_plugin_event(e): return 0
    """)
    conf = site.config([f"python:module_path={site.module_path}:module_name=pathcheck"])
    t0 = time.monotonic()
    r = site.run(conf, "--jobs", "4", "--concurrent", "4",
                 env={"BAREOSDIR_PATH": ":".join(dirs)})
    took = time.monotonic() - t0
    assert r.returncode == 0, r.all_output
    lines = out.read_text().split("\n")[:-1]
    assert len(lines) == 4 and all(x.startswith("True ") for x in lines)
    assert all(int(x.split()[1]) >= 2000 for x in lines)
    assert took < 30, f"{took:.1f} s"


SIGNALS = """
    import bareosdir
    OUT = {out!r}
    def status():
        fields = {{}}
        with open("/proc/thread-self/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("SigBlk", "SigIgn", "SigCgt"):
                    fields[k] = v.strip()
        return fields
    def note(what):
        with open(OUT, "a") as f:
            f.write(what + " " + repr(status()) + "\\n")
    def load_bareos_plugin(d):
        note("load")
        import {modules}
        note("imported")
        bareosdir.RegisterEvents([bareosdir.bDirEventJobRun])
        return 0
    def parse_plugin_definition(d): return 0
    def handle_plugin_event(e):
        note("event")
        return 0
"""


@pytest.mark.parametrize("mode", ["isolated", "main"])
@pytest.mark.parametrize("modules", ["signal", "subprocess", "asyncio",
                                     "subprocess, signal, asyncio, threading"])
def test_plugin_imports_leave_the_directors_signals_alone(site, mode, modules):
    """Importing signal (also through subprocess or asyncio) in the main
    interpreter made CPython install its SIGINT handler: SIGINT no longer
    stopped the Director.  Dispositions (SigCgt, SigIgn) and the Director
    thread's mask (SigBlk) stay as they were before any plugin code ran."""
    import ast

    out = site.root / f"sig-{mode}.txt"
    name = site.write_plugin("sigs", SIGNALS.format(out=str(out), modules=modules))
    conf = site.config([f"python:module_path={site.module_path}:"
                        f"module_name={name}:interpreter={mode}"], name=f"s-{mode}")
    r = site.run(conf, "--jobs", "2")
    assert r.returncode == 0, r.all_output
    seen = [(line.split(" ", 1)[0], ast.literal_eval(line.split(" ", 1)[1]))
            for line in out.read_text().splitlines()]
    first = seen[0][1]
    for what, fields in seen:
        assert fields == first, (what, fields, first)
    # Nor did starting Python: the simulator catches and ignores none of
    # the signals CPython would take (a sanitizer's SIGSEGV/SIGBUS/SIGFPE
    # handlers and glibc's real-time ones are not ours).
    import signal
    theirs = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE,
              signal.SIGTERM, signal.SIGCHLD, signal.SIGXFSZ)
    mask = sum(1 << (s - 1) for s in theirs)
    taken = int(first["SigCgt"], 16) | int(first["SigIgn"], 16)
    assert taken & mask == 0, first


def test_multiprocessing_in_isolated_mode_fails_at_once_or_spawns(site):
    """A fork()ed child of a sub-interpreter dies at once (Python 3.11), so
    Pool() with the default start method hung the job: it now fails at
    once with a clear error, and the 'spawn' context works."""
    out = site.root / "mp.txt"
    site.write_plugin("mp", f"""
        import bareosdir, multiprocessing, os
        def square(x):
            return x * x
        def load_bareos_plugin(d):
            lines = []
            try:
                with multiprocessing.Pool(2) as pool:
                    lines.append("fork pool: " + repr(pool.map(square, [1, 2])))
            except RuntimeError as e:
                lines.append("fork pool refused: " + str(e))
            try:
                os.fork()
                lines.append("os.fork returned")
            except RuntimeError as e:
                lines.append("os.fork refused")
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(2) as pool:
                lines.append("spawn pool: " + repr(pool.map(square, [3, 4])))
            with open({str(out)!r}, "w") as f:
                f.write("\\n".join(lines) + "\\n")
            return 0
        def parse_plugin_definition(d): return 0
        def handle_plugin_event(e): return 0
    """)
    conf = site.config([f"python:module_path={site.module_path}:module_name=mp"])
    t0 = time.monotonic()
    r = site.run(conf, timeout=120)
    assert r.returncode == 0, r.all_output
    text = out.read_text()
    assert "fork pool refused: fork() is not available in an isolated plugin " \
           "interpreter" in text and "'spawn'" in text, text
    assert "os.fork refused" in text
    assert "spawn pool: [9, 16]" in text
    assert time.monotonic() - t0 < 60
