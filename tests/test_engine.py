"""The plugin engine through the mock director: options, loading, entry
points, errors, isolation, threads."""

from __future__ import annotations

import threading

import pytest

import bareosdir
from bareosdir.testing import Director

from conftest import ECHO_PLUGIN, event_plugin

OK, ERROR = bareosdir.bRC_OK, bareosdir.bRC_Error
M_FATAL, M_WARNING, M_INFO = bareosdir.M_FATAL, bareosdir.M_WARNING, bareosdir.M_INFO


def infos(job):
    return [m.text for m in job.messages if m.type == M_INFO]


def fatals(job):
    return [m.text for m in job.messages if m.type == M_FATAL]


def test_lifecycle_reaches_the_plugin(bareos_director, plugins):
    name = plugins.write("echo", ECHO_PLUGIN)
    job = bareos_director.job("BackupClient1")
    job.run([plugins.options(name, "testoption=testparam")])
    assert infos(job) == [
        "event=1 calls=['load', 'parse:testoption=testparam:', 1]\n",
        "event=3 calls=['load', 'parse:testoption=testparam:', 1, 3]\n",
        "event=4 calls=['load', 'parse:testoption=testparam:', 1, 3, 4]\n",
        "event=2 calls=['load', 'parse:testoption=testparam:', 1, 3, 4, 2]\n",
    ]
    assert job.rcs == {"new_plugins": OK, "options[0]": OK, "JobStart": OK,
                       "JobInit": OK, "JobRun": OK, "JobEnd": OK,
                       "free_plugins": OK}
    assert job.events(0) == {1, 2, 3, 4}
    assert fatals(job) == []


def test_plugin_name_prefixes_python_and_python3(bareos_director, plugins):
    name = plugins.write("echo", ECHO_PLUGIN)
    job = bareos_director.job()
    job.run([plugins.options(name, prefix="python3")])
    assert len(infos(job)) == 4
    assert {m.plugin for m in job.messages} == {"python3"}


def test_job_without_options_loads_nothing(bareos_director):
    job = bareos_director.job()
    job.run([])
    assert job.messages == [] and job.rcs["JobEnd"] == OK


def test_default_module_is_bareos_dir(bareos_director, plugins):
    plugins.write("bareos-dir", ECHO_PLUGIN)
    job = bareos_director.job()
    job.run([f"python:module_path={plugins.path}"])
    assert len(infos(job)) == 4


def test_module_names_with_dashes(bareos_director, plugins):
    name = plugins.write("my-dashed-plugin", ECHO_PLUGIN)
    job = bareos_director.job()
    job.run([plugins.options(name)])
    assert len(infos(job)) == 4


def test_two_instances_keep_separate_globals(bareos_director, plugins):
    name = plugins.write("echo", ECHO_PLUGIN)
    job = bareos_director.job()
    job.run([plugins.options(name, "instance=0:who=a"),
             plugins.options(name, "instance=1:who=b")])
    by_instance = {0: [], 1: []}
    for m in job.messages:
        by_instance[m.instance].append(m.text)
    assert by_instance[0][-1] == "event=2 calls=['load', 'parse:who=a:', 1, 3, 4, 2]\n"
    assert by_instance[1][-1] == "event=2 calls=['load', 'parse:who=b:', 1, 3, 4, 2]\n"


def test_a_new_job_starts_with_fresh_globals(bareos_director, plugins):
    name = plugins.write("echo", ECHO_PLUGIN)
    for _ in range(3):
        job = bareos_director.job()
        job.run([plugins.options(name)])
        assert infos(job)[0] == "event=1 calls=['load', 'parse:', 1]\n"


