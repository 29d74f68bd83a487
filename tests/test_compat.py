"""What plugins and tests written for Bareos's own bareosdir module rely on:
the order of argument and context errors, constant dicts with bytes or str
keys, bound-method entry points (old and new form), and what
bareosdir.testing's job.events() answers."""

from __future__ import annotations

import pytest

import bareosdir


# Bareos parses each function's argument format first (i|z, i, iO, O), then
# checks for a context, then looks at the contents.  Outside a job:
@pytest.mark.parametrize("call, error", [
    (lambda: bareosdir.GetValue(1), RuntimeError),
    (lambda: bareosdir.SetValue(2, 2), RuntimeError),
    (lambda: bareosdir.DebugMessage("text only"), TypeError),
    (lambda: bareosdir.DebugMessage(100, "text"), RuntimeError),
    (lambda: bareosdir.JobMessage("text only"), TypeError),
    (lambda: bareosdir.JobMessage(100, "text"), RuntimeError),
    (lambda: bareosdir.RegisterEvents(1), RuntimeError),
    (lambda: bareosdir.UnRegisterEvents(1), RuntimeError),
    (lambda: bareosdir.GetInstanceCount(), RuntimeError),
    # formats: counts and ints
    (lambda: bareosdir.GetValue(), TypeError),
    (lambda: bareosdir.GetValue("1"), TypeError),
    (lambda: bareosdir.SetValue(2), TypeError),
    (lambda: bareosdir.SetValue("2", 2), TypeError),
    (lambda: bareosdir.RegisterEvents(), TypeError),
    (lambda: bareosdir.DebugMessage(100, b"bytes"), TypeError),
    (lambda: bareosdir.GetInstanceCount(1), TypeError),
    # contents come after the context
    (lambda: bareosdir.SetValue(2, object()), RuntimeError),
    (lambda: bareosdir.UnRegisterEvents("not a sequence of ints"), RuntimeError),
])
def test_argument_errors_before_context_errors(call, error):
    with pytest.raises(error) as e:
        call()
    if error is RuntimeError:
        assert "no Bareos Director context" in str(e.value)


def test_contents_checked_inside_a_job(bareos_director):
    with bareos_director.job("BackupClient1").bind():
        with pytest.raises(TypeError):
            bareosdir.RegisterEvents(1)
        with pytest.raises(TypeError):
            bareosdir.SetValue(bareosdir.bwDirVarVolumeName, 2)


# Entry points that are bound methods: `self` is not a parameter the host
# passes, so the form is told by the parameters after it.
NEW_STYLE_BOUND = """
import bareosdir

class Plugin:
    def load(self, plugindef):
        bareosdir.RegisterEvents([bareosdir.bDirEventJobEnd])
        bareosdir.JobMessage(bareosdir.M_INFO, "new load " + plugindef)
        return bareosdir.bRC_OK

    def parse(self, plugindef):
        return bareosdir.bRC_OK

    def handle(self, event):
        bareosdir.JobMessage(bareosdir.M_INFO, "new event %d" % event)
        return bareosdir.bRC_OK

_p = Plugin()
load_bareos_plugin = _p.load
parse_plugin_definition = _p.parse
handle_plugin_event = _p.handle
"""

OLD_STYLE_BOUND = """
import bareosdir

class Plugin:
    def load(self, context, plugindef):
        bareosdir.RegisterEvents(context, [bareosdir.bDirEventJobEnd])
        bareosdir.JobMessage(context, bareosdir.M_INFO, "old load " + plugindef)
        return bareosdir.bRC_OK

    def parse(self, context, plugindef):
        return bareosdir.bRC_OK

    def handle(self, context, event):
        bareosdir.JobMessage(context, bareosdir.M_INFO, "old event %d" % event)
        return bareosdir.bRC_OK

_p = Plugin()
load_bareos_plugin = _p.load
parse_plugin_definition = _p.parse
handle_plugin_event = _p.handle
"""


@pytest.mark.parametrize("source, form", [(NEW_STYLE_BOUND, "new"),
                                          (OLD_STYLE_BOUND, "old")],
                         ids=["new", "old"])
