"""The Python API of python-api.md, called directly from a test thread bound
to a mock job (bareosdir.testing's bind)."""

from __future__ import annotations

import importlib.util
import sys
import threading

import pytest

import bareosdir

SPEC_CONSTANTS = {
    "bRCs": dict(bRC_OK=0, bRC_Stop=1, bRC_Error=2, bRC_More=3, bRC_Term=4,
                 bRC_Seen=5, bRC_Core=6, bRC_Skip=7, bRC_Cancel=8),
    "bJobMessageType": dict(M_ABORT=1, M_DEBUG=2, M_FATAL=3, M_ERROR=4,
                            M_WARNING=5, M_INFO=6, M_SAVED=7, M_NOTSAVED=8,
                            M_SKIPPED=9, M_MOUNT=10, M_ERROR_TERM=11,
                            M_TERM=12, M_RESTORED=13, M_SECURITY=14,
                            M_ALERT=15, M_VOLMGMT=16),
    "bDirVariable": dict(
        bDirVarJob=1, bDirVarLevel=2, bDirVarType=3, bDirVarJobId=4,
        bDirVarClient=5, bDirVarNumVols=6, bDirVarPool=7, bDirVarStorage=8,
        bDirVarWriteStorage=9, bDirVarReadStorage=10, bDirVarCatalog=11,
        bDirVarMediaType=12, bDirVarJobName=13, bDirVarJobStatus=14,
        bDirVarPriority=15, bDirVarVolumeName=16, bDirVarCatalogRes=17,
        bDirVarJobErrors=18, bDirVarJobFiles=19, bDirVarSDJobFiles=20,
        bDirVarSDErrors=21, bDirVarFDJobStatus=22, bDirVarSDJobStatus=23,
        bDirVarPluginDir=24, bDirVarLastRate=25, bDirVarJobBytes=26,
        bDirVarReadBytes=27),
    "bwDirVariable": dict(bwDirVarJobReport=1, bwDirVarVolumeName=2,
                          bwDirVarPriority=3, bwDirVarJobLevel=4),
    "bDirEventType": dict(
        bDirEventJobStart=1, bDirEventJobEnd=2, bDirEventJobInit=3,
        bDirEventJobRun=4, bDirEventVolumePurged=5, bDirEventNewVolume=6,
        bDirEventNeedVolume=7, bDirEventVolumeFull=8, bDirEventRecyle=9,
        bDirEventGetScratch=10, bDirEventNewPluginOptions=11),
}


@pytest.mark.parametrize("group", sorted(SPEC_CONSTANTS))
def test_constant_groups_match_the_spec(group):
    expected = SPEC_CONSTANTS[group]
    assert getattr(bareosdir, group) == expected
    for name, value in expected.items():
        assert getattr(bareosdir, name) == value
        assert all(isinstance(k, str) for k in getattr(bareosdir, group))


def test_version_and_stubs_are_shipped():
    assert bareosdir.__version__.count(".") == 2
    pkg = importlib.util.find_spec("bareosdir").submodule_search_locations[0]
    import os
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    assert os.path.exists(os.path.join(pkg, "__init__.pyi"))


@pytest.mark.parametrize("call", [
    lambda: bareosdir.GetValue(1),
    lambda: bareosdir.SetValue(2, "x"),
    lambda: bareosdir.DebugMessage(1, "x"),
    lambda: bareosdir.JobMessage(6, "x"),
    lambda: bareosdir.RegisterEvents([1]),
    lambda: bareosdir.UnRegisterEvents([1]),
    lambda: bareosdir.GetInstanceCount(),
])
def test_no_director_context_raises_runtime_error(call):
    with pytest.raises(RuntimeError, match="no Bareos Director context"):
        call()


