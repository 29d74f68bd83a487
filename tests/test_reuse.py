"""A reused interpreter is handed on as a fresh one would be: what one
plugin changed in the host's modules or in interpreter-wide settings does
not reach the next plugin that gets the same interpreter (isolated mode)."""

from __future__ import annotations

import textwrap

import pytest

import bareosdir
from bareosdir import _bareosdir

# The checking plugin: reports what it sees, and whether it got the damaged
# plugin's interpreter (a mark left in a standard-library module, which
# survives by design).
CHECKER = """
import atexit, builtins, os, sys
import bareosdir
from bareosdir import _bareosdir

def load_bareos_plugin(plugindef):
    bareosdir.RegisterEvents([bareosdir.bDirEventJobEnd])
    return bareosdir.bRC_OK

def parse_plugin_definition(plugindef):
    return bareosdir.bRC_OK

def _deep(n):
    return 0 if n == 0 else 1 + _deep(n - 1)

def handle_plugin_event(event):
    seen = {
        "same_interpreter": getattr(os, "_bareosdir_test_mark", None),
        "module": sys.modules.get("bareosdir") is bareosdir
                  and hasattr(bareosdir, "GetValue")
                  and bareosdir.JobMessage is _bareosdir.JobMessage,
        "recursion": sys.getrecursionlimit(),
        "deep": _deep(300),
        "trace": sys.gettrace(),
        "profile": sys.getprofile(),
        "excepthook": sys.excepthook is sys.__excepthook__,
        "atexit": atexit._ncallbacks(),
        "print": builtins.print is builtins.__dict__.get("print")
                 and getattr(builtins.print, "__module__", None) == "builtins",
        "consts": bareosdir.bRCs.get("bRC_OK") == 0 and len(bareosdir.bRCs) == 9,
        "meta_path": all(type(f).__module__ != "evil" for f in sys.meta_path),
        "threading": None,
    }
    threading = sys.modules.get("threading")
    if threading is not None:
        seen["threading"] = (threading._trace_hook, threading._profile_hook)
    print("checker stdout")
    bareosdir.JobMessage(bareosdir.M_INFO, repr(sorted(seen.items())))
    return bareosdir.bRC_OK
"""

FRESH = {
    "module": True, "recursion": None, "deep": 300, "trace": None,
    "profile": None, "excepthook": True, "atexit": 0, "print": True,
    "consts": True, "meta_path": True,
}

# What the first plugin does to its interpreter, in handle_plugin_event.
DAMAGE = {
    "replace_jobmessage": "bareosdir.JobMessage = lambda *a, **k: None",
    "delete_functions": "del bareosdir.JobMessage\n"
                        "del bareosdir.GetValue\n"
                        "del _bareosdir.JobMessage",
    "replace_sys_modules": "import types\n"
                           "sys.modules['bareosdir'] = types.ModuleType('bareosdir')\n"
                           "sys.modules['bareosdir._bareosdir'] = None",
    "meta_path": "class Blocker:\n"
                 "    def find_spec(self, name, path=None, target=None):\n"
                 "        if name.startswith('checker'):\n"
                 "            raise ImportError('blocked by the previous plugin')\n"
                 "Blocker.__module__ = 'evil'\n"
                 "sys.meta_path.insert(0, Blocker())",
    "path_hooks": "class Nothing:\n"
                  "    def find_spec(self, name, target=None):\n"
                  "        return None\n"
                  "sys.path_hooks.insert(0, lambda path: Nothing())\n"
                  "sys.path_importer_cache.clear()",
    "recursion_limit": "sys.setrecursionlimit(60)",
    "trace_profile": "def t(*a):\n"
                     "    return t\n"
                     "sys.settrace(t)\n"
                     "sys.setprofile(t)\n"
                     "import threading\n"
                     "threading.settrace(t)\n"
                     "threading.setprofile(t)",
    "excepthook": "sys.excepthook = lambda *a: None",
    "atexit": "import atexit\n"
              "atexit.register(print, 'left by the previous plugin')",
    "builtins": "import builtins\n"
                "builtins.print = lambda *a, **k: None",
    "constant_dicts": "bareosdir.bRCs['bRC_OK'] = 5\n"
                      "bareosdir.bRCs['extra'] = 1",
    "stdout": "import io\n"
              "sys.stdout = io.StringIO()",
}