def test_edited_plugin_takes_effect_at_next_job(bareos_director, plugins):
    src = event_plugin('bareosdir.JobMessage(bareosdir.M_INFO, "VERSION")')
    name = plugins.write("edited", src.replace("VERSION", "v1"))
    job = bareos_director.job()
    job.run([plugins.options(name)])
    plugins.write("edited", src.replace("VERSION", "v2-longer"))
    job2 = bareos_director.job()
    job2.run([plugins.options(name)])
    assert infos(job) == ["v1\n"] and infos(job2) == ["v2-longer\n"]


def test_instance_called_from_three_threads(bareos_director, plugins):
    name = plugins.write("threads", """
        import bareosdir, threading
        seen = []
        def load_bareos_plugin(d):
            bareosdir.RegisterEvents([1, 2, 3, 4])
            return 0
        def parse_plugin_definition(d):
            seen.append(threading.get_ident())
            return 0
        def handle_plugin_event(e):
            seen.append(threading.get_ident())
            if e == 2:
                bareosdir.JobMessage(bareosdir.M_INFO, "threads=%d" % len(set(seen)))
            return 0
    """)
    job = bareos_director.job()
    job.run([plugins.options(name)])
    # setup thread (options, JobStart, JobInit) and job thread (JobRun, JobEnd)
    assert infos(job) == ["threads=2\n"]
    assert job.rcs["free_plugins"] == OK


def test_sixteen_jobs_on_sixteen_threads(bareos_director, plugins):
    name = plugins.write("conc", event_plugin("""
        jobid = bareosdir.GetValue(bareosdir.bDirVarJobId)
        bareosdir.JobMessage(bareosdir.M_INFO, "job %d event %d" % (jobid, e))
    """, events=(1, 2, 3, 4)))
    jobs = [bareos_director.job(jobid=100 + i) for i in range(16)]
    errors = []

    def run(job):
        try:
            job.run([plugins.options(name), plugins.options(name, "instance=1")])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not any(t.is_alive() for t in threads)
    for job in jobs:
        texts = infos(job)
        assert len(texts) == 8
        assert all(t.startswith(f"job {job.jobid} ") for t in texts)


def test_get_instance_count_counts_live_contexts(bareos_director, plugins):
    name = plugins.write("count", event_plugin(
        'bareosdir.JobMessage(bareosdir.M_INFO, "count=%r" % bareosdir.GetInstanceCount())',
        events=(1,)))
    job = bareos_director.job()
    job.run([plugins.options(name), plugins.options(name, "instance=1")])
    assert infos(job) == ["count=2\n", "count=2\n"]


# ---- bad options: each gets a clear message ----

def test_options_without_colon_are_refused_by_the_director(bareos_director):
    # bareos-dir itself skips such a string with an error before any plugin
    # sees it (the engine's parser refuses it too: tests/c/test_options.c).
    job = bareos_director.job()
    job.new_plugins()
    assert job.plugin_options("python") == -1
    (m,) = bareos_director.messages
    assert m.type == bareosdir.M_ERROR and "missing ':'" in m.text
    job.free_plugins()


@pytest.mark.parametrize("options,expected", [
    ("python:module_name", "module_name"),
    ("python:=value", "empty key"),
    ("python:interpreter=shared", "interpreter=shared"),
    ("python:on_error=ignore", "on_error=ignore"),
])
def test_bad_options_fail_with_a_clear_message(bareos_director, options, expected):
    job = bareos_director.job()
    job.new_plugins()
    rc = job.plugin_options(options)
    assert rc == ERROR
    (text,) = fatals(job)
    assert "invalid Dir Plugin Options" in text and expected in text
    job.free_plugins()


@pytest.mark.parametrize("options,expected", [
    ("python:instance=200", "200"),
    ("python:instance=abc", "abc"),
])
def test_bad_instance_is_rejected(bareos_director, options, expected):
    job = bareos_director.job()
    job.new_plugins()
    assert job.plugin_options(options) == -1
    texts = [m.text for m in bareos_director.messages] + [m.text for m in job.messages]
    assert any("instance" in t and expected in t for t in texts), texts
    job.free_plugins()


