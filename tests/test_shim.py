"""End to end: the real python-dir.so, installed as an administrator would,
dlopened by bareosdir-sim as bareos-dir does.  Never loaded into pytest's
own process (that would start a second Python runtime)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import event_plugin
from shimutil import ROOT, Site

SEED = ROOT / "examples" / "seed" / "bareos-dir.conf"
CURRENT = ROOT / "examples" / "python3" / "bareos-dir.conf"


REPORTER = """
    import bareosdir

    seen = []

    def load_bareos_plugin(plugindef):
        bareosdir.RegisterEvents([1, 2, 3, 4])
        return 0

    def parse_plugin_definition(plugindef):
        seen.append(plugindef)
        return 0

    def handle_plugin_event(event):
        seen.append(event)
        if event == bareosdir.bDirEventJobEnd:
            bareosdir.JobMessage(bareosdir.M_INFO, "report jobid=%d name=%s seen=%r" % (
                bareosdir.GetValue(bareosdir.bDirVarJobId),
                bareosdir.GetValue(bareosdir.bDirVarJobName), seen))
        return 0
"""


def example(site: Site, src: Path) -> Path:
    d = site.root / src.parent.name
    d.mkdir()
    (d / "bareos-dir.conf").write_text(
        src.read_text().replace("/usr/lib/bareos/plugins", str(site.plugin_dir)))
    return d


def test_installed_files_are_regular_copies(prefix):
    plugins = prefix / "lib" / "bareos" / "plugins"
    a, b = plugins / "python-dir.so", plugins / "python3-dir.so"
    assert not a.is_symlink() and not b.is_symlink()
    assert a.stat().st_ino != b.stat().st_ino
    assert a.read_bytes() == b.read_bytes()
    assert list((plugins / "bareosdir").glob("_bareosdir*.so"))
    assert (plugins / "bareosdir" / "plugins" / "BareosDirWrapper.py").exists()
    assert (prefix / "bin" / "bareosdir-sim").exists()


def test_seed_configuration_two_instances(site):
    r = site.run(example(site, SEED), "-d", "100")
    assert r.returncode == 0, r.all_output
    assert "testoption=testparam1" in r.stderr and "testoption=testparam2" in r.stderr
    assert "Fatal" not in r.stdout and "Error" not in r.stdout


def test_current_configuration_python3_prefix(site):
    conf = example(site, CURRENT)
    r = site.run(conf, "-d", "100")
    assert r.returncode == 0, r.all_output
    assert "BareosDirPluginBaseclass options: testoption=testparam" in r.stderr


@pytest.mark.parametrize("prefix_name", ["python", "python3"])
def test_one_instance_each_prefix(site, prefix_name):
    name = site.write_plugin("reporter", REPORTER)
    conf = site.config([f"{prefix_name}:module_path={site.module_path}:module_name={name}:k=v"],
                       plugin_names=f'"{prefix_name}"')
    r = site.run(conf)
    assert r.returncode == 0, r.all_output
    (line,) = r.job_lines(1)
    assert line[1].startswith("report jobid=1 name=BackupClient1.")
    assert "seen=['k=v:', 1, 3, 4, 2]" in line[1]


def test_directory_scan_loads_both_copies(site):
    name = site.write_plugin("reporter", REPORTER)
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}:which=a",
                        f"python3:module_path={site.module_path}:module_name={name}:which=b"],
                       plugin_names=None)
    r = site.run(conf, "--jobs", "3", "--concurrent", "3", "-d", "50")
    assert r.returncode == 0, r.all_output
    # One Python for both copies; only the last unload finalizes it.  Each
    # copy names itself.
    assert r.stderr.count("python-dir: unloaded, Python stays up") == 1
    assert r.stderr.count("python3-dir: unloaded, finalizing Python") == 1
    assert r.stderr.count("unloaded, finalizing Python") == 1
    assert r.stderr.rindex("finalizing Python") > r.stderr.rindex("stays up")
    for jobid in (1, 2, 3):
        texts = [t for _, t in r.job_lines(jobid)]
        assert len(texts) == 2
        assert any("which=a" in t for t in texts) and any("which=b" in t for t in texts)
    assert "Error" not in r.stdout and "Fatal" not in r.stdout


@pytest.mark.parametrize("mode", ["isolated", "main"])
def test_64_concurrent_jobs_two_instances(site, mode):
    name = site.write_plugin("reporter", REPORTER)
    conf = site.config([
        f"python:instance=0:module_path={site.module_path}:module_name={name}:interpreter={mode}",
        f"python:instance=1:module_path={site.module_path}:module_name={name}:interpreter={mode}"])
    r = site.run(conf, "--jobs", "64", "--concurrent", "64")
    assert r.returncode == 0, r.all_output
    lines = r.job_lines()
    assert len(lines) == 128
    for jobid, text in lines:
        assert text.startswith(f"report jobid={jobid} name=BackupClient1.")
        assert text.endswith(f"_{jobid % 100:02d} seen=['', 1, 3, 4, 2]")


@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize("mode", ["isolated", "main"])
def test_extension_modules_import_under_both_dlopen_modes(site, local, mode):
    name = site.write_plugin("exts", event_plugin("""
        db = sqlite3.connect(":memory:")
        v = db.execute("select 40 + 2").fetchone()[0]
        bareosdir.JobMessage(bareosdir.M_INFO, json.dumps({"sqlite": v, "ssl": ssl.OPENSSL_VERSION[:7]}))
    """, imports="ssl, json, sqlite3, _ssl, _json"))
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}:interpreter={mode}"])
    args = ["--dlopen-local"] if local else []
    r = site.run(conf, "--jobs", "2", *args)
    assert r.returncode == 0, r.all_output
    assert [t for _, t in r.job_lines()] == ['{"sqlite": 42, "ssl": "OpenSSL"}'] * 2


def test_missing_package_is_reported_and_director_goes_on(site, tmp_path):
    # A plugin directory with only the shim: bareosdir cannot be imported.
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(site.plugin_dir / "python-dir.so", bare / "python-dir.so")
    site.plugin_dir = bare
    conf = site.config(["python:module_name=anything"])
    r = site.run(conf, "-d", "100")
    assert "cannot load the bareosdir package with Python /usr/bin/python3" in r.all_output
    assert "sys.path was" in r.all_output and "bareosdir-path.conf" in r.all_output
    # the job itself still runs (the plugin is not loaded)
    assert "JobId 1" in r.all_output


def test_admin_path_file_and_environment(site, tmp_path):
    extra = tmp_path / "extra-site"
    extra.mkdir()
    (extra / "helperlib.py").write_text("VALUE = 'from extra'\n")
    (site.plugin_dir / "bareosdir-path.conf").write_text(f"# extra dirs\n{extra}\n")
    env_dir = tmp_path / "env-site"
    env_dir.mkdir()
    (env_dir / "envlib.py").write_text("VALUE = 'from env'\n")
    name = site.write_plugin("usesextra", event_plugin(
        'bareosdir.JobMessage(bareosdir.M_INFO, helperlib.VALUE + "/" + envlib.VALUE)',
        imports="helperlib, envlib"))
    try:
        for mode in ("isolated", "main"):
            conf = site.config([f"python:module_path={site.module_path}:module_name={name}:interpreter={mode}"],
                               name=f"conf-{mode}")
            r = site.run(conf, env={"BAREOSDIR_PATH": str(env_dir)})
            assert r.returncode == 0, r.all_output
            assert [t for _, t in r.job_lines()] == ["from extra/from env"]
    finally:
        (site.plugin_dir / "bareosdir-path.conf").unlink()


@pytest.mark.parametrize("how", ["path-file", "environment"])
def test_package_found_through_the_administrators_directories(site, tmp_path, how):
    # The shim alone in the Plugin Directory, the bareosdir package
    # elsewhere, named in bareosdir-path.conf or BAREOSDIR_PATH, as the
    # shim's own error message advises.
    only_shim = tmp_path / "only-shim"
    only_shim.mkdir()
    shutil.copy(site.plugin_dir / "python-dir.so", only_shim / "python-dir.so")
    pkg_parent = tmp_path / "pkg-parent"
    shutil.copytree(site.plugin_dir / "bareosdir", pkg_parent / "bareosdir")
    env = {}
    if how == "path-file":
        (only_shim / "bareosdir-path.conf").write_text(f"{pkg_parent}\n")
    else:
        env["BAREOSDIR_PATH"] = str(pkg_parent)
    site.plugin_dir = only_shim
    name = site.write_plugin("reporter", REPORTER)
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}"])
    r = site.run(conf, env=env)
    assert r.returncode == 0, r.all_output
    (line,) = r.job_lines(1)
    assert line[1].startswith("report jobid=1 "), r.all_output


def test_relative_path_entry_stands_once_on_sys_path(site, tmp_path):
    # A relative BAREOSDIR_PATH entry (relative to the Director's working
    # directory) reaches the main interpreter's sys.path once, absolute.
    (tmp_path / "relmods").mkdir()
    name = site.write_plugin("pathlook", event_plugin(
        'bareosdir.JobMessage(bareosdir.M_INFO, repr([p for p in sys.path '
        'if p.endswith("relmods")]))', imports="sys"))
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}"
                        ":interpreter=main"])
    r = site.run(conf, env={"BAREOSDIR_PATH": "relmods"}, cwd=tmp_path)
    assert r.returncode == 0, r.all_output
    assert [t for _, t in r.job_lines()] == [repr([str(tmp_path / "relmods")])]


def test_path_file_lines_of_any_length(site, tmp_path):
    # A long comment stays a comment (a fixed-size line buffer used to read
    # its tail as a directory), and a long line's directory is found whole.
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "hiddenlib.py").write_text("VALUE = 'hidden'\n")
    shown = tmp_path / "shown"
    shown.mkdir()
    (shown / "shownlib.py").write_text("VALUE = 'shown'\n")
    d = tmp_path / "long-lines"
    shutil.copytree(site.plugin_dir, d)
    (d / "bareosdir-path.conf").write_text(
        "#" + " " * 5000 + f"{hidden}\n" + " " * 5000 + f"{shown}" + "\t" * 5000 + "\n")
    site.plugin_dir = d
    name = site.write_plugin("finder", event_plugin(
        'bareosdir.JobMessage(bareosdir.M_INFO, "%s %s" % ('
        'importlib.util.find_spec("hiddenlib") is None, shownlib.VALUE))',
        imports="importlib.util, shownlib"))
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}"])
    r = site.run(conf)
    assert r.returncode == 0, r.all_output
    assert [t for _, t in r.job_lines()] == ["True shown"], r.all_output


@pytest.mark.parametrize("kind", ["fifo", "directory", "too-large", "unreadable"])
def test_unusable_path_file_is_ignored_with_an_error(site, tmp_path, kind):
    # A FIFO would block the Director's start in open(), /dev/zero or a
    # huge file would fill its memory: such a file is passed over, said in
    # the Director's log, and the plugin loads as without it.
    d = tmp_path / "odd-path-file"
    shutil.copytree(site.plugin_dir, d)
    conf_file = d / "bareosdir-path.conf"
    if kind == "fifo":
        os.mkfifo(conf_file)
    elif kind == "directory":
        conf_file.mkdir()
    elif kind == "too-large":
        conf_file.write_text("#" * (1 << 20) + "\n/nowhere\n")
    else:
        conf_file.write_text("/nowhere\n")
        conf_file.chmod(0)
    site.plugin_dir = d
    name = site.write_plugin("reporter", REPORTER)
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}"])
    r = site.run(conf, timeout=60)
    (line,) = r.job_lines(1)
    assert line[1].startswith("report jobid=1 "), r.all_output
    if kind == "unreadable" and os.geteuid() == 0:
        assert r.returncode == 0, r.all_output  # root reads mode 000 files
    else:
        # The simulator counts an error in the Director's log as a failure.
        assert r.returncode == 1, r.all_output
        assert f"Error: python-dir: {conf_file} ignored: " in r.stdout, r.all_output


def test_python_environment_variables_are_ignored(site, tmp_path):
    # A PYTHONPATH or PYTHONHOME of another Python must not redirect the shim.
    name = site.write_plugin("reporter", REPORTER)
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}"])
    r = site.run(conf, env={"PYTHONHOME": str(tmp_path / "nowhere"),
                            "PYTHONPATH": str(tmp_path / "nowhere")})
    assert r.returncode == 0, r.all_output


def test_main_interpreter_output_goes_to_the_director(site):
    name = site.write_plugin("printer", event_plugin("""
        print("printed line")
        logging.getLogger("printer").error("logged error")
    """, imports="logging"))
    for mode in ("isolated", "main"):
        conf = site.config([f"python:module_path={site.module_path}:module_name={name}:interpreter={mode}"],
                           name=f"c-{mode}")
        r = site.run(conf, "-d", "100")
        assert "printed line" in r.stderr  # debug level 100
        assert "Error: printer: logged error" in r.stdout
        assert not any(l == "printed line" for l in r.stdout.splitlines())


def test_class_plugins_keep_their_own_wrapper_object_in_main_mode(site):
    name = site.write_plugin("myclass", """
        import bareosdir, BareosDirWrapper, BareosDirPluginBaseclass
        from BareosDirWrapper import *

        class Mine(BareosDirPluginBaseclass.BareosDirPluginBaseclass):
            def handle_plugin_event(self, event):
                super().handle_plugin_event(event)
                if event == bareosdir.bDirEventJobEnd:
                    bareosdir.JobMessage(bareosdir.M_INFO, "tag=%s obj=%s" % (
                        self.options.get("tag"),
                        BareosDirWrapper.bareos_dir_plugin_object.options.get("tag")))
                return 0

        def load_bareos_plugin(plugindef):
            BareosDirWrapper.bareos_dir_plugin_object = Mine(plugindef)
            return 0
    """)
    conf = site.config([
        f"python:instance=0:module_path={site.module_path}:module_name={name}:interpreter=main:tag=zero",
        f"python:instance=1:module_path={site.module_path}:module_name={name}:interpreter=main:tag=one"])
    r = site.run(conf, "--jobs", "16", "--concurrent", "8")
    assert r.returncode == 0, r.all_output
    lines = r.job_lines()
    assert len(lines) == 32
    assert sorted(t for _, t in lines) == ["tag=one obj=one"] * 16 + ["tag=zero obj=zero"] * 16


@pytest.mark.parametrize("mode", ["isolated", "main"])
def test_lxml_in_every_job(site, mode):
    pytest.importorskip("lxml.etree")
    name = site.write_plugin("usexml", event_plugin("""
        from lxml import etree
        root = etree.fromstring("<job id='%d'/>" % bareosdir.GetValue(bareosdir.bDirVarJobId))
        bareosdir.JobMessage(bareosdir.M_INFO, "xml id=" + root.get("id"))
    """))
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}:interpreter={mode}"])
    r = site.run(conf, "--jobs", "6", "--concurrent", "3")
    if mode == "main":
        assert r.returncode == 0, r.all_output
        assert sorted(t for _, t in r.job_lines()) == [f"xml id={i}" for i in range(1, 7)]
    else:
        # lxml (Cython) works only in the first interpreter that imported
        # it; concurrent jobs use more interpreters: a clear message there,
        # never a crash.
        assert r.returncode in (0, 1), r.all_output
        ok = [t for _, t in r.job_lines() if t.startswith("xml id=")]
        assert ok
        if len(ok) < 6:
            assert "Interpreter change detected" in r.stdout


BOOM = """
    def load_bareos_plugin(plugindef):
        raise ValueError("boom in " + plugindef)
