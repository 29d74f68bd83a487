"""What plugins and tests written for Bareos's own bareosdir module rely on:
the order of argument and context errors, constant dicts with bytes or str
keys, bound-method entry points (old and new form), and what
bareosdir.testing's job.events() answers."""

from __future__ import annotations

import pytest

import bareosdir
from bareosdir.testing import Director


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
