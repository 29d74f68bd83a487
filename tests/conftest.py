"""Shared fixtures: plugin modules written into a temporary directory, and
option strings pointing at them."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from bareosdir.testing import PLUGINS_DIR, Director
from servers import Simulator, forget_plugin_modules
from shimutil import Site, install

# Plugin files are judged by who may write where they lie (README,
# Security): directories the tests make are writable by their owner only,
# whatever umask the shell had.
os.umask(0o022)


class PluginFactory:
    """Writes plugin modules into one directory (a module_path)."""

    def __init__(self, path: Path, mode: str = "isolated") -> None:
        self.path = path
        self.mode = mode

    def write(self, name: str, source: str) -> str:
        (self.path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    def options(self, name: str, extra: str = "", prefix: str = "python") -> str:
        opts = f"{prefix}:module_path={self.path}:module_name={name}"
        if self.mode != "isolated":
            opts += f":interpreter={self.mode}"
        return opts + (":" + extra if extra else "")


@pytest.fixture(params=["isolated", "main"])
def plugins(tmp_path: Path, request: pytest.FixtureRequest) -> PluginFactory:
    """Plugins in a module_path, run in each interpreter mode."""
    d = tmp_path / "plugins"
    d.mkdir()
    return PluginFactory(d, request.param)


# A well-behaved plugin that records what it sees in job messages.
ECHO_PLUGIN = """
    import bareosdir

    calls = []

    def load_bareos_plugin(plugindef):
        calls.append("load")
        bareosdir.RegisterEvents([bareosdir.bDirEventJobStart,
                                  bareosdir.bDirEventJobEnd,
                                  bareosdir.bDirEventJobInit,
                                  bareosdir.bDirEventJobRun])
        return bareosdir.bRC_OK

    def parse_plugin_definition(plugindef):
        calls.append("parse:" + plugindef)
        return bareosdir.bRC_OK

    def handle_plugin_event(event):
        calls.append(event)
        bareosdir.JobMessage(bareosdir.M_INFO, "event=%d calls=%r" % (event, calls))
        return bareosdir.bRC_OK
"""


@pytest.fixture
def no_plugin_modules_left_behind():
    """For unit tests that import plugin modules into this process; see
    servers.forget_plugin_modules."""
    yield
    forget_plugin_modules()


@pytest.fixture
def director():
    """A mock Director with bareosdir's own plugin directory."""
    with Director(name="bareos-dir", plugin_dir=PLUGINS_DIR) as d:
        yield d


@pytest.fixture
def sim(tmp_path):
    """bareosdir-sim with the built shim (a test fails when it is not built)."""
    simulator = Simulator(tmp_path / "sim")
    reason = simulator.missing_reason()
    if reason:
        pytest.fail(reason)
    stale = simulator.stale_plugin_files()
    if stale:
        pytest.fail("the build's copy of bareosdir/plugins differs from the "
                    "source (%s): rebuild with cmake --build %s"
                    % (", ".join(stale), simulator.build))
    return simulator.configure()


def event_plugin(handle: str, events=(2,), imports: str = "") -> str:
    """Source of a plugin that registers `events` and runs `handle` (the
    body of handle_plugin_event(e); it answers bRC_OK unless the body
    returns).  `imports` are more modules for the import line."""
    body = textwrap.indent(textwrap.dedent(handle).strip("\n"), "    ")
    return (f"import bareosdir{', ' + imports if imports else ''}\n"
            "def load_bareos_plugin(d):\n"
            f"    bareosdir.RegisterEvents({list(events)!r})\n"
            "    return 0\n"
            "def parse_plugin_definition(d): return 0\n"
            "def handle_plugin_event(e):\n"
            f"{body}\n"
            "    return 0\n")


@pytest.fixture(scope="session")
def prefix(tmp_path_factory) -> Path:
    """The build installed once per run (cmake --install) into a private
    prefix, as an administrator installs it; tests that put files into its
    Plugin Directory remove them, or copy the prefix first."""
    p = tmp_path_factory.mktemp("prefix")
    install(p)
    return p


@pytest.fixture(scope="session")
def plugin_dir(prefix) -> Path:
    """The Plugin Directory of that prefix: the real python-dir.so."""
    return prefix / "lib" / "bareos" / "plugins"


@pytest.fixture
def site(plugin_dir, tmp_path) -> Site:
    """A Director configuration of this test's around that Plugin
    Directory, run by bareosdir-sim."""
    return Site(tmp_path, plugin_dir)
