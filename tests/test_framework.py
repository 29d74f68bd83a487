"""The class-based plugin framework shipped in bareosdir/plugins
(BareosDirPluginBaseclass, BareosDirWrapper, the bareos-dir-class-plugin
loaders, the bareos-dir.py template), run through the mock Director, and
its modules' single identity however they are imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import bareosdir
from bareosdir.testing import PLUGINS_DIR

# Where the bareosdir under test lives (the repository, or site-packages).
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(
    bareosdir.__file__)))
FRAMEWORK_EVENTS = {bareosdir.bDirEventJobStart, bareosdir.bDirEventJobEnd,
                    bareosdir.bDirEventJobInit, bareosdir.bDirEventJobRun}

# A subclass that reports its attributes as JSON in an M_INFO job message
# on JobEnd. Option clock=a,b,c,... replaces the base class's clock (in
# this instance's interpreter only) by one answering those times in turn;
# option legacy=1 calls the base class in the Bareos 19 form, with a
# context first.
PROBE = """
    import json
    import bareosdir
    import BareosDirPluginBaseclass
    import BareosDirWrapper
    from BareosDirWrapper import *

    ATTRIBUTES = ["jobName", "jobLevel", "jobType", "jobId", "jobClient",
                  "jobStatus", "Priority", "options", "jobErrors", "jobBytes",
                  "jobFiles", "jobNumVols", "jobPool", "jobStorage",
                  "jobMediaType", "jobInitTime", "jobStartTime", "jobRunTime",
                  "jobEndTime", "jobTotalTime", "jobRunningTime", "throughput"]

    class FakeClock:
        def __init__(self, times):
            self.times = list(times)
        def time(self):
            return self.times.pop(0)

    class Probe(BareosDirPluginBaseclass.BareosDirPluginBaseclass):
        legacy = False

        def parse_plugin_definition(self, plugindef):
            if self.legacy:
                rc = super().parse_plugin_definition("context", plugindef)
            else:
                rc = super().parse_plugin_definition(plugindef)
            if "clock" in self.options:
                BareosDirPluginBaseclass.time = FakeClock(
                    float(t) for t in self.options["clock"].split(","))
            return rc

        def handle_plugin_event(self, event):
            if self.legacy:
                rc = super().handle_plugin_event("context", event)
            else:
                rc = super().handle_plugin_event(event)
            if event == bareosdir.bDirEventJobEnd:
                bareosdir.JobMessage(bareosdir.M_INFO, "probe " + json.dumps(
                    {name: getattr(self, name) for name in ATTRIBUTES}))
            return rc

    def load_bareos_plugin(plugindef):
        if "legacy=1" in plugindef:
            Probe.legacy = True
            probe = Probe("context", plugindef)
        else:
            probe = Probe(plugindef)
        BareosDirWrapper.bareos_dir_plugin_object = probe
        return bareosdir.bRC_OK
"""


pytestmark = pytest.mark.usefixtures("no_plugin_modules_left_behind")


def new_job(director, **values):
    defaults = dict(level="F", type="B", client="client1-fd", pool="Full",
                    storage="File", media_type="File", priority=10,
                    num_vols=1)
    defaults.update(values)
    return director.job("BackupClient1", jobid=5, **defaults)


def probe_results(job):
    return [json.loads(m.text.strip()[len("probe "):])
            for m in job.messages
            if m.type == bareosdir.M_INFO and m.text.startswith("probe ")]


def no_failures(job):
    """Every step answered bRC_OK and no warning or worse was sent."""
    assert all(rc == bareosdir.bRC_OK for rc in job.rcs.values()), job.rcs
    bad = [m for m in job.messages
           if m.type in (bareosdir.M_FATAL, bareosdir.M_ERROR,
                         bareosdir.M_WARNING)]
    assert bad == []


# ---- one module object per name ---------------------------------------

IDENTITY_CHECK = """
import importlib, sys
order = sys.argv[1]
if order == "top-level-first":
    import BareosDirWrapper as first
    import bareosdir.plugins.BareosDirWrapper as second
elif order == "package-first":
    import bareosdir.plugins.BareosDirWrapper as first
    import BareosDirWrapper as second
else:
    import bareosdir.plugins
    first = bareosdir.plugins.BareosDirWrapper
    import BareosDirWrapper as second
