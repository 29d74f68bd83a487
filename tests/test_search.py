"""Where plugin modules are found (one search, both interpreter modes) and
that plugin code comes only from places no one else can write: through the
real shim, as the Director loads it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from conftest import event_plugin
from shimutil import Site, copy_prefix

MODES = ["isolated", "main"]


@pytest.fixture
def site(prefix, tmp_path) -> Site:
    # A Plugin Directory of its own per test: tests put files into it.
    return Site(tmp_path, copy_prefix(prefix, tmp_path / "prefix"))


def run(site: Site, options: list[str], *args: str, env: dict | None = None,
        name: str = "conf"):
    conf = site.config(options, name=name)
    e = {"PYTHONDONTWRITEBYTECODE": "", "BAREOSDIR_STRICT_PATHS": ""}
    e.update(env or {})
    return site.run(conf, *args, env=e)


def says(text: str) -> str:
    return event_plugin(
        f'bareosdir.JobMessage(bareosdir.M_INFO, {text!r})')


def texts(r) -> list[str]:
    return [t for _, t in r.job_lines()]


# ---- the search order ---------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_plugin_found_only_through_bareosdir_path(site, tmp_path, mode):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "fromextra.py").write_text(textwrap.dedent(says("extra plugin ran")))
    r = run(site, [f"python:module_name=fromextra:interpreter={mode}"],
            env={"BAREOSDIR_PATH": str(extra)})
    assert r.returncode == 0, r.all_output
    assert texts(r) == ["extra plugin ran"]


@pytest.mark.parametrize("mode", MODES)
def test_plugin_found_only_on_site_packages(site, tmp_path, mode):
    # A directory reached only through a .pth file (as site-packages are):
    # it is on sys.path, not among the administrator's directories.
    extra, pkgs = tmp_path / "extra", tmp_path / "pkgs"
    extra.mkdir()
    pkgs.mkdir()
    (extra / "more.pth").write_text(f"{pkgs}\n")
    (pkgs / "fromsite.py").write_text(textwrap.dedent(says("site plugin ran")))
    r = run(site, [f"python:module_name=fromsite:interpreter={mode}"],
            env={"BAREOSDIR_PATH": str(extra)})
    assert r.returncode == 0, r.all_output
    assert texts(r) == ["site plugin ran"]


COMPANION = """
    import bareosdir
    from BareosDirPluginBaseclass import BareosDirPluginBaseclass

    class BareosDirPluginPrometheusExporter(BareosDirPluginBaseclass):
        def __init__(self, plugindef):
            super().__init__(plugindef)
            bareosdir.RegisterEvents([bareosdir.bDirEventJobEnd])

        def handle_plugin_event(self, event):
            super().handle_plugin_event(event)
            if event == bareosdir.bDirEventJobEnd:
                bareosdir.JobMessage(bareosdir.M_INFO,
                                     "administrator's exporter, job=%s"
                                     % self.options.get("job", "?"))
            return bareosdir.bRC_OK
"""

LOADER = """
    import bareosdir
    import BareosDirPluginPrometheusExporter
    import BareosDirWrapper
    from BareosDirWrapper import *

    def load_bareos_plugin(plugindef):
        BareosDirWrapper.bareos_dir_plugin_object = (
            BareosDirPluginPrometheusExporter.BareosDirPluginPrometheusExporter(
                plugindef))
        return bareosdir.bRC_OK