def damaging_plugin(code: str) -> str:
    body = textwrap.indent(code, "    ")
    return (
        "import os, sys\n"
        "import bareosdir\n"
        "from bareosdir import _bareosdir\n"
        "def load_bareos_plugin(d):\n"
        "    bareosdir.RegisterEvents([bareosdir.bDirEventJobEnd])\n"
        "    return 0\n"
        "def parse_plugin_definition(d):\n"
        "    return 0\n"
        "def handle_plugin_event(e):\n"
        "    os._bareosdir_test_mark = 'from the previous plugin'\n"
        f"{body}\n"
        "    return 0\n")


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damage_does_not_reach_the_next_plugin(director, tmp_path, damage):
    (tmp_path / "damager.py").write_text(damaging_plugin(DAMAGE[damage]))
    (tmp_path / "checker.py").write_text(CHECKER)
    # Both on this thread, one job after the other: the second gets the
    # interpreter (and this thread's thread state of it) the first left.
    first = director.job("BackupClient1")
    first.run([f"python:module_path={tmp_path}:module_name=damager"],
              threads=False)
    assert first.rcs["JobEnd"] == bareosdir.bRC_OK
    reused = _bareosdir._stats()["reused"]
    second = director.job("BackupClient1")
    second.run([f"python:module_path={tmp_path}:module_name=checker"],
               threads=False)
    assert _bareosdir._stats()["reused"] == reused + 1
    assert second.fatal_count == 0, second.messages
    assert second.rcs["JobEnd"] == bareosdir.bRC_OK
    [info] = [m.text for m in second.messages if m.type == bareosdir.M_INFO]
    seen = dict(eval(info))
    assert seen.pop("same_interpreter") == "from the previous plugin"
    limit = seen.pop("recursion")
    assert limit >= 1000
    threading_hooks = seen.pop("threading")
    assert threading_hooks in (None, (None, None))
    assert seen == {k: v for k, v in FRESH.items() if k in seen}
    assert "checker stdout\n" in [m.text for m in second.debug_messages]


def test_trace_set_on_one_thread_is_cleared_when_reset_on_another(director,
                                                                   tmp_path):
    """Thread states are cached per (OS thread, interpreter): a trace
    function the plugin left on the job's thread must not trace the next
    plugin there, though the reset ran on the thread that freed the job."""
    import threading

    (tmp_path / "damager.py").write_text(
        damaging_plugin(DAMAGE["trace_profile"]))
    (tmp_path / "checker.py").write_text(CHECKER)
    first = director.job("BackupClient1")
    first.new_plugins()
    first.plugin_options(f"python:module_path={tmp_path}:module_name=damager")
    assert first.event(bareosdir.bDirEventJobEnd) == bareosdir.bRC_OK
    freer = threading.Thread(target=first.free_plugins)
    freer.start()
    freer.join(60)
    reused = _bareosdir._stats()["reused"]
    second = director.job("BackupClient1")
    second.run([f"python:module_path={tmp_path}:module_name=checker"],
               threads=False)
    assert _bareosdir._stats()["reused"] == reused + 1
    [info] = [m.text for m in second.messages if m.type == bareosdir.M_INFO]
    seen = dict(eval(info))
    assert seen["same_interpreter"] == "from the previous plugin"
    assert seen["trace"] is None and seen["profile"] is None


def test_an_object_a_plugin_put_in_its_modules_place_is_not_handed_on(
        director, tmp_path):
    """A plugin module that replaces its own sys.modules entry with
    something that is not a module: the next instance of that name in the
    reused interpreter loads its file, not the object left behind."""
    f = tmp_path / "selfish.py"
    f.write_text("import sys, types\n"
                 "sys.modules[__name__] = types.SimpleNamespace()\n")
    opts = [f"python:module_path={tmp_path}:module_name=selfish"]
    first = director.job("BackupClient1")
    first.run(opts, threads=False)
    assert first.fatal_count == 1
    f.write_text(damaging_plugin("bareosdir.JobMessage(bareosdir.M_INFO, "
                                 "'selfish ran')"))
    reused = _bareosdir._stats()["reused"]
    second = director.job("BackupClient1")
    second.run(opts, threads=False)
    assert _bareosdir._stats()["reused"] == reused + 1
    assert second.fatal_count == 0, second.messages
    assert [m.text.rstrip("\n") for m in second.messages
            if m.type == bareosdir.M_INFO] == ["selfish ran"]