"""


@pytest.mark.parametrize("mode", ["isolated", "main"])
def test_reports_name_the_file_the_director_loaded(site, tmp_path, mode):
    # Three copies of the shim in one Plugin Directory, all loaded (no
    # Plugin Names): every report about an instance begins with the name of
    # the file whose plugin the options named, and so does each copy's own
    # unload line.
    d = tmp_path / "three-copies"
    shutil.copytree(site.plugin_dir, d)
    shutil.copyfile(d / "python-dir.so", d / "mypython-dir.so")
    site.plugin_dir = d
    name = site.write_plugin("boom", BOOM)
    conf = site.config([f"{p}:module_path={site.module_path}:module_name={name}"
                        f":interpreter={mode}:on_error=warning:which={p}"
                        for p in ("python", "python3", "mypython")],
                       plugin_names=None)
    r = site.run(conf, "-d", "50")
    assert r.returncode == 0, r.all_output
    # Each warning's first line is the job-log line; its traceback follows.
    reports = r.stdout.split("bareos-dir JobId 1: Warning: ")[1:]
    raised = [t for t in reports if "load_bareos_plugin() raised" in t]
    assert len(raised) == 3, r.all_output
    for p in ("python", "python3", "mypython"):
        (w,) = [t for t in raised if f"ValueError: boom in which={p}:" in t]
        assert w.startswith(f"{p}-dir: boom (instance 0): "
                            "load_bareos_plugin() raised an exception:"), w
    for p in ("python", "python3", "mypython"):
        assert r.stderr.count(f" {p}-dir: unloaded, ") == 1, r.stderr


def test_one_file_loaded_twice_through_a_hard_link(site, tmp_path):
    # glibc gives the same handle for a hard link: loadPlugin of one file
    # runs twice.  Both names must work, without errors.
    d = tmp_path / "hardlinked"
    shutil.copytree(site.plugin_dir, d)
    (d / "python3-dir.so").unlink()
    os.link(d / "python-dir.so", d / "python3-dir.so")
    site.plugin_dir = d
    name = site.write_plugin("reporter", REPORTER)
    conf = site.config([f"python:module_path={site.module_path}:module_name={name}:which=a",
                        f"python3:module_path={site.module_path}:module_name={name}:which=b"],
                       plugin_names=None)
    r = site.run(conf, "--jobs", "2")
    assert r.returncode == 0, r.all_output
    texts = [t for _, t in r.job_lines()]
    assert sum("which=a" in t for t in texts) == 2 and sum("which=b" in t for t in texts) == 2


@pytest.mark.parametrize("mode", ["isolated", "main"])
@pytest.mark.parametrize("loader_there", [False, True])
@pytest.mark.parametrize("with_module_path", [False, True])
def test_bareos_own_plugin_files_beside_ours(site, tmp_path, with_module_path,
                                             loader_there, mode):
    # Bareos's package puts its own bareosdir module and framework files
    # into the plugin directory.  Our bareosdir package is always the one
    # imported.  The framework files come from where the plugin module was
    # found: Bareos's wrapper with a loader in that directory, ours with
    # our bundled loader.
    d = tmp_path / "shared-dir"
    shutil.copytree(site.plugin_dir, d)
    (d / "bareosdir.py").write_text("raise ImportError('Bareos own bareosdir module')\n")
    wrapper = "Bareos own wrapper"
    (d / "BareosDirWrapper.py").write_text(
        "import bareosdir\nbareosdir.DebugMessage(100, %r)\n" % wrapper
        + (ROOT / "bareosdir" / "plugins" / "BareosDirWrapper.py").read_text())
    if loader_there:
        shutil.copy(ROOT / "bareosdir" / "plugins" / "bareos-dir-class-plugins.py", d)
    site.plugin_dir = d
    path = f"module_path={d}:" if with_module_path else ""
    conf = site.config([f"python:{path}module_name=bareos-dir-class-plugins:testoption=x"
                        f":interpreter={mode}"])
    r = site.run(conf, "-d", "100")
    assert r.returncode == 0, r.all_output
    assert "Bareos own bareosdir module" not in r.all_output
    assert "BareosDirPluginBaseclass options: testoption=x" in r.stderr
    assert (wrapper in r.stderr) == loader_there