"""


@pytest.mark.parametrize("mode", MODES)
def test_contrib_loader_in_the_plugin_directory_wins(site, mode):
    # bareos-contrib's shape: a loader and its companion class module, of
    # the same names as our bundled ones, in the Plugin Directory; the
    # Bareos 22+ options line, without module_path.
    d = site.plugin_dir
    (d / "bareos-dir-prometheus-exporter.py").write_text(textwrap.dedent(LOADER))
    (d / "BareosDirPluginPrometheusExporter.py").write_text(textwrap.dedent(COMPANION))
    r = run(site, [f"python:module_name=bareos-dir-prometheus-exporter:job=x:interpreter={mode}"],
            "-d", "100")
    assert r.returncode == 0, r.all_output
    assert texts(r) == ["administrator's exporter, job=x"]
    # Where each module of the plugin came from (level 100).
    for name, where in [("bareos-dir-prometheus-exporter", d),
                        ("BareosDirPluginPrometheusExporter", d),
                        ("BareosDirWrapper", d / "bareosdir" / "plugins"),
                        ("BareosDirPluginBaseclass", d / "bareosdir" / "plugins")]:
        assert f"bareosdir: module {name} loaded from {where}/{name}.py" in r.stderr, r.stderr


@pytest.mark.parametrize("mode", MODES)
def test_bundled_loader_gets_the_bundled_companion(site, mode):
    # Only a companion of the administrator's: the bundled loader is found
    # in bareosdir/plugins, which then comes first for its own imports.
    (site.plugin_dir / "BareosDirPluginPrometheusExporter.py").write_text(
        "raise ImportError('administrator companion imported')\n")
    r = run(site, [f"python:module_name=bareos-dir-prometheus-exporter:interpreter={mode}"
                   ":gateway_host=127.0.0.1:gateway_port=9"], "-d", "100")
    assert "administrator companion imported" not in r.all_output
    bundled = site.plugin_dir / "bareosdir" / "plugins"
    assert (f"module BareosDirPluginPrometheusExporter loaded from "
            f"{bundled}/BareosDirPluginPrometheusExporter.py") in r.stderr


@pytest.mark.parametrize("mode", MODES)
def test_found_directory_comes_first_for_the_plugins_imports(site, mode):
    # module_path is searched first, but the plugin lives in the Plugin
    # Directory: its companion there wins over module_path's one.
    site.write_plugin("companion", "WHO = 'module_path companion'\n")
    (site.plugin_dir / "withcompanion.py").write_text(textwrap.dedent(event_plugin(
        "bareosdir.JobMessage(bareosdir.M_INFO, companion.WHO)",
        imports="companion")))
    (site.plugin_dir / "companion.py").write_text("WHO = 'plugin dir companion'\n")
    r = run(site, [f"python:module_path={site.module_path}:module_name=withcompanion:interpreter={mode}"])
    assert r.returncode == 0, r.all_output
    assert texts(r) == ["plugin dir companion"]
    # ...and the other way round: found in module_path, its companion first.
    site.write_plugin("withcompanion", event_plugin(
        "bareosdir.JobMessage(bareosdir.M_INFO, companion.WHO)", imports="companion"))
    r = run(site, [f"python:module_path={site.module_path}:module_name=withcompanion:interpreter={mode}"],
            name="conf2")
    assert texts(r) == ["module_path companion"]


@pytest.mark.parametrize("mode", MODES)
def test_plugin_directory_before_bareosdir_path_before_bundled(site, tmp_path, mode):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "ordered.py").write_text(textwrap.dedent(says("from BAREOSDIR_PATH")))
    (extra / "bareos_dir_consts.py").write_text("raise ImportError('never')\n")
    env = {"BAREOSDIR_PATH": str(extra)}
    r = run(site, [f"python:module_name=ordered:interpreter={mode}"], env=env)
    assert texts(r) == ["from BAREOSDIR_PATH"], r.all_output
    (site.plugin_dir / "ordered.py").write_text(textwrap.dedent(says("from the Plugin Directory")))
    r = run(site, [f"python:module_name=ordered:interpreter={mode}"], env=env, name="c2")
    assert texts(r) == ["from the Plugin Directory"], r.all_output
    # The administrator's directories come before the bundled plugins.
    (extra / "bareos-dir-class-plugin.py").write_text(textwrap.dedent(says("admin class plugin")))
    r = run(site, [f"python:module_name=bareos-dir-class-plugin:interpreter={mode}"], env=env,
            name="c3")
    assert texts(r) == ["admin class plugin"], r.all_output


@pytest.mark.parametrize("mode", MODES)
def test_a_bareosdir_module_of_theirs_is_never_imported(site, mode):
    d = site.plugin_dir
    (d / "bareosdir.py").write_text("raise ImportError('their bareosdir module')\n")
    site.write_plugin("bareosdir", "raise ImportError('their bareosdir module')\n")
    name = site.write_plugin("usesapi", says("api is ours"))
    r = run(site, [f"python:module_path={site.module_path}:module_name={name}:interpreter={mode}"])
    assert r.returncode == 0, r.all_output
    assert texts(r) == ["api is ours"]


@pytest.mark.parametrize("mode", MODES)
def test_the_file_the_search_found_is_the_one_run(site, mode):
    # Python has a frozen module __hello__, which its import system finds
    # before any directory: the plugin of that name the search found in
    # module_path is still the one loaded, in both modes.
    name = site.write_plugin("__hello__", says("the administrator's __hello__"))
    r = run(site, [f"python:module_path={site.module_path}:module_name={name}:interpreter={mode}"],
            "-d", "100")
    assert r.returncode == 0, r.all_output
    assert texts(r) == ["the administrator's __hello__"]
    assert f"module __hello__ loaded from {site.module_path}/__hello__.py" in r.stderr


# ---- plugin code only from places no one else can write -----------------


def code_that_leaves_a_trace(trace: Path) -> str:
    return (f"open({str(trace)!r}, 'w').write('ran')\n"
            + textwrap.dedent(says("plugin ran")))


def warnings(r) -> list[str]:
    return [t for t in texts(r) if t.startswith("Warning: ")]


def fatals(r) -> list[str]:
    return [t for t in texts(r) if t.startswith("Fatal error: ")]


def nobody_uid() -> int:
    import pwd
    return pwd.getpwnam("nobody").pw_uid


def make_case(case: str, base: Path, trace: Path) -> tuple[Path, Path]:
    """A module_path for `case` under base (a safe tree); returns
    (module_path, the path a finding must name)."""
    mp = base / "mp"
    mp.mkdir(mode=0o755)
    f = mp / "judged.py"
    if case == "dir-0777":
        mp.chmod(0o777)
        blame = mp
    elif case == "dir-group-writable":
        mp.chmod(0o775)
        blame = mp
    elif case == "dir-owned-by-nobody":
        os.chown(mp, nobody_uid(), -1)
        blame = mp
    elif case == "sticky-module-path":
        mp.chmod(0o1777)
        blame = mp
    elif case == "file-0666":
        blame = f
    elif case == "symlink-to-unsafe":
        unsafe = base / "unsafe"
        unsafe.mkdir()
        unsafe.chmod(0o777)
        (unsafe / "real.py").write_text(code_that_leaves_a_trace(trace))
        f.symlink_to(unsafe / "real.py")
        return mp, unsafe
    else:
        raise AssertionError(case)
    f.write_text(code_that_leaves_a_trace(trace))
    if case == "file-0666":
        f.chmod(0o666)
    return mp, blame


CASES = ["dir-0777", "file-0666", "dir-group-writable", "dir-owned-by-nobody",
         "sticky-module-path", "symlink-to-unsafe"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_unsafe_place_is_one_warning_per_instance_and_path(site, tmp_path, case, mode):
    trace = tmp_path / "trace"
    mp, blame = make_case(case, tmp_path, trace)
    r = run(site, [f"python:instance=0:module_path={mp}:module_name=judged:interpreter={mode}",
                   f"python:instance=1:module_path={mp}:module_name=judged:interpreter={mode}"],
            "--jobs", "2")
    assert r.returncode == 0, r.all_output
    assert trace.exists()
    w = warnings(r)
    # One per instance and path: two instances, two jobs.
    assert len(w) == 4, r.all_output
    for text in w:
        assert str(blame) in text and "mode " in text, text
        assert "chmod" in text or "chown" in text
    assert sorted(texts(r)).count("plugin ran") == 4


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_strict_paths_refuse_and_nothing_runs(site, tmp_path, case, mode):
    trace = tmp_path / "trace"
    mp, blame = make_case(case, tmp_path, trace)
    r = run(site, [f"python:module_path={mp}:module_name=judged:interpreter={mode}:on_error=warning"],
            env={"BAREOSDIR_STRICT_PATHS": "1"})
    assert r.returncode != 0, r.all_output
    assert len(fatals(r)) == 1, r.all_output
    assert "BAREOSDIR_STRICT_PATHS=1" in r.stdout and str(blame) in r.stdout
    assert not trace.exists()
    assert "plugin ran" not in r.all_output


@pytest.mark.parametrize("mode", MODES)
def test_sticky_ancestor_of_a_safe_directory_is_fine(site, tmp_path, mode):
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    mp = sticky / "mine"
    mp.mkdir(mode=0o755)
    (mp / "safe.py").write_text(textwrap.dedent(says("safe ran")))
    r = run(site, [f"python:module_path={mp}:module_name=safe:interpreter={mode}"],
            env={"BAREOSDIR_STRICT_PATHS": "1"})
    assert r.returncode == 0, r.all_output
    assert texts(r) == ["safe ran"]


@pytest.mark.parametrize("mode", MODES)
def test_safe_tree_gives_no_message_and_no_bytecode(site, tmp_path, mode):
    # module_path, the Plugin Directory and a BAREOSDIR_PATH entry, all
    # safe: no message at all, and no __pycache__ written anywhere there.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "extrahelper.py").write_text("WHO = 'extra'\n")
    (site.plugin_dir / "dirhelper.py").write_text("WHO = 'dir'\n")
    site.write_plugin("mphelper", "WHO = 'mp'\n")
    name = site.write_plugin("safeall", event_plugin(
        "bareosdir.JobMessage(bareosdir.M_INFO, '/'.join([mphelper.WHO, dirhelper.WHO, extrahelper.WHO]))",
        imports="mphelper, dirhelper, extrahelper"))
    dirs = [site.module_path, site.plugin_dir, extra]
    before = {p for d in dirs for p in d.rglob("__pycache__")}
    r = run(site, [f"python:module_path={site.module_path}:module_name={name}:interpreter={mode}",
                   "python:instance=1:module_name=bareos-dir-class-plugin"],
            "--jobs", "2", env={"BAREOSDIR_PATH": str(extra)})
    assert r.returncode == 0, r.all_output
    assert texts(r) == ["mp/dir/extra"] * 2
    assert "Warning" not in r.all_output and "Fatal" not in r.all_output
    after = {p for d in dirs for p in d.rglob("__pycache__")}
    assert after == before, after - before


@pytest.mark.parametrize("mode", MODES)
def test_package_inside_the_plugin_directory_is_judged(site, mode):
    # Installed beside the shim, bareosdir/plugins lies inside the Plugin
    # Directory: its framework and bundled plugins are judged like the
    # administrator's files (README, Security).
    bundled = site.plugin_dir / "bareosdir" / "plugins"
    bundled.chmod(0o775)
    r = run(site, [f"python:module_name=bareos-dir-class-plugin:interpreter={mode}"])
    assert r.returncode == 0, r.all_output
    w = warnings(r)
    assert w and all(str(bundled) in t for t in w), r.all_output
    assert "bareos-dir-class-plugin" in w[0]


def test_findings_under_bareosdir_testing(tmp_path):
    # The same check in the mock Director, in this process.
    import bareosdir
    from bareosdir.testing import Director

    mp = tmp_path / "open"
    mp.mkdir()
    mp.chmod(0o777)
    (mp / "judged.py").write_text(textwrap.dedent(says("ran")))
    for mode in MODES:
        with Director() as director:
            job = director.job()
            job.run([f"python:module_path={mp}:module_name=judged:interpreter={mode}"])
            w = [m.text for m in job.messages if m.type == bareosdir.M_WARNING]
            assert len(w) == 1 and str(mp) in w[0] and "0777" in w[0], w
        os.environ["BAREOSDIR_STRICT_PATHS"] = "1"
        try:
            with Director() as director:
                job = director.job()
                job.run([f"python:module_path={mp}:module_name=judged:interpreter={mode}"])
                assert job.fatal_count == 1
                assert not [m for m in job.messages if m.text == "ran"]
        finally:
            del os.environ["BAREOSDIR_STRICT_PATHS"]


@pytest.mark.parametrize("mode", MODES)
def test_a_change_between_jobs_is_judged_afresh(tmp_path, monkeypatch, mode):
    # The check keeps what it worked out between jobs (in the interpreter
    # the next job reuses): a chmod, chown or replaced file since the last
    # job must still be seen, and a fixed one must load again.
    import bareosdir
    from bareosdir import _bareosdir
    from bareosdir.testing import Director

    monkeypatch.setenv("BAREOSDIR_STRICT_PATHS", "1")
    mp = tmp_path / "mp"
    mp.mkdir(mode=0o755)
    f = mp / "judged.py"
    f.write_text(textwrap.dedent(says("ran 1")))
    f.chmod(0o644)
    opts = [f"python:module_path={mp}:module_name=judged:interpreter={mode}"]

    def replace(text: str, mode_bits: int) -> None:
        new = mp / "judged.new"
        new.write_text(textwrap.dedent(says(text)))
        new.chmod(mode_bits)
        os.replace(new, f)

    with Director() as director:
        def job():
            j = director.job()
            j.run(opts)
            return j.fatal_count, [m.text.rstrip("\n") for m in j.messages
                                   if m.type == bareosdir.M_INFO]

        reused = _bareosdir._stats()["reused"]
        assert job() == (0, ["ran 1"])
        assert job() == (0, ["ran 1"])
        f.chmod(0o664)
        assert job() == (1, [])
        f.chmod(0o644)
        assert job() == (0, ["ran 1"])
        mp.chmod(0o775)
        assert job() == (1, [])
        mp.chmod(0o755)
        os.chown(f, nobody_uid(), -1)
        assert job() == (1, [])
        os.chown(f, 0, -1)
        assert job() == (0, ["ran 1"])
        replace("ran 2", 0o666)
        assert job() == (1, [])
        replace("ran 3", 0o644)
        assert job() == (0, ["ran 3"])
        if mode == "isolated":
            # The jobs ran in a reused interpreter, where the cache lives.
            assert _bareosdir._stats()["reused"] > reused


@pytest.mark.parametrize("mode", MODES)
def test_a_directory_changed_after_the_load_is_judged_afresh(tmp_path, monkeypatch, mode):
    # Within one load a directory above the plugin's files is stat'ed once;
    # an import after the load (here in an event) stats it again.
    import bareosdir
    from bareosdir.testing import Director

    monkeypatch.setenv("BAREOSDIR_STRICT_PATHS", "1")
    mp = tmp_path / "mp"
    mp.mkdir(mode=0o755)
    (mp / "early.py").write_text("WHO = 'early'\n")
    (mp / "late.py").write_text("WHO = 'late'\n")
    (mp / "opens.py").write_text(textwrap.dedent(event_plugin(f"""
        bareosdir.JobMessage(bareosdir.M_INFO, early.WHO)
        os.chmod({str(mp)!r}, 0o775)
        import late
        bareosdir.JobMessage(bareosdir.M_INFO, late.WHO)
        """, imports="os, early")))
    try:
        with Director() as director:
            job = director.job()
            job.run([f"python:module_path={mp}:module_name=opens:interpreter={mode}"
                     ":on_error=warning"])
            infos = [m.text.rstrip("\n") for m in job.messages
                     if m.type == bareosdir.M_INFO]
            assert infos == ["early"], job.messages
            assert job.fatal_count == 1
            (fatal,) = [m.text for m in job.messages if m.type == bareosdir.M_FATAL]
            assert str(mp) in fatal and "late" in fatal, fatal
    finally:
        mp.chmod(0o755)


@pytest.mark.parametrize("mode", MODES)
def test_strict_refusal_of_a_module_imported_later(site, tmp_path, mode):
    # The plugin is safe; a module it imports during an event lies in an
    # open BAREOSDIR_PATH entry: that call fails, on_error=warning or not.
    trace = tmp_path / "trace"
    extra = tmp_path / "open-extra"
    extra.mkdir()
    extra.chmod(0o777)
    (extra / "lazy.py").write_text(code_that_leaves_a_trace(trace))
    name = site.write_plugin("importslater", event_plugin("import lazy"))
    r = run(site, [f"python:module_path={site.module_path}:module_name={name}"
                   f":interpreter={mode}:on_error=warning"],
            env={"BAREOSDIR_STRICT_PATHS": "1", "BAREOSDIR_PATH": str(extra)})
    assert r.returncode != 0, r.all_output
    assert len(fatals(r)) == 1 and str(extra) in r.stdout, r.all_output
    assert not trace.exists()


def compiled(src: str, dst: Path) -> None:
    import py_compile
    s = dst.with_suffix(".src.py")
    s.write_text(src)
    py_compile.compile(str(s), cfile=str(dst), doraise=True)
    s.unlink()


@pytest.mark.parametrize("mode", MODES)
def test_bytecode_only_module_in_an_open_directory_is_judged_too(site, tmp_path, mode):
    # A .pyc planted in an open BAREOSDIR_PATH entry is found before a
    # source of the same name later in the order: it is judged like one.
    trace = tmp_path / "trace"
    extra = tmp_path / "open-extra"
    extra.mkdir()
    extra.chmod(0o777)
    compiled(f"open({str(trace)!r}, 'w').write('ran')\nWHO = 'planted'\n",
             extra / "helper.pyc")
    name = site.write_plugin("useshelper", event_plugin(
        "bareosdir.JobMessage(bareosdir.M_INFO, helper.WHO)", imports="helper"))
    env = {"BAREOSDIR_PATH": str(extra)}
    opts = [f"python:module_path={site.module_path}:module_name={name}:interpreter={mode}"]
    r = run(site, opts, env=env)
    assert r.returncode == 0, r.all_output
    assert texts(r)[-1] == "planted" and len(warnings(r)) == 1, r.all_output
    assert str(extra) in warnings(r)[0]
    trace.unlink()
    r = run(site, opts, env={**env, "BAREOSDIR_STRICT_PATHS": "1"}, name="strict")
    assert r.returncode != 0 and len(fatals(r)) == 1, r.all_output
    assert not trace.exists()


@pytest.mark.parametrize("mode", MODES)
def test_package_in_module_path_and_open_package_reported(site, tmp_path, mode):
    # Packages are found by the same search in both modes (main mode used
    # to find only plain modules there), and judged like modules.
    pkg = site.module_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("X = 'pkg'\n")
    extra = tmp_path / "open-extra"
    (extra / "openpkg").mkdir(parents=True)
    extra.chmod(0o777)
    (extra / "openpkg" / "__init__.py").write_text("Y = 'open'\n")
    name = site.write_plugin("usespkg", event_plugin(
        "bareosdir.JobMessage(bareosdir.M_INFO, mypkg.X + '/' + openpkg.Y)",
        imports="mypkg, openpkg"))
    r = run(site, [f"python:module_path={site.module_path}:module_name={name}:interpreter={mode}"],
            env={"BAREOSDIR_PATH": str(extra)})
    assert r.returncode == 0, r.all_output
    assert texts(r)[-1] == "pkg/open"
    (w,) = warnings(r)
    assert f"directory {extra} " in w, w


@pytest.mark.parametrize("mode", MODES)
def test_a_replaced_file_of_the_same_size_and_mtime_runs_anew(tmp_path, monkeypatch, mode):
    # Compiled code is kept between jobs: a file replaced by another of the
    # same size and mtime (cp -p, rsync -t) must still be compiled afresh.
    # A directory on sys.path only (not judged, no descriptor check).
    import sys

    import bareosdir
    from bareosdir.testing import Director

    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    f = pkgs / "samesize.py"
    monkeypatch.setattr(sys, "path", [str(pkgs), *sys.path])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(pkgs), *filter(None, [os.environ.get("PYTHONPATH")])]))
    opts = [f"python:module_name=samesize:interpreter={mode}"]

    def write(text: str, like: os.stat_result | None = None) -> None:
        new = pkgs / "samesize.new"
        new.write_text(textwrap.dedent(says(text)))
        if like is not None:
            os.utime(new, ns=(like.st_atime_ns, like.st_mtime_ns))
        os.replace(new, f)

    with Director() as director:
        def job():
            j = director.job()
            j.run(opts)
            return j.fatal_count, [m.text.rstrip("\n") for m in j.messages
                                   if m.type == bareosdir.M_INFO]

        write("ran 1")
        assert job() == (0, ["ran 1"])
        before = f.stat()
        write("ran 2", like=before)
        after = f.stat()
        assert (after.st_size, after.st_mtime_ns) == (before.st_size,
                                                     before.st_mtime_ns)
        assert job() == (0, ["ran 2"])


@pytest.mark.parametrize("mode", MODES)
def test_a_dotted_module_name_never_runs_a_top_level_file_of_its_last_part(
        tmp_path, mode):
    # module_name=foo.bar with a top-level bar.py beside package foo:
    # looked up by its last part, the wrong file would run as foo.bar.
    import bareosdir
    from bareosdir.testing import Director

    mp = tmp_path / "mp"
    (mp / "foo").mkdir(parents=True)
    (mp / "foo" / "__init__.py").write_text("")
    (mp / "foo" / "bar.py").write_text(textwrap.dedent(says("foo.bar ran")))
    (mp / "bar.py").write_text(textwrap.dedent(says("top-level bar ran")))
    with Director() as director:
        j = director.job()
        j.run([f"python:module_path={mp}:module_name=foo.bar:interpreter={mode}"])
        infos = [m.text.rstrip("\n") for m in j.messages
                 if m.type == bareosdir.M_INFO]
    if mode == "isolated":
        assert (j.fatal_count, infos) == (0, ["foo.bar ran"])
    else:
        assert (j.fatal_count, infos) == (1, [])
        assert any("top-level file only" in m.text for m in j.messages)
