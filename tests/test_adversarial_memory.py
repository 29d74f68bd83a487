"""Adversarial tests of the host's memory safety: texts of every length
around every buffer the host once had (module names of 1 to 5000
characters through every entry point that reports them), exception texts
that have no UTF-8 form, messages with many trailing newlines, plugin
threads still inside a Director callback when their job is freed, and kept
or forged instance markers in the main interpreter.  Each runs through
bareosdir.testing in this process (which the sanitizer stage runs under
ASan+UBSan) and, where the path differs, through the real shim loaded by
bareosdir-sim.

A heap overflow here used to abort the process ("malloc(): invalid size"),
so a test that "only" checks the message text also checks that the process
survived it."""

from __future__ import annotations

import os
import re
import textwrap
import time
from pathlib import Path

import pytest

import bareosdir
from bareosdir.testing import Director

ROOT = Path(__file__).resolve().parent.parent

# Lengths around every buffer the host formatted into (128, 200, 220, 230,
# 256, 512, 1024, 2048) and well past them.
LENGTHS = sorted({1, 2, 100, 127, 128, 129, 199, 200, 201, 219, 220, 221,
                  229, 230, 231, 232, 250, 251})
# Module names longer than a file name can be (255 bytes) exist only as
# dotted names or not at all.
LONG_LENGTHS = [255, 256, 257, 511, 512, 513, 600, 1023, 1024, 1025, 2047,
                2048, 2049, 5000]

M_FATAL = bareosdir.M_FATAL


def name_of(n: int, tag: str = "m") -> str:
    """A valid module name of exactly n characters."""
    return (tag + "x" * n)[:n]


def options(path: Path, name: str, mode: str, extra: str = "",
            prefix: str = "python") -> str:
    opts = f"{prefix}:module_path={path}:module_name={name}"
    if mode != "isolated":
        opts += f":interpreter={mode}"
    return opts + (":" + extra if extra else "")


def run(director: Director, opts: list[str] | str, jobid: int | None = None):
    job = director.job("BackupClient1", jobid=jobid)
    job.run(opts if isinstance(opts, list) else [opts])
    return job


def fatal_texts(job) -> list[str]:
    return [m.text for m in job.messages if m.type == M_FATAL]


def check_report(text: str, name: str) -> None:
    """One well-formed report about module `name`: the whole name, no bytes
    from elsewhere (the stack, the heap) in it."""
    assert text.startswith(f"python-dir: {name} (instance 0): "), text[:300]
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), text