def test_bound_method_entry_points(plugins, director, source, form):
    name = plugins.write(f"bound_{form}", source)
    job = director.job("BackupClient1")
    job.run([plugins.options(name, "x=1")])
    assert [m.text for m in job.messages] == [f"{form} load x=1:\n",
                                              f"{form} event 2\n"]
    assert job.rcs["JobEnd"] == bareosdir.bRC_OK


def test_legacy_detection_of_bound_methods():
    from bareosdir import _hostio

    class New:
        def load(self, plugindef): ...

    class Old:
        def load(self, context, plugindef): ...

    class Module:
        pass

    m = Module()
    m.load_bareos_plugin = New().load
    assert _hostio.legacy_context(m) is None
    m.load_bareos_plugin = Old().load
    assert isinstance(_hostio.legacy_context(m), _hostio.PluginContext)


# ---- secrets: one rule for the host's options line and the base class ----

SECRET_KEYS = ["password", "passwd", "pass", "pwd", "secret", "token", "key",
               "credential", "credentials", "auth", "DB_Password", "myPASSWD",
               "gatewayPass", "apiKey", "X-Auth", "client_secret", "access_token"]
PLAIN_KEYS = ["user", "host", "port", "monitor", "pas", "instancename"]


def test_secret_rule_is_shared():
    from bareosdir import _bareosdir
    from bareosdir.plugins import BareosDirPluginBaseclass as base
    assert set(base.SECRET_WORDS) == {"password", "passwd", "pass", "pwd",
                                      "secret", "token", "key", "credential",
                                      "auth"}
    for key in SECRET_KEYS:
        assert _bareosdir._is_secret_key(key), key
        assert base.redacted(key, "v") == "****"
        assert base.redacted(key, "") == "****"
    for key in PLAIN_KEYS:
        assert not _bareosdir._is_secret_key(key), key
        assert base.redacted(key, "v") == "v"


def test_secret_values_never_in_debug_output(director):
    options = ":".join(f"{k}=S{i}x" for i, k in enumerate(SECRET_KEYS))
    plain = ":".join(f"{k}=visible{i}" for i, k in enumerate(PLAIN_KEYS))
    job = director.job("BackupClient1")
    job.run([f"python:module_name=bareos-dir-class-plugin:{options}:{plain}"])
    debug = "".join(m.text for m in job.debug_messages)
    for i, key in enumerate(SECRET_KEYS):
        assert f"S{i}x" not in debug, key
    # the host's line and the base class's line both show the keys, masked
    assert debug.count("passwd=****") == 2, debug
    assert debug.count("credentials=****") == 2
    for i, key in enumerate(PLAIN_KEYS):
        assert f"{key}=visible{i}" in debug


# ---- constant dicts: str keys, bytes lookups (Bareos 20-25) ----

GROUPS = ["bRCs", "bJobMessageType", "bDirVariable", "bwDirVariable",
          "bDirEventType"]


@pytest.mark.parametrize("group", GROUPS)
def test_constant_dicts_answer_str_and_bytes(group):
    d = getattr(bareosdir, group)
    assert isinstance(d, dict)
    keys = list(d)
    assert keys and all(type(k) is str for k in keys)
    assert len(d) == len(set(keys)) == len(keys)
    for k in keys:
        b = k.encode()
        assert d[k] == d[b] == d.get(k) == d.get(b) == getattr(bareosdir, k)
        assert k in d and b in d
        assert b not in d.keys()  # the keys themselves stay str
    for missing in ("nope", b"nope", b"\xff\xfe", 7, None):
        assert missing not in d
        assert d.get(missing) is None and d.get(missing, -1) == -1
        with pytest.raises(KeyError):
            d[missing]
    assert len(d) == len(keys)  # lookups added nothing