def test_unknown_module_names_module_and_search_path(bareos_director, plugins):
    job = bareos_director.job()
    job.run([plugins.options("no-such-plugin")])
    (text,) = fatals(job)
    assert "cannot load plugin module 'no-such-plugin'" in text
    assert str(plugins.path) in text and "search path" in text
    assert job.rcs["options[0]"] == ERROR


def test_module_without_load_bareos_plugin(bareos_director, plugins):
    name = plugins.write("noload", "x = 1\n")
    job = bareos_director.job()
    job.run([plugins.options(name)])
    (text,) = fatals(job)
    assert "has no load_bareos_plugin() function" in text


def test_import_error_inside_module_shows_traceback(bareos_director, plugins):
    name = plugins.write("badimport", "import does_not_exist_xyz\n")
    job = bareos_director.job()
    job.run([plugins.options(name)])
    (text,) = fatals(job)
    assert "importing the plugin module raised" in text
    assert "No module named 'does_not_exist_xyz'" in text and "Traceback" in text


RAISER = """
    import bareosdir
    def load_bareos_plugin(d):
        if "{where}" == "load": raise KeyError("in load")
        bareosdir.RegisterEvents([1, 2, 3, 4])
        return 0
    def parse_plugin_definition(d):
        if "{where}" == "parse": raise KeyError("in parse")
        return 0
    def handle_plugin_event(e):
        if "{where}" == "handle" and e == 4: raise KeyError("in handle")
        return 0
"""


@pytest.mark.parametrize("prefix", ["python", "python3", "Python3"])
def test_reports_name_the_file_of_the_plugin(prefix, plugins):
    # A report begins with the name of the file the Director loaded for the
    # options' plugin (python-dir.so, python3-dir.so), however the options
    # spell the plugin's name.
    from bareosdir.testing import Director
    name = plugins.write("raiser", RAISER.format(where="load"))
    with Director(plugins=["python", "python3", "py"]) as director:
        job = director.job()
        job.run([plugins.options(name, prefix=prefix)])
    (text,) = fatals(job)
    assert text.startswith(f"{prefix.lower()}-dir: raiser (instance 0): load_bareos_plugin() raised"), text