@pytest.fixture(params=["isolated", "main"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def director():
    with Director() as d:
        yield d


def test_the_extension_under_test_is_the_build_under_test():
    """Under the sanitizer stage (PYTHONPATH=build-asan/plugins) these tests
    must run the sanitized extension, not the checkout's own copy."""
    from bareosdir import _bareosdir
    first = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
    if first:
        assert Path(_bareosdir.__file__).resolve().is_relative_to(
            Path(first).resolve()), (_bareosdir.__file__, first)


# ---- point 1: long module names through every reporting path ----

@pytest.mark.parametrize("n", LENGTHS + LONG_LENGTHS)
def test_module_not_found_with_a_name_of_any_length(director, tmp_path, mode, n):
    name = name_of(n)
    job = run(director, options(tmp_path, name, mode))
    texts = fatal_texts(job)
    assert len(texts) == 1, texts
    check_report(texts[0], name)
    assert f"module '{name}'" in texts[0], texts[0][:400]
    assert f" {name}.py " in texts[0], texts[0][-400:]


@pytest.mark.parametrize("n", LENGTHS)
def test_module_without_entry_points_with_a_name_of_any_length(
        director, tmp_path, mode, n):
    name = name_of(n)
    (tmp_path / f"{name}.py").write_text("x = 1\n")
    job = run(director, options(tmp_path, name, mode))
    texts = fatal_texts(job)
    assert len(texts) == 1, texts
    check_report(texts[0], name)
    assert f"plugin module '{name}' has no load_bareos_plugin() function" \
        in texts[0]


@pytest.mark.parametrize("n", LENGTHS)
def test_exception_and_bad_answer_with_a_name_of_any_length(
        director, tmp_path, mode, n):
    """bd_err_report (a raising entry point) and bd_err_result (a junk
    answer), both with the module name in the summary line."""
    name = name_of(n)
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        import bareosdir
        def load_bareos_plugin(d):
            bareosdir.RegisterEvents([1, 2])
            return 0
        def parse_plugin_definition(d):
            return 0
        def handle_plugin_event(e):
            if e == 1:
                raise ValueError("boom " + "y" * 3000)
            return "junk"
        """))
    job = run(director, options(tmp_path, name, mode))
    texts = fatal_texts(job)
    assert len(texts) == 2, texts
    for t in texts:
        check_report(t, name)
    assert "ValueError: boom " + "y" * 3000 in texts[0]
    assert "returned 'junk' (str), not a bRC value" in texts[1]


@pytest.mark.parametrize("n", [230, 300, 600, 1100, 2100])
def test_long_dotted_module_names(director, tmp_path, mode, n):
    """Dotted names longer than any file name: one that does not exist,
    and one that exists but has no load_bareos_plugin."""
    parts = [name_of(min(200, n - 201 * i), f"p{i}") for i in range(n // 201 + 1)
             if n - 201 * i > 0]
    dotted = ".".join(parts)
    job = run(director, options(tmp_path, dotted, mode))
    texts = fatal_texts(job)
    assert len(texts) == 1
    check_report(texts[0], dotted)

    d = tmp_path
    for p in parts[:-1]:
        d = d / p
        d.mkdir()
        (d / "__init__.py").write_text("")
    (d / f"{parts[-1]}.py").write_text("x = 1\n")
    job = run(director, options(tmp_path, dotted, mode))
    texts = fatal_texts(job)
    assert len(texts) == 1, texts
    check_report(texts[0], dotted)
    if mode == "isolated":
        assert "has no load_bareos_plugin() function" in texts[0]


def test_huge_report_is_cut_with_a_mark_not_dropped(director, tmp_path, mode):
    """A traceback larger than the host's bound (64 KiB) still arrives, cut
    and marked, with its summary line."""
    (tmp_path / "huge.py").write_text(textwrap.dedent("""
        def load_bareos_plugin(d):
            raise RuntimeError("z" * 200000)
        """))
    job = run(director, options(tmp_path, "huge", mode))
    texts = fatal_texts(job)
    assert len(texts) == 1
    check_report(texts[0], "huge")
    assert 60000 < len(texts[0]) <= 64 * 1024 + 1
    assert texts[0].endswith("...\n")


def test_long_names_and_options_through_the_real_shim(sim, tmp_path):
    """The same reports through python-dir.so loaded by bareosdir-sim: many
    instances in one job, one per length."""
    lengths = LENGTHS + [255, 256, 257, 511, 512, 513, 1024, 2049, 5000]
    lines = [options(tmp_path, name_of(n), "isolated", f"instance={i}",
                     prefix="python3")
             for i, n in enumerate(lengths)]
    proc = sim.run("backup-bareos-fd", options=lines, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0  # the job failed, the Director lived
    assert "Fatal Python error" not in out and "malloc()" not in out
    assert "AddressSanitizer" not in out
    for i, n in enumerate(lengths):
        name = name_of(n)
        assert f"python3-dir: {name} (instance {i}): cannot load plugin " \
            f"module '{name}'" in out, (n, out[-2000:])


# ---- point 2: "left threads running" with a long name ----

@pytest.mark.parametrize("n", [1, 100, 219, 220, 221, 240, 251])
def test_left_threads_message_is_whole_and_clean(tmp_path, monkeypatch, n):
    monkeypatch.setenv("BAREOSDIR_THREAD_WAIT", "0.05")
    name = name_of(n)
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        import threading, time
        def load_bareos_plugin(d):
            threading.Thread(target=time.sleep, args=(0.6,)).start()
            return 0
        def parse_plugin_definition(d):
            return 0
        def handle_plugin_event(e):
            return 0
        """))
    with Director() as d:
        job = run(d, options(tmp_path, name, "isolated"))
        expected = (f"bareosdir: module '{name}' left threads running after "
                    "its job; its interpreter is kept until they end\n")
        texts = [m.text for m in job.debug_messages if "left threads" in m.text]
        assert texts == [expected]
        time.sleep(0.7)  # the thread ends; its interpreter can be ended


# ---- point 12: exception text with a lone surrogate ----

def test_exception_with_a_lone_surrogate_keeps_type_file_and_line(
        director, tmp_path, mode):
    (tmp_path / "surrogate.py").write_text(textwrap.dedent("""
        import bareosdir
        def load_bareos_plugin(d):
            bareosdir.RegisterEvents([1])
            return 0
        def parse_plugin_definition(d):
            return 0
        def handle_plugin_event(e):
            raise ValueError("bad \\udc80 text")
        """))
    job = run(director, options(tmp_path, "surrogate", mode))
    texts = fatal_texts(job)
    assert len(texts) == 1, texts
    t = texts[0]
    assert "(traceback unavailable)" not in t
    assert "ValueError: bad \\udc80 text" in t
    assert re.search(r'surrogate\.py", line 9, in handle_plugin_event', t), t