def test_constant_dict_type_is_per_module_object():
    import importlib.util
    import sys
    spec = importlib.util.find_spec("bareosdir._bareosdir")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    assert type(m.bRCs) is not type(bareosdir.bRCs)
    assert type(m.bRCs) is type(m.bDirVariable)
    with pytest.raises(TypeError):
        type(m.bRCs).get = None  # immutable type
    tp = type(m.bRCs)

    def use():
        for _ in range(1000):
            m.bRCs[b"bRC_OK"], m.bRCs.get(b"x"), b"bRC_OK" in m.bRCs
            dict(m.bRCs)
            with pytest.raises(KeyError):
                m.bRCs[b"x"]

    use()
    before = sys.getrefcount(tp)
    use()
    assert sys.getrefcount(tp) == before


BYTES_KEYS_PLUGIN = """
import bareosdir

def load_bareos_plugin(plugindef):
    bareosdir.RegisterEvents([bareosdir.bDirEventType[b"bDirEventJobEnd"]])
    return bareosdir.bRCs[b"bRC_OK"]

def parse_plugin_definition(plugindef):
    return bareosdir.bRCs.get(b"bRC_OK")

def handle_plugin_event(event):
    job = bareosdir.GetValue(bareosdir.bDirVariable[b"bDirVarJob"])
    ok = (b"bRC_OK" in bareosdir.bRCs and "bRC_OK" in bareosdir.bRCs
          and isinstance(bareosdir.bRCs, dict)
          and all(type(k) is str for k in bareosdir.bJobMessageType))
    bareosdir.JobMessage(bareosdir.bJobMessageType[b"M_INFO"],
                         "%s %s %d" % (job, ok, len(bareosdir.bwDirVariable)))
    return bareosdir.bRCs["bRC_OK"]
"""


def test_plugin_with_bytes_keys(plugins, director):
    name = plugins.write("bytes_keys", BYTES_KEYS_PLUGIN)
    job = director.job("BackupClient1")
    job.run([plugins.options(name)])
    assert job.rcs["JobEnd"] == bareosdir.bRC_OK
    assert [(m.type, m.text) for m in job.messages] == [
        (bareosdir.M_INFO, "BackupClient1 True 4\n")]


def test_constant_dict_type_ends_with_its_module():
    import gc
    import importlib.util
    import weakref
    spec = importlib.util.find_spec("bareosdir._bareosdir")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    m.bRCs[b"bRC_OK"]
    ref = weakref.ref(type(m.bRCs))
    del m
    gc.collect()
    assert ref() is None


# ---- bareosdir.testing: job.events() ----

def test_events_default_to_the_plugin_that_ran(plugins, director):
    from conftest import event_plugin
    name = plugins.write("ends", event_plugin("pass", events=(2, 4)))
    job = director.job("BackupClient1")
    job.run([plugins.options(name, prefix="python3")])
    assert job.events() == {2, 4}
    assert job.events(plugin="python3") == job.events(instance=0) == {2, 4}
    # the unused python context received nothing, not the host's 11
    assert job.events(plugin="python", instance=0) == set()
    # the ABI record keeps the host's options event and the order
    assert [c.event for c in job.calls if c.plugin == "python3"] == [
        0, bareosdir.bDirEventNewPluginOptions, 4, 2, -1]
    assert job.registered(plugin="python3") == {2, 4, 11}
    with pytest.raises(KeyError):
        job.events(plugin="python")  # it ran no plugin
    with pytest.raises(KeyError):
        job.events(plugin="python3", instance=5)


def test_events_refuse_ambiguity(plugins, director):
    from conftest import event_plugin
    a = plugins.write("a", event_plugin("pass", events=(1,)))
    b = plugins.write("b", event_plugin("pass", events=(2,)))
    job = director.job("BackupClient1")
    job.run([plugins.options(a, "instance=0"), plugins.options(b, "instance=1")])
    with pytest.raises(ValueError, match="python:instance=0, python:instance=1"):
        job.events()
    assert job.events(instance=0) == {1}
    assert job.events(instance=1) == {2}


def test_events_without_any_plugin(director):
    job = director.job("BackupClient1")
    job.run([])
    with pytest.raises(KeyError, match="no plugin ran"):
        job.events()
