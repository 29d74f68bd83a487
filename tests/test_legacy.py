"""Plugins written for Bareos 19 and older run unchanged (issue: legacy)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

import bareosdir

from shimutil import Site, install

# A private copy (0700 temporary directory): plugin files are judged by who
# can write where they lie, and a checkout's directories may be shared.
_TMP = tempfile.mkdtemp(prefix="bareosdir-legacy-")
atexit.register(shutil.rmtree, _TMP, True)
LEGACY = Path(shutil.copytree(Path(__file__).parent / "legacy", Path(_TMP) / "legacy"))
NEW_STYLE = """
import bareosdir
def load_bareos_plugin(plugindef):
    bareosdir.RegisterEvents([bareosdir.bDirEventJobEnd])
    return bareosdir.bRC_OK
def parse_plugin_definition(plugindef): return bareosdir.bRC_OK
def handle_plugin_event(event):
    bareosdir.JobMessage(bareosdir.M_INFO, "new style sees %d" % event)
    return bareosdir.bRC_OK
"""


@pytest.fixture(params=["isolated", "main"])
def mode(request):
    return request.param


def opts(name, mode, extra=""):
    return f"python:module_path={LEGACY}:module_name={name}:interpreter={mode}" + extra


def infos(job):
    return [m.text for m in job.messages if m.type == bareosdir.M_INFO]


def test_consts_module_matches_bareosdir():
    import sys
    sys.path.insert(0, str(Path(bareosdir.__file__).parent / "plugins"))
    try:
        import bareos_dir_consts as c
    finally:
        sys.path.pop(0)
    assert c.bRCs["bRC_OK"] == 0 and c.bDirEventType["bDirEventJobEnd"] == 2
    assert c.brDirVariable is c.bDirVariable
    assert c.bDirVariable["bDirVarJobName"] == 13
    assert c.bwDirVariable["bwDirVarPriority"] == 3
    assert c.bJobMessageType["M_INFO"] == 6
    assert all(isinstance(k, str) for d in (c.bRCs, c.bDirVariable) for k in d)


def test_old_function_plugin(bareos_director, mode):
    job = bareos_director.job("OldJob", client="old-fd")
    job.run([opts("legacy-function-plugin", mode, ":who=admin")])
    assert infos(job) == [
        "option who=admin\n",
        f"Job {job.name} starting\n",
        "Job ended with status T\n",
    ]
    assert job.fatal_count == 0
    assert any("load_bareos_plugin called with param: who=admin:" in m.text
               for m in job.debug_messages)


def test_old_class_plugin_two_instances(bareos_director, mode):
    job = bareos_director.job("OldJob", client="old-fd")
    job.run([opts("legacy-class-plugin", mode, ":instance=0:tag=a"),
             opts("legacy-class-plugin", mode, ":instance=1:tag=b")])
    assert sorted(infos(job)) == [
        "old class a: client=old-fd status=T events=[1, 3, 4, 2]\n",
        "old class b: client=old-fd status=T events=[1, 3, 4, 2]\n",
    ]
    assert job.fatal_count == 0


def test_old_and_new_plugins_in_one_job(bareos_director, mode, tmp_path):
    (tmp_path / "newstyle.py").write_text(NEW_STYLE)
    job = bareos_director.job("Mixed")
    job.run([opts("legacy-function-plugin", mode),
             f"python:instance=1:module_path={tmp_path}:module_name=newstyle:interpreter={mode}"])
    assert "Job ended with status T\n" in infos(job)
    assert "new style sees 2\n" in infos(job)
    assert job.fatal_count == 0


def test_wrong_context_object_is_a_type_error(bareos_director, mode, tmp_path):
    (tmp_path / "wrongctx.py").write_text("""
import bareosdir
def load_bareos_plugin(context, plugindef):
    bareosdir.RegisterEvents(context, [2])
    return 0
def parse_plugin_definition(context, plugindef): return 0
def handle_plugin_event(context, event):
    try:
        bareosdir.GetValue("not a context", 1)
    except TypeError as e:
        bareosdir.JobMessage(context, bareosdir.M_INFO, "TypeError: %s" % e)
    return 0
""")
    job = bareos_director.job()
    job.run([f"python:module_path={tmp_path}:module_name=wrongctx:interpreter={mode}"])
    (text,) = infos(job)
    assert text.startswith("TypeError: GetValue(): the first of 2 arguments must be "
                           "the plugin context that Bareos passed to the plugin")


def test_new_style_plugins_are_not_taken_for_old_ones(bareos_director, tmp_path):
    (tmp_path / "defaults.py").write_text("""
import bareosdir
def load_bareos_plugin(plugindef, extra=None):
    bareosdir.RegisterEvents([2])
    return 0
def parse_plugin_definition(plugindef): return 0
def handle_plugin_event(event):
    bareosdir.JobMessage(bareosdir.M_INFO, "new")
    return 0
""")
    job = bareos_director.job()
    job.run([f"python:module_path={tmp_path}:module_name=defaults"])
    assert infos(job) == ["new\n"]


def test_old_plugins_through_the_shim(tmp_path):
    plugin_dir = install(tmp_path / "prefix")
    site = Site(tmp_path, plugin_dir)
    for f in LEGACY.glob("*.py"):
        shutil.copy(f, site.module_path / f.name)
    conf = site.config([
        f"python:instance=0:module_path={site.module_path}:module_name=legacy-function-plugin:who=x",
        f"python:instance=1:module_path={site.module_path}:module_name=legacy-class-plugin:tag=c",
        f"python:instance=2:module_path={site.module_path}:module_name=legacy-class-plugin:tag=m:interpreter=main"])
    r = site.run(conf, "--jobs", "2")
    assert r.returncode == 0, r.all_output
    for jobid in (1, 2):
        texts = [t for _, t in r.job_lines(jobid)]
        assert "Job ended with status T" in texts
        assert any(t.startswith("old class c: client=client1-fd status=T") for t in texts)
        assert any(t.startswith("old class m: client=client1-fd status=T") for t in texts)