def test_no_context_in_a_plain_interpreter_process():
    import subprocess
    r = subprocess.run([sys.executable, "-c",
                        "import bareosdir; bareosdir.GetValue(1)"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "RuntimeError: bareosdir: no Bareos Director context" in r.stderr


@pytest.fixture
def job(bareos_director):
    j = bareos_director.job(
        "BackupClient1", jobid=42, level="Incremental", type="B",
        status="R", client="client1-fd", pool="Full", storage="File",
        read_storage="ReadFile", catalog="MyCatalog", media_type="FileMedia",
        volume_name="Full-0001", priority=7, num_vols=3, errors=2, files=10,
        sd_files=11, sd_errors=1, last_rate=99, bytes=2**40 + 5,
        read_bytes=123, fd_status="T", sd_status="R")
    with j.bind():
        yield j


def test_get_value_every_variable(job, bareos_director):
    V = bareosdir.bDirVariable
    expected = {
        "bDirVarJob": "BackupClient1", "bDirVarLevel": ord("I"),
        "bDirVarType": ord("B"), "bDirVarJobId": 42,
        "bDirVarClient": "client1-fd", "bDirVarNumVols": 3,
        "bDirVarPool": "Full", "bDirVarStorage": "File",
        "bDirVarWriteStorage": "File", "bDirVarReadStorage": "ReadFile",
        "bDirVarCatalog": "MyCatalog", "bDirVarMediaType": "FileMedia",
        "bDirVarJobStatus": ord("R"), "bDirVarPriority": 7,
        "bDirVarVolumeName": "Full-0001", "bDirVarCatalogRes": None,
        "bDirVarJobErrors": 2, "bDirVarJobFiles": 10,
        "bDirVarSDJobFiles": 11, "bDirVarSDErrors": 1,
        "bDirVarFDJobStatus": ord("T"), "bDirVarSDJobStatus": ord("R"),
        "bDirVarPluginDir": bareos_director.plugin_dir,
        "bDirVarLastRate": 99, "bDirVarJobBytes": 2**40 + 5,
        "bDirVarReadBytes": 123,
    }
    for name, value in expected.items():
        assert bareosdir.GetValue(V[name]) == value, name
    name = bareosdir.GetValue(V["bDirVarJobName"])
    assert name.startswith("BackupClient1.") and name.endswith("_42")


def test_get_value_unset_string_is_none(bareos_director):
    j = bareos_director.job("J")
    with j.bind():
        assert bareosdir.GetValue(bareosdir.bDirVarClient) is None


def test_get_value_unknown_variable_is_none_with_debug_message(job):
    assert bareosdir.GetValue(999) is None
    assert bareosdir.GetValue(0) is None
    texts = [m.text for m in job.debug_messages]
    assert any("unknown variable 999" in t for t in texts)


@pytest.mark.parametrize("bad", ["1", 1.0, None, [1]])
def test_get_value_wrong_type(job, bad):
    with pytest.raises(TypeError, match="GetValue"):
        bareosdir.GetValue(bad)


def test_get_value_wrong_arity(job):
    with pytest.raises(TypeError):
        bareosdir.GetValue()
    with pytest.raises(TypeError):
        bareosdir.GetValue(1, 2, 3)


def test_set_value(job):
    W = bareosdir.bwDirVariable
    assert bareosdir.SetValue(W["bwDirVarVolumeName"], "Vol-9") == bareosdir.bRC_OK
    assert bareosdir.SetValue(W["bwDirVarPriority"], 3) == bareosdir.bRC_OK
    assert bareosdir.SetValue(W["bwDirVarJobLevel"], ord("D")) == bareosdir.bRC_OK
    assert bareosdir.SetValue(W["bwDirVarJobReport"], "anything") == bareosdir.bRC_OK
    # bwDirVarJobReport answers bRC_OK and does nothing (python-api.md).
    assert job.values_set == {"VolumeName": "Vol-9", "Priority": 3,
                              "JobLevel": "D"}
    assert bareosdir.GetValue(bareosdir.bDirVarVolumeName) == "Vol-9"


def test_set_value_refusals(job):
    W = bareosdir.bwDirVariable
    assert bareosdir.SetValue(W["bwDirVarPriority"], -1) == bareosdir.bRC_Error
    assert bareosdir.SetValue(W["bwDirVarJobLevel"], -70) == bareosdir.bRC_Error
    assert bareosdir.SetValue(77, 1) == bareosdir.bRC_Error
    with pytest.raises(TypeError, match="must be str"):
        bareosdir.SetValue(W["bwDirVarVolumeName"], 5)
    with pytest.raises(TypeError, match="must be int"):
        bareosdir.SetValue(W["bwDirVarPriority"], "5")
    with pytest.raises(ValueError, match="NUL"):
        bareosdir.SetValue(W["bwDirVarVolumeName"], "a\0b")
    assert job.values_set == {}


def test_debug_message(job):
    bareosdir.DebugMessage(150, "hello")
    bareosdir.DebugMessage(151, "already\n")
    bareosdir.DebugMessage(152)
    bareosdir.DebugMessage(153, None)
    got = [(m.level, m.text) for m in job.debug_messages]
    assert got == [(150, "hello\n"), (151, "already\n"), (152, "\n"), (153, "\n")]


@pytest.mark.parametrize("args", [("text",), (1, 2), (1, b"bytes"), ()])
def test_debug_message_wrong_types(job, args):
    with pytest.raises(TypeError):
        bareosdir.DebugMessage(*args)


def test_job_message_newline_and_format_safety(job):
    bareosdir.JobMessage(bareosdir.M_INFO, "one")
    bareosdir.JobMessage(bareosdir.M_INFO, "two\n")
    bareosdir.JobMessage(bareosdir.M_INFO, "%s %n %x %%")
    bareosdir.JobMessage(bareosdir.M_WARNING, "nul\0byte")
    assert [(m.type, m.text) for m in job.messages] == [
        (6, "one\n"), (6, "two\n"), (6, "%s %n %x %%\n"), (5, "nul\\0byte\n")]


@pytest.mark.parametrize("mtype,name", [(1, "M_ABORT"), (11, "M_ERROR_TERM"),
                                        (18, "M_CONFIG_ERROR"), (17, "M_AUDIT"),
                                        (0, "unknown"), (99, "unknown"),
                                        (-3, "unknown")])
def test_job_message_types_that_would_end_the_director(job, mtype, name):
    bareosdir.JobMessage(mtype, "careful")
    (m,) = job.messages
    assert m.type == bareosdir.M_FATAL
    assert f"({mtype}) sent as M_FATAL" in m.text and name in m.text
    assert m.text.endswith("careful\n")


def test_job_message_wrong_types(job):
    with pytest.raises(TypeError):
        bareosdir.JobMessage("text")
    with pytest.raises(TypeError):
        bareosdir.JobMessage(6, 7)
    with pytest.raises(OverflowError):
        bareosdir.JobMessage(2**40, "x")


def test_register_events(job):
    assert bareosdir.RegisterEvents([1, 2, 99]) == bareosdir.bRC_OK
    assert bareosdir.RegisterEvents((3,)) == bareosdir.bRC_OK
    assert bareosdir.RegisterEvents(range(4, 5)) == bareosdir.bRC_OK
    assert bareosdir.UnRegisterEvents([2]) == bareosdir.bRC_OK
    assert bareosdir.RegisterEvents([0, 11, 12, -1]) == bareosdir.bRC_Error
    assert bareosdir.RegisterEvents([]) == bareosdir.bRC_Error
    assert bareosdir.UnRegisterEvents([50]) == bareosdir.bRC_Error


@pytest.mark.parametrize("bad", [5, None, "1234", b"12", {1: 2}.keys()])
def test_register_events_not_a_sequence(job, bad):
    with pytest.raises(TypeError, match="sequence"):
        bareosdir.RegisterEvents(bad)


def test_register_events_items_must_be_int(job):
    with pytest.raises(TypeError):
        bareosdir.RegisterEvents([1, "2"])


def test_get_instance_count_of_a_bare_context(job):
    # A bound test thread is no plugin's instance: the Director answers an
    # error, which the API gives as None (counts through plugins are in
    # test_engine.py).
    assert bareosdir.GetInstanceCount() is None
    with pytest.raises(TypeError):
        bareosdir.GetInstanceCount(1)


def test_bind_is_per_thread(job):
    errors = []

    def other():
        try:
            bareosdir.GetValue(1)
        except RuntimeError as e:
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join(30)
    assert len(errors) == 1
    assert bareosdir.GetValue(bareosdir.bDirVarJobId) == 42


def test_no_error_left_pending_after_failures(job):
    for bad in ("x", None):
        with pytest.raises(TypeError):
            bareosdir.GetValue(bad)
        assert bareosdir.GetValue(bareosdir.bDirVarJobId) == 42


def test_module_reimport_gives_independent_module_objects():
    spec = importlib.util.find_spec("bareosdir._bareosdir")
    m1 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m1)
    m2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m2)
    assert m1 is not m2 and m1.bRCs is not m2.bRCs
    m1.bRCs["bRC_OK"] = 99
    assert m2.bRCs["bRC_OK"] == 0 and bareosdir.bRCs["bRC_OK"] == 0


def test_api_calls_do_not_leak_references(job):
    text = "x" * 50
    before = sys.getrefcount(text)
    for _ in range(2000):
        bareosdir.DebugMessage(1, text)
        bareosdir.GetValue(bareosdir.bDirVarClient)
        bareosdir.SetValue(bareosdir.bwDirVarVolumeName, text)
    assert sys.getrefcount(text) == before


def test_testing_rejects_unknown_job_values(bareos_director):
    with pytest.raises(TypeError, match="unknown job value"):
        bareos_director.job("J", colour="red")
    with pytest.raises(ValueError, match="one character"):
        bareos_director.job("J", status="TT")