assert first is second is sys.modules["BareosDirWrapper"]
assert sys.modules["bareosdir.plugins.BareosDirWrapper"] is first
assert first.__name__ == "BareosDirWrapper"
assert first.__spec__.name == "BareosDirWrapper", first.__spec__
loader = importlib.import_module("bareosdir.plugins.bareos-dir-class-plugin")
assert loader is importlib.import_module("bareos-dir-class-plugin")
from bareosdir.plugins import BareosDirPluginBaseclass
import BareosDirPluginBaseclass as base
assert base is BareosDirPluginBaseclass
try:
    import bareosdir.plugins.no_such_module
except ImportError:
    pass
else:
    raise AssertionError("a missing module imported")
print("ok")
"""


@pytest.mark.parametrize("order,host_path", [
    ("top-level-first", True), ("package-first", True),
    ("attribute-first", True), ("package-first", False),
    ("attribute-first", False)])
def test_one_module_object_per_name_in_a_fresh_interpreter(order, host_path):
    """host_path: the plugin directory is on sys.path, as the host puts it;
    without it, importing bareosdir.plugins appends it."""
    env = dict(os.environ)
    path = [PACKAGE_PARENT] + ([PLUGINS_DIR] if host_path else [])
    env["PYTHONPATH"] = os.pathsep.join(
        path + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    result = subprocess.run([sys.executable, "-c", IDENTITY_CHECK, order],
                            cwd=PACKAGE_PARENT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_one_module_object_per_name_inside_a_plugin(director, plugins,
                                                    request):
    plugins.write("identity_probe", """
        import sys
        import bareosdir
        import BareosDirWrapper
        import BareosDirPluginBaseclass
        import bareosdir.plugins.BareosDirWrapper as aliased
        from bareosdir.plugins import BareosDirPluginBaseclass as base

        def load_bareos_plugin(plugindef):
            same = (aliased is BareosDirWrapper
                    and base is BareosDirPluginBaseclass)
            if "__bareosdir_instance__" not in globals():
                # isolated: the instance's modules are the interpreter's
                same = same and sys.modules["BareosDirWrapper"] is BareosDirWrapper
            bareosdir.JobMessage(bareosdir.M_INFO, "same=%s" % same)
            return bareosdir.bRC_OK

        def parse_plugin_definition(plugindef):
            return bareosdir.bRC_OK

        def handle_plugin_event(event):
            return bareosdir.bRC_OK
    """)
    job = new_job(director)
    job.run([plugins.options("identity_probe", prefix="python3")])
    assert [m.text.strip() for m in job.messages] == ["same=True"]


# ---- the loader modules -------------------------------------------------

@pytest.mark.parametrize("interpreter", ["isolated", "main"])
@pytest.mark.parametrize("prefix", ["python", "python3"])
@pytest.mark.parametrize("module", ["bareos-dir-class-plugin",
                                    "bareos-dir-class-plugins"])
def test_class_plugin_loader_runs_a_job(director, module, prefix,
                                        interpreter):
    job = new_job(director)
    job.run(["%s:module_name=%s:testoption=testparam:interpreter=%s"
             % (prefix, module, interpreter)],
            status="T", bytes=1000, files=10)
    no_failures(job)
    assert FRAMEWORK_EVENTS <= job.events(instance=0, plugin=prefix)
    debug = "".join(m.text for m in job.debug_messages)
    assert "JobName = BackupClient1." in debug
    assert "testoption=testparam" in debug
    assert "status T" in debug and "1000 bytes" in debug


@pytest.mark.parametrize("interpreter", ["isolated", "main"])
def test_seed_configuration_lines_with_module_path(director, interpreter):
    """The seed's form: two instances, module_path, bareos-dir-class-plugins
    (in main mode the two instances share an interpreter)."""
    job = new_job(director)
    job.run([
        "python:instance=0:module_path=%s:module_name=bareos-dir-class-plugins"
        ":testoption=testparam1:interpreter=%s" % (PLUGINS_DIR, interpreter),
        "python:instance=1:module_path=%s:module_name=bareos-dir-class-plugins"
        ":testoption=testparam2:interpreter=%s" % (PLUGINS_DIR, interpreter),
    ])
    no_failures(job)
    for instance in (0, 1):
        assert FRAMEWORK_EVENTS <= job.events(instance=instance)
    for instance, value in ((0, "testparam1"), (1, "testparam2")):
        texts = "".join(m.text for m in job.debug_messages
                        if m.instance == instance)
        assert "testoption=%s" % value in texts


# ---- the base class -----------------------------------------------------

def test_base_class_reads_the_job(director, plugins):
    plugins.write("probe", PROBE)
    job = new_job(director)
    job.run([plugins.options("probe", "color=blue:empty=:path=a\\:b")],
            status="T", bytes=123456, files=42, errors=3)
    no_failures(job)
    [seen] = probe_results(job)
    assert seen["jobName"] == job.name
    assert seen["jobName"].startswith("BackupClient1.")
    assert seen["jobLevel"] == "F"
    assert seen["jobType"] == ord("B")
    assert seen["jobId"] == 5
    assert seen["jobClient"] == "client1-fd"
    assert seen["jobStatus"] == "T"
    assert seen["Priority"] == 10
    assert seen["options"] == {"color": "blue", "path": "a:b"}
    assert seen["jobErrors"] == 3
    assert seen["jobBytes"] == 123456
    assert seen["jobFiles"] == 42
    assert seen["jobNumVols"] == 1
    assert seen["jobPool"] == "Full"
    assert seen["jobStorage"] == "File"
    assert seen["jobMediaType"] == "File"
    for stamp in ("jobInitTime", "jobStartTime", "jobRunTime", "jobEndTime"):
        assert isinstance(seen[stamp], float)
    assert seen["jobStartTime"] <= seen["jobInitTime"] <= seen["jobRunTime"]
    assert seen["jobRunTime"] <= seen["jobEndTime"]
    assert seen["jobTotalTime"] == seen["jobEndTime"] - seen["jobInitTime"]
    assert seen["jobRunningTime"] == seen["jobEndTime"] - seen["jobRunTime"]
    if seen["jobRunningTime"] > 0:
        assert seen["throughput"] == pytest.approx(
            123456 / seen["jobRunningTime"])


def test_times_and_throughput(director, plugins):
    plugins.write("probe", PROBE)
    job = new_job(director)
    # JobStart, JobInit, JobRun, JobEnd at these (fake) times.
    job.run([plugins.options("probe", "clock=100,110,130,170")],
            status="W", bytes=8000, files=1)
    [seen] = probe_results(job)
    assert (seen["jobStartTime"], seen["jobInitTime"], seen["jobRunTime"],
            seen["jobEndTime"]) == (100, 110, 130, 170)
    assert seen["jobTotalTime"] == 60
    assert seen["jobRunningTime"] == 40
    assert seen["throughput"] == 200
    assert seen["jobStatus"] == "W"


def test_throughput_is_zero_without_running_time(director, plugins):
    plugins.write("probe", PROBE)
    job = new_job(director)
    job.run([plugins.options("probe", "clock=5,5,5,5")], bytes=8000)
    [seen] = probe_results(job)
    assert seen["jobRunningTime"] == 0
    assert seen["throughput"] == 0


def test_base_class_survives_values_the_director_lacks(director, plugins):
    plugins.write("probe", PROBE)
    job = director.job("AdminJob", jobid=9, level=" ", type="D")
    job.run([plugins.options("probe")], status="T")
    no_failures(job)
    [seen] = probe_results(job)
    assert seen["jobLevel"] == " "
    assert seen["jobType"] == ord("D")
    assert seen["jobClient"] is None
    assert seen["jobPool"] is None
    assert seen["jobStorage"] is None
    assert seen["jobBytes"] == 0


def test_legacy_calling_convention_with_a_context(director, plugins):
    plugins.write("probe", PROBE)
    job = new_job(director)
    job.run([plugins.options("probe", "legacy=1:clock=1,2,3,5")],
            status="T", bytes=100)
    no_failures(job)
    [seen] = probe_results(job)
    assert seen["options"] == {"legacy": "1", "clock": "1,2,3,5"}
    assert seen["jobRunningTime"] == 2
    assert seen["throughput"] == 50


def test_two_instances_keep_their_own_objects(director, plugins):
    plugins.write("probe", PROBE)
    job = new_job(director)
    job.run([plugins.options("probe", "instance=0:who=first"),
             plugins.options("probe", "instance=1:who=second")])
    no_failures(job)
    results = probe_results(job)
    assert sorted(r["options"]["who"] for r in results) == ["first",
                                                             "second"]


def test_secret_option_values_stay_out_of_debug_output(director):
    job = new_job(director)
    job.run(["python3:module_name=bareos-dir-class-plugin:password=Geheim123"
             ":apiToken=Tok456:user=alice"])
    no_failures(job)
    texts = [m.text for m in job.debug_messages] + [
        m.text for m in job.messages]
    assert not any("Geheim123" in t or "Tok456" in t for t in texts)
    assert any("user=alice" in t for t in texts)


# ---- BareosDirWrapper ---------------------------------------------------

def test_wrapper_without_a_plugin_object_fails_the_call(director, plugins):
    plugins.write("forgetful", """
        import bareosdir
        from BareosDirWrapper import *

        def load_bareos_plugin(plugindef):
            return bareosdir.bRC_OK
    """)
    job = new_job(director)
    job.run([plugins.options("forgetful")])
    assert job.rcs["options[0]"] != bareosdir.bRC_OK
    assert any("bareos_dir_plugin_object is not set" in m.text
               for m in job.messages)


def test_wrapper_forwards_both_calling_conventions():
    from bareosdir.plugins import BareosDirWrapper

    class Recorder:
        def __init__(self):
            self.calls = []

        def parse_plugin_definition(self, *args):
            self.calls.append(("parse",) + args)
            return 0

        def handle_plugin_event(self, *args):
            self.calls.append(("event",) + args)
            return 0

    saved = BareosDirWrapper.bareos_dir_plugin_object
    recorder = BareosDirWrapper.bareos_dir_plugin_object = Recorder()
    try:
        BareosDirWrapper.parse_plugin_definition("a=1:")
        BareosDirWrapper.parse_plugin_definition("ctx", "a=1:")
        BareosDirWrapper.handle_plugin_event(2)
        BareosDirWrapper.handle_plugin_event("ctx", 2)
    finally:
        BareosDirWrapper.bareos_dir_plugin_object = saved
    assert recorder.calls == [("parse", "a=1:"), ("parse", "ctx", "a=1:"),
                              ("event", 2), ("event", "ctx", 2)]
    assert set(BareosDirWrapper.__all__) == {
        "bareos_dir_plugin_object", "parse_plugin_definition",
        "handle_plugin_event"}


# ---- helpers of the base class, without a Director ----------------------

def test_split_options():
    from bareosdir.plugins.BareosDirPluginBaseclass import split_options
    assert split_options("") == []
    assert split_options("a=1:b=:c:d=x=y:") == [
        ("a", "1"), ("b", ""), ("c", ""), ("d", "x=y")]
    assert split_options("pw=a\\:b:c=d") == [("pw", "a:b"), ("c", "d")]


def test_describe_options_hides_secrets():
    from bareosdir.plugins.BareosDirPluginBaseclass import describe_options
    text = describe_options({"password": "p1", "gatewayPassword": "p2",
                             "apiKey": "p3", "client_secret": "p4",
                             "token": "p5", "username": "bob"})
    for secret in ("p1", "p2", "p3", "p4", "p5"):
        assert secret not in text
    assert "username=bob" in text


def test_base_class_argument_forms_are_checked():
    from bareosdir.plugins.BareosDirPluginBaseclass import (
        BareosDirPluginBaseclass)
    with pytest.raises(TypeError, match="plugindef"):
        BareosDirPluginBaseclass()
    with pytest.raises(TypeError, match="plugindef"):
        BareosDirPluginBaseclass.parse_plugin_definition(object(), 1, 2, 3)


# ---- the template -------------------------------------------------------

@pytest.mark.parametrize("interpreter", ["isolated", "main"])
@pytest.mark.parametrize("name_it", [True, False])
def test_template_as_bareos_dir(director, tmp_path, name_it, interpreter):
    module_dir = tmp_path / "mine"
    module_dir.mkdir()
    shutil.copy(os.path.join(PLUGINS_DIR, "bareos-dir.py.template"),
                module_dir / "bareos-dir.py")
    options = "python3:module_path=%s:interpreter=%s" % (module_dir,
                                                          interpreter)
    if name_it:
        options += ":module_name=bareos-dir"
    job = new_job(director)
    job.run([options + ":myoption=myvalue"], status="T", files=7, bytes=99)
    no_failures(job)
    [info] = [m.text for m in job.messages if m.type == bareosdir.M_INFO]
    assert "ended with status T, 7 files, 99 bytes" in info
    assert FRAMEWORK_EVENTS <= job.events(plugin="python3")