def test_surrogate_in_a_file_name_of_the_traceback(director, tmp_path, mode):
    """Code compiled from a file name that is not valid UTF-8 (a file system
    allows it)."""
    (tmp_path / "oddpath.py").write_text(textwrap.dedent("""
        def load_bareos_plugin(d):
            exec(compile("\\n\\nraise KeyError('k')", "odd\\udcff.py", "exec"))
        """))
    job = run(director, options(tmp_path, "oddpath", mode))
    texts = fatal_texts(job)
    assert len(texts) == 1, texts
    assert "(traceback unavailable)" not in texts[0]
    assert "KeyError: 'k'" in texts[0]
    assert 'File "odd\\udcff.py", line 3' in texts[0], texts[0]


# ---- point 16: trailing newlines ----

@pytest.mark.parametrize("sent,got", [
    ("", "\n"), ("\n", "\n"), ("\n\n\n", "\n"), ("a", "a\n"), ("a\n", "a\n"),
    ("a\n\n", "a\n"), ("a\n\n\n\n\n", "a\n"), ("a\n\nb\n\n", "a\n\nb\n"),
    ("a\r\n", "a\r\n")])
def test_exactly_one_trailing_newline(director, sent, got):
    job = director.job()
    with job.bind():
        bareosdir.JobMessage(bareosdir.M_INFO, sent)
        bareosdir.DebugMessage(100, sent)
    assert [m.text for m in job.messages] == [got]
    assert [m.text for m in job.debug_messages] == [got]


# ---- how it stays fixed: one bounded way to format ----

FORMATTING = re.compile(r"\b(v?s(n)?printf|strcpy|strcat|stpcpy|gets)\s*\(")


def test_no_raw_formatting_into_buffers_anywhere():
    """Every formatted text of csrc/, shim/, sim/, bench/, tests/c/ and
    fuzz/ goes through csrc/textfmt.h: no (v)s(n)printf, strcpy or strcat
    elsewhere, so no length is ever computed by hand or taken from an
    snprintf that may have cut."""
    offenders = []
    for d in ("csrc", "shim", "sim", "bench", "tests/c", "fuzz"):
        for f in sorted((ROOT / d).rglob("*.[ch]")):
            if f.name == "textfmt.h":
                continue
            for i, line in enumerate(f.read_text().splitlines(), 1):
                if FORMATTING.search(line.split("//")[0]):
                    offenders.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert offenders == []


# ---- point 3a: a plugin thread inside the Director when its job is freed ----

SLOW_THREAD_PLUGIN = """
import threading, bareosdir

def worker(path):
    bareosdir.JobMessage(bareosdir.M_INFO, "from thread")
    # the job is freed by now: the instance must still have been there for
    # the call above to return into, and must be gone for this one
    try:
        bareosdir.JobMessage(bareosdir.M_INFO, "after the job")
        outcome = "sent"
    except RuntimeError as e:
        outcome = "RuntimeError: " + str(e)
    with open(path, "w") as f:
        f.write(outcome)

def load_bareos_plugin(d):
    bareosdir.RegisterEvents([bareosdir.bDirEventJobRun])
    return 0

def parse_plugin_definition(d):
    return 0

def handle_plugin_event(e):
    threading.Thread(target=worker, args=(%r,), daemon=True).start()
    return 0
"""


def wait_for(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} not written within {timeout} s")


def test_thread_in_a_slow_job_message_outlives_its_instance(
        tmp_path, monkeypatch, mode):
    """freePlugin waits BAREOSDIR_THREAD_WAIT (0.1 s) for the call, the
    Director's JobMessage takes 3 s: the instance is freed by the thread's
    own reference when the call returns, not by freePlugin under it (ASan
    saw a write to freed memory here)."""
    monkeypatch.setenv("BAREOSDIR_THREAD_WAIT", "0.1")
    out = tmp_path / "outcome"
    (tmp_path / "slowthread.py").write_text(SLOW_THREAD_PLUGIN % str(out))
    from bareosdir import _bareosdir
    before = _bareosdir._stats()["instances"]
    with Director(job_message_delay=3.0) as d:
        job = run(d, options(tmp_path, "slowthread", mode))
        # freePlugin has returned while the thread is still in the Director
        assert not out.exists()
        assert job.rcs["free_plugins"] == 0
        outcome = wait_for(out)
        assert outcome.startswith("RuntimeError: bareosdir:"), outcome
        assert [m.text for m in job.messages] == ["from thread\n"]
        deadline = time.monotonic() + 10
        while _bareosdir._stats()["instances"] > before and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        assert _bareosdir._stats()["instances"] == before