def test_more_plugin_files_than_named_tables(plugins, tmp_path):
    # The engine keeps eight named tables for the whole process; a ninth
    # file name and later still run their jobs, reported as "python-dir".
    # In a child process, so this process's tables stay free.
    import subprocess, sys, textwrap
    name = plugins.write("raiser", RAISER.format(where="load"))
    script = textwrap.dedent(f"""
        import bareosdir
        from bareosdir.testing import Director
        names = [f"copy{{i}}" for i in range(12)]
        with Director(plugins=names) as director:
            for n in names:
                job = director.job()
                job.run([{plugins.options(name)!r}.replace("python:", n + ":", 1)])
                (text,) = [m.text for m in job.messages if m.type == bareosdir.M_FATAL]
                print(text.split(" (instance")[0])
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    expected = [f"copy{i}-dir: raiser" for i in range(8)] + ["python-dir: raiser"] * 4
    assert r.stdout.split("\n")[:-1] == expected, r.stdout


@pytest.mark.parametrize("where,what", [
    ("load", "load_bareos_plugin()"),
    ("parse", "parse_plugin_definition()"),
    ("handle", "handle_plugin_event(bDirEventJobRun=4)"),
])
def test_each_entry_point_raising(bareos_director, plugins, where, what):
    name = plugins.write("raiser", RAISER.format(where=where))
    job = bareos_director.job()
    job.run([plugins.options(name)])
    (text,) = fatals(job)
    assert text.startswith(f"python-dir: raiser (instance 0): {what} raised an exception:")
    assert f"KeyError: 'in {where}'" in text and "Traceback" in text
    debug = [m for m in job.debug_messages if m.text == text]
    assert len(debug) == 1
    # The job goes on: later events still reach the plugin (or nothing
    # loaded), and no Python error leaks into them.
    assert job.rcs["free_plugins"] == OK


def test_on_error_warning_keeps_the_job_alive(bareos_director, plugins):
    name = plugins.write("raiser", RAISER.format(where="handle"))
    job = bareos_director.job()
    job.run([plugins.options(name, "on_error=warning")])
    assert fatals(job) == []
    (w,) = [m for m in job.messages if m.type == M_WARNING]
    assert "KeyError: 'in handle'" in w.text
    assert job.rcs["JobRun"] == OK


@pytest.mark.parametrize("value,shown", [
    ("None", "returned None (NoneType)"),
    ("'0'", "returned '0' (str)"),
    ("2**70", "returned 1180591620717411303424 (int)"),
    ("-1", "returned -1 (int)"),
    ("9", "returned 9 (int)"),
    ("bareosdir.bRC_Term", "returned bRC_Term (4)"),
])
def test_bad_return_values(bareos_director, plugins, value, shown):
    name = plugins.write("junk", event_plugin(f"return {value}", events=(4,)))
    job = bareos_director.job()
    job.run([plugins.options(name)])
    (text,) = fatals(job)
    assert "handle_plugin_event(bDirEventJobRun=4) " + shown in text
    assert job.rcs["JobRun"] == ERROR


def test_valid_return_codes_are_passed_on(bareos_director, plugins):
    name = plugins.write("stopper", event_plugin("return bareosdir.bRC_Skip", events=(4,)))
    job = bareos_director.job()
    job.run([plugins.options(name)])
    assert job.rcs["JobRun"] == bareosdir.bRC_Skip and job.messages == []


def test_secret_option_values_are_masked_in_debug(bareos_director, plugins):
    name = plugins.write("echo", ECHO_PLUGIN)
    job = bareos_director.job()
    job.run([plugins.options(name, "password=hunter2:api_token=abc123:Secret=s3:sshkey=k9:user=bob")])
    debug = "".join(m.text for m in job.debug_messages)
    for secret in ("hunter2", "abc123", "s3:", "k9"):
        assert secret not in debug
    assert "password=****" in debug and "user=bob" in debug
    # the plugin itself still gets the real values
    assert "password=hunter2" in infos(job)[0]


def test_output_logging_and_warnings_reach_the_director(bareos_director, plugins):
    if plugins.mode == "main":
        pytest.skip("the main interpreter is pytest's own here: its output is "
                    "left alone (the shim redirects it; tests/test_shim.py)")
    name = plugins.write("noisy", event_plugin("""
        print("to stdout")
        print("to stderr", file=sys.stderr)
        logging.getLogger("noisy").warning("a warning record")
        logging.getLogger("noisy").error("an error record")
        warnings.warn("a python warning")
    """, events=(4,), imports="logging, sys, warnings"))
    job = bareos_director.job()
    job.run([plugins.options(name)])
    msgs = [(m.type, m.text) for m in job.messages]
    assert (M_WARNING, "to stderr\n") in msgs
    assert (M_WARNING, "noisy: a warning record\n") in msgs
    assert (bareosdir.M_ERROR, "noisy: an error record\n") in msgs
    assert any(t == M_WARNING and "a python warning" in x for t, x in msgs)
    assert (100, "to stdout\n") in [(m.level, m.text) for m in job.debug_messages]


def test_plugin_thread_after_job_end_gets_runtime_error(plugins):
    name = plugins.write("leaver", """
        import bareosdir, threading, time
        result = []
        def late():
            time.sleep(0.3)
            try:
                bareosdir.GetValue(bareosdir.bDirVarJobId)
                result.append("no error")
            except RuntimeError as e:
                result.append(str(e))
            with open(OUT, "w") as f:
                f.write(result[0])
        def load_bareos_plugin(d):
            threading.Thread(target=late).start()
            return 0
        def parse_plugin_definition(d): return 0
        def handle_plugin_event(e): return 0
    """.replace("OUT", repr(str(plugins.path / "late.txt"))))
    import os, time
    os.environ["BAREOSDIR_THREAD_WAIT"] = "0.05"
    try:
        with Director() as d:
            job = d.job()
            job.run([plugins.options(name)])
            deadline = time.monotonic() + 20
            while not (plugins.path / "late.txt").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "no Bareos Director context" in (plugins.path / "late.txt").read_text()
    finally:
        del os.environ["BAREOSDIR_THREAD_WAIT"]
    # The interpreter was set aside, not ended under the thread, and
    # ended once the thread had finished (at the next release or unbind).
    assert bareosdir._bareosdir._stats()["set_aside"] == 0


def test_director_close_frees_unfinished_jobs(plugins):
    name = plugins.write("echo", ECHO_PLUGIN)
    d = Director()
    job = d.job()
    job.new_plugins()
    job.plugin_options(plugins.options(name))
    assert bareosdir._bareosdir._stats()["loaded"] >= 1
    d.close()
    stats = bareosdir._bareosdir._stats()
    assert stats["instances"] == 0 and stats["binds"] == 0


def test_thread_states_of_exited_director_threads_are_reclaimed(bareos_director, plugins):
    # Every run() uses three new threads, as a Director makes new job
    # threads; their cached thread states must not pile up.
    name = plugins.write("echo", ECHO_PLUGIN)
    for _ in range(60):
        bareos_director.job().run([plugins.options(name)])
    assert bareosdir._bareosdir._stats()["main_tstates"] < 30


# Plugin source is compiled by the import system of the plugin's
# interpreter (in isolated ones without building the ast module's state,
# see import_compile in csrc/interp.c): the results must be the builtin
# compile()'s.

def test_syntax_error_in_plugin_names_file_and_line(bareos_director, plugins):
    name = plugins.write("badsyntax", "x = 1\ndef f(:\n    pass\n")
    job = bareos_director.job()
    job.run([plugins.options(name)])
    (text,) = fatals(job)
    assert "SyntaxError" in text and "badsyntax.py" in text and "line 2" in text


def test_null_byte_in_plugin_source_is_refused(bareos_director, plugins):
    (plugins.path / "nullbyte.py").write_bytes(b"x = 1\n\0\n")
    job = bareos_director.job()
    job.run([plugins.options("nullbyte")])
    (text,) = fatals(job)
    assert "source code string cannot contain null bytes" in text


def test_plugin_source_in_a_declared_encoding(bareos_director, plugins):
    source = event_plugin("bareosdir.JobMessage(M_INFO, TEXT)",
                          imports="bareosdir as _b")
    source = ("# -*- coding: latin-1 -*-\nTEXT = 'caf\u00e9 \u00bd'\n"
              "M_INFO = %d\n" % M_INFO) + source
    (plugins.path / "latin.py").write_bytes(source.encode("latin-1"))
    job = bareos_director.job()
    job.run([plugins.options("latin")])
    assert [t.rstrip("\n") for t in infos(job)] == ["caf\u00e9 \u00bd"], job.messages


def test_plugin_may_compile_and_use_ast(bareos_director, plugins):
    name = plugins.write("usesast", event_plugin(
        """
        tree = ast.parse("y = 6 * 7")
        ns = {}
        exec(compile(tree, "<ast>", "exec"), ns)
        exec(compile(b"z = 1", "<bytes>", "exec", dont_inherit=True), ns)
        bareosdir.JobMessage(bareosdir.M_INFO, "%d %d" % (ns["y"], ns["z"]))
        """, imports="ast"))
    job = bareos_director.job()
    job.run([plugins.options(name)])
    assert [t.rstrip("\n") for t in infos(job)] == ["42 1"], job.messages