def test_many_jobs_with_threads_outliving_them(tmp_path, monkeypatch, mode):
    """Ten jobs, each leaving a thread inside a slow JobMessage, back to
    back: every thread returns into a live instance and then finds its job
    gone."""
    monkeypatch.setenv("BAREOSDIR_THREAD_WAIT", "0")
    outs = []
    with Director(job_message_delay=0.5) as d:
        for i in range(10):
            out = tmp_path / f"outcome{i}"
            (tmp_path / f"slow{i}.py").write_text(SLOW_THREAD_PLUGIN % str(out))
            run(d, options(tmp_path, f"slow{i}", mode))
            outs.append(out)
        for out in outs:
            assert wait_for(out).startswith("RuntimeError: bareosdir:")


# ---- point 3b: kept and forged instance markers (interpreter=main) ----

KEEPER = """
import sys, bareosdir

def load_bareos_plugin(d):
    bareosdir.RegisterEvents([bareosdir.bDirEventJobRun])
    if not hasattr(sys, "_kept_marker"):
        sys._kept_marker = globals()["__bareosdir_instance__"]
    return 0

def parse_plugin_definition(d):
    return 0

def try_with(marker):
    own = globals()["__bareosdir_instance__"]
    globals()["__bareosdir_instance__"] = marker
    try:
        return repr(bareosdir.GetValue(bareosdir.bDirVarJobId))
    except RuntimeError as e:
        return "RuntimeError: " + str(e)
    finally:
        globals()["__bareosdir_instance__"] = own

def handle_plugin_event(e):
    import ctypes
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    name = ctypes.c_char_p(b"bareosdir.instance")
    sys._capsule_name = name  # a capsule keeps a pointer to its name
    results = {
        "own": repr(bareosdir.GetValue(bareosdir.bDirVarJobId)),
        "kept": try_with(sys._kept_marker),
        "int": try_with(12345),
        "str": try_with("bareosdir.instance"),
        "other capsule": try_with(new(id(sys), b"other", None)),
        "made-up handle": try_with(new(0x700000001, name, None)),
        "pointer as handle": try_with(new(id(sys), name, None)),
    }
    bareosdir.JobMessage(bareosdir.M_INFO, repr(results))
    return 0
"""


REFUSED = ("RuntimeError: bareosdir: no Bareos Director context here: the "
           "__bareosdir_instance__ marker")


def test_kept_and_forged_markers_are_refused_in_later_jobs(director, tmp_path):
    (tmp_path / "keeper.py").write_text(KEEPER)
    import ast
    import sys
    try:
        for jobid in range(1, 31):
            job = run(director, options(tmp_path, "keeper", "main"), jobid)
            texts = [m.text for m in job.messages]
            assert len(texts) == 1, texts
            results = ast.literal_eval(texts[0])
            assert results.pop("own") == str(jobid)
            if jobid == 1:
                assert results.pop("kept") == "1"
            for what, r in results.items():
                assert r.startswith(REFUSED), (jobid, what, r)
            if jobid > 1:
                assert "has ended" in results["kept"]
            assert "not a marker" in results["int"]
            assert "not a marker" in results["other capsule"]
    finally:
        sys.__dict__.pop("_kept_marker", None)
        sys.__dict__.pop("_capsule_name", None)


def test_kept_marker_through_the_real_shim(sim, tmp_path):
    """Three jobs in one Director process (bareosdir-sim, python-dir.so): the
    marker kept by the first is refused in the later ones."""
    (tmp_path / "keeper.py").write_text(KEEPER)
    proc = sim.run("backup-bareos-fd", jobs=3, options=[
        options(tmp_path, "keeper", "main", prefix="python3")])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    results = [line for line in proc.stdout.splitlines() if "'own'" in line]
    assert len(results) == 3, out[-3000:]
    assert "'kept': '1'" in results[0]
    for line in results[1:]:
        assert f"'kept': '{REFUSED} of the calling module is refused: its " \
            "plugin instance has ended" in line, line
    for line in results:
        assert "'made-up handle': 'RuntimeError" in line
        assert "'pointer as handle': 'RuntimeError" in line


@pytest.mark.parametrize("n", [4095, 4096, 4097, 100000])
def test_long_job_values_through_the_model_and_the_api(director, n):
    """A job value longer than any buffer the model's face had: whole
    through Job.get and through bareosdir.GetValue."""
    value = "c" * (n - 1) + "\u00e9"
    job = director.job(client=value)
    assert job.get(bareosdir.bDirVarClient) == value
    with job.bind():
        assert bareosdir.GetValue(bareosdir.bDirVarClient) == value
