"""bareosdir-sim end to end with small fake director plugins compiled here
with cc: how it finds and loads plugin files (as bareos-dir's LoadPlugins
does), refuses incompatible ones, runs the job lifecycle on the Director's
three threads, prints messages and decides its exit status.

The build directory comes from BAREOSDIR_BUILD, else the checkout's build/
(beside tests/); build it first (cmake --build BUILD --target bareosdir-sim)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("BAREOSDIR_BUILD") or ROOT / "build")
SIM = BUILD / "bareosdir-sim"

# A director plugin that logs every call (with the OS thread id) to the file
# named by $FAKE_PLUGIN_LOG and says what it is asked to in its options.
FAKE_PLUGIN = r"""
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "director_abi.h"

#ifndef MAGIC
#define MAGIC "*DirPluginData*"
#endif
#ifndef LICENSE
#define LICENSE "Bareos AGPLv3"
#endif
#ifndef IFACE_VERSION
#define IFACE_VERSION 4
#endif
#ifndef INFO_SIZE
#define INFO_SIZE sizeof(PluginInformation)
#endif
#ifndef LOAD_RC
#define LOAD_RC bRC_OK
#endif
#ifndef END_RC
#define END_RC bRC_OK
#endif

static CoreFunctions *core;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int loads;

/* Our own file name, to tell copies of one plugin apart. */
static const char *self(void)
{
  Dl_info di;
  const char *s;
  if (!dladdr((void *)self, &di) || !di.dli_fname) return "?";
  s = strrchr(di.dli_fname, '/');
  return s ? s + 1 : di.dli_fname;
}

static void logline(const char *fmt, ...)
{
  const char *path = getenv("FAKE_PLUGIN_LOG");
  FILE *f;
  va_list ap;
  if (!path) return;
  pthread_mutex_lock(&log_lock);
  if ((f = fopen(path, "a"))) {
    fprintf(f, "%s ", self());
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fprintf(f, " tid=%ld\n", (long)syscall(SYS_gettid));
    fclose(f);
  }
  pthread_mutex_unlock(&log_lock);
}

static int job_int(PluginContext *ctx, int var)
{
  int v = -1;
  if (core->getBareosValue(ctx, var, &v) != bRC_OK) return -1;
  return v;
}

static unsigned long long job_u64(PluginContext *ctx, int var)
{
  uint64_t v = 0;
  if (core->getBareosValue(ctx, var, &v) != bRC_OK) return 0;
  return (unsigned long long)v;
}

static double now_s(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double run_started;

static const char *job_str(PluginContext *ctx, int var)
{
  const char *s = NULL;
  if (core->getBareosValue(ctx, var, (void *)&s) != bRC_OK || !s) return "-";
  return s;
}

static bRC newPlugin(PluginContext *ctx)
{
  core->registerBareosEvents(ctx, 5, bDirEventJobStart, bDirEventJobEnd,
                             bDirEventJobInit, bDirEventJobRun,
                             bDirEventNewPluginOptions);
  logline("newPlugin jobid=%d inst=%u", job_int(ctx, bDirVarJobId),
          ctx->instance);
  return bRC_OK;
}

static bRC freePlugin(PluginContext *ctx)
{
  logline("freePlugin jobid=%d inst=%u", job_int(ctx, bDirVarJobId),
          ctx->instance);
  return bRC_OK;
}

static bRC getPluginValue(PluginContext *ctx, int var, void *value)
{
  (void)ctx; (void)var; (void)value;
  return bRC_OK;
}

static bRC setPluginValue(PluginContext *ctx, int var, void *value)
{
  (void)ctx; (void)var; (void)value;
  return bRC_OK;
}

static void say(PluginContext *ctx, const char *opts, const char *what,
                int type, const char *text)
{
  if (strstr(opts, what)) core->JobMessage(ctx, "fake.c", 7, type, 0, "%s", text);
}

static bRC handlePluginEvent(PluginContext *ctx, bDirEvent *ev, void *value)
{
  int jobid = job_int(ctx, bDirVarJobId);
  switch (ev->eventType) {
    case bDirEventNewPluginOptions: {
      const char *opts = value;
      logline("options jobid=%d inst=%u value=%s", jobid, ctx->instance, opts);
      say(ctx, opts, "say=fatal", M_FATAL, "asked to fail\n");
      say(ctx, opts, "say=error", M_ERROR, "an error\n");
      say(ctx, opts, "say=warning", M_WARNING, "a warning\n");
      say(ctx, opts, "say=security", M_SECURITY, "intruder\n");
      say(ctx, opts, "say=info", M_INFO, "no newline");
      say(ctx, opts, "say=abort", M_ABORT, "abort now\n");
      if (strstr(opts, "say=debug"))
        core->DebugMessage(ctx, "fake.c", 9, 100, "%s", "a debug line\n");
      return bRC_OK;
    }
    case bDirEventJobRun:
      run_started = now_s();
      logline("event=%u jobid=%d inst=%u status=%c level=%c type=%c prio=%d "
              "client=%s pool=%s wstore=%s rstore=%s job=%s name=%s",
              ev->eventType, jobid, ctx->instance,
              job_int(ctx, bDirVarJobStatus), job_int(ctx, bDirVarLevel),
              job_int(ctx, bDirVarType), job_int(ctx, bDirVarPriority),
              job_str(ctx, bDirVarClient), job_str(ctx, bDirVarPool),
              job_str(ctx, bDirVarWriteStorage),
              job_str(ctx, bDirVarReadStorage), job_str(ctx, bDirVarJob),
              job_str(ctx, bDirVarJobName));
      core->JobMessage(ctx, "fake.c", 5, M_INFO, 0, "%s inst %u of JobId %d\n",
                       self(), ctx->instance, jobid);
      return bRC_OK;
    case bDirEventJobEnd:
      logline("event=%u jobid=%d inst=%u status=%c files=%d sdfiles=%d "
              "errors=%d bytes=%llu readbytes=%llu ran=%.3f",
              ev->eventType, jobid, ctx->instance,
              job_int(ctx, bDirVarJobStatus), job_int(ctx, bDirVarJobFiles),
              job_int(ctx, bDirVarSDJobFiles), job_int(ctx, bDirVarJobErrors),
              job_u64(ctx, bDirVarJobBytes), job_u64(ctx, bDirVarReadBytes),
              now_s() - run_started);
      return END_RC;
    default:
      logline("event=%u jobid=%d inst=%u status=%c", ev->eventType, jobid,
              ctx->instance, job_int(ctx, bDirVarJobStatus));
      return bRC_OK;
  }
}

static PluginInformation info = {INFO_SIZE, IFACE_VERSION, MAGIC, LICENSE,
                                 "tests", "today", "1", "a fake plugin", ""};
static PluginFunctions funcs = {sizeof(PluginFunctions), 4, newPlugin,
                                freePlugin, getPluginValue, setPluginValue,
                                handlePluginEvent};

/* In the global scope (what the main program's handle searches) only when
 * the plugin was opened RTLD_GLOBAL. */
int fake_plugin_global_marker = 1;

bRC loadPlugin(PluginApiDefinition *api, CoreFunctions *c,
               PluginInformation **pinfo, PluginFunctions **pfuncs)
{
  void *main_program = dlopen(NULL, RTLD_LAZY);
  void *marker = main_program ? dlsym(main_program, "fake_plugin_global_marker")
                              : NULL;
  core = c;
  loads++;
  logline("loadPlugin api_size=%u api_version=%u core_size=%u loads=%d "
          "global=%d", api->size, api->version, c->size, loads,
          marker != NULL);
  c->JobMessage(NULL, "fake.c", 3, M_INFO, 0, "%s loaded\n", self());
  *pinfo = &info;
  *pfuncs = &funcs;
  return LOAD_RC;
}

#ifndef NO_UNLOAD
bRC unloadPlugin(void)
{
  logline("unloadPlugin");
  return bRC_OK;
}
#endif
"""


@dataclass
class Run:
    rc: int
    out: str
    err: str
    log: list[dict]

    def calls(self, **match) -> list[dict]:
        return [e for e in self.log
                if all(e.get(k) == v for k, v in match.items())]

    def lines(self, pattern: str) -> list[str]:
        return [ln for ln in self.out.splitlines() if re.search(pattern, ln)]


def parse_log(text: str) -> list[dict]:
    entries = []
    for line in text.splitlines():
        file, rest = line.split(" ", 1)
        e = {"file": file}
        words = rest.split(" ")
        if "=" not in words[0]:
            e["call"] = words.pop(0)
        for w in words:
            if "=" in w:
                k, v = w.split("=", 1)
                e[k] = v
        if "event" in e:
            e["call"] = "event"
        entries.append(e)
    return entries


@pytest.fixture(scope="session")
def sim_exe() -> Path:
    if not os.access(SIM, os.X_OK):
        pytest.fail(f"{SIM} is not built (cmake --build {BUILD} "
                    f"--target bareosdir-sim, or set BAREOSDIR_BUILD)")
    return SIM


@pytest.fixture(scope="session")
def compile_plugin(tmp_path_factory):
    """compile_plugin(**defines) -> path of a fake plugin .so (cached)."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.fail("no C compiler (cc) to build the fake plugins")
    work = tmp_path_factory.mktemp("fake-plugins")
    src = work / "fake.c"
    src.write_text(FAKE_PLUGIN)
    cache: dict = {}

    def _compile(**defines: str) -> Path:
        key = tuple(sorted(defines.items()))
        if key not in cache:
            out = work / f"fake{len(cache)}.so"
            args = [cc, "-shared", "-fPIC", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                    "-Werror", f"-I{ROOT / 'csrc'}", "-o", str(out), str(src)]
            args += [f"-D{k}={v}" for k, v in defines.items()]
            subprocess.run(args + ["-ldl", "-lpthread"], check=True)
            cache[key] = out
        return cache[key]
    return _compile


class Setup:
    """A plugin directory and a configuration for one test."""

    def __init__(self, tmp_path: Path, sim: Path, compile_plugin) -> None:
        self.tmp = tmp_path
        self.sim = sim
        self.compile = compile_plugin
        self.plugins = tmp_path / "plugins"
        self.plugins.mkdir()
        self.log = tmp_path / "plugin.log"

    def plugin(self, file_name: str, **defines: str) -> Path:
        """Copies a fake plugin into the plugin directory (a regular file)."""
        dest = self.plugins / file_name
        shutil.copyfile(self.compile(**defines), dest)
        return dest

    def config(self, plugin_names: str | None = None,
               job_lines: str = "", director_lines: str = "",
               plugin_dir: Path | None = None) -> Path:
        d = self.tmp / "etc"
        (d / "bareos-dir.d" / "director").mkdir(parents=True, exist_ok=True)
        (d / "bareos-dir.d" / "job").mkdir(exist_ok=True)
        names = f'  Plugin Names = {plugin_names}\n' if plugin_names else ""
        (d / "bareos-dir.d" / "director" / "bareos-dir.conf").write_text(
            "Director {\n  Name = sim-dir\n"
            f'  Plugin Directory = "{plugin_dir or self.plugins}"\n'
            f"{names}{director_lines}}}\n")
        (d / "bareos-dir.d" / "job" / "j.conf").write_text(
            "Job {\n  Name = j\n  Type = Backup\n  Level = Incremental\n"
            "  Client = cl\n  Pool = po\n  Storage = st\n  Priority = 7\n"
            f"{job_lines}}}\n")
        return d

    def run(self, *args: str, config: Path | None = None,
            env: dict | None = None, timeout: float = 120) -> Run:
        if self.log.exists():
            self.log.unlink()
        e = dict(os.environ, FAKE_PLUGIN_LOG=str(self.log))
        e.pop("BAREOSDIR_SIM_RTLD_LOCAL", None)
        e.update(env or {})
        cmd = [str(self.sim), "-c", str(config or self.tmp / "etc"), *args]
        if "-j" not in args:
            cmd += ["-j", "j"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=e,
                              timeout=timeout)
        log = parse_log(self.log.read_text()) if self.log.exists() else []
        return Run(proc.returncode, proc.stdout, proc.stderr, log)


@pytest.fixture
def setup(tmp_path, sim_exe, compile_plugin) -> Setup:
    return Setup(tmp_path, sim_exe, compile_plugin)


# ---- the lifecycle ----

def test_a_good_plugin_sees_the_whole_job_on_three_threads(setup):
    setup.plugin("good-dir.so")
    setup.config('"good"', job_lines=(
        '  Dir Plugin Options = "good:module_name=a"\n'
        '  Dir Plugin Options = "good:instance=1:module_name=b"\n'))
    r = setup.run()
    assert r.rc == 0, (r.out, r.err)
    calls = [(e["call"], e.get("event"), e.get("inst")) for e in r.log]
    assert calls == [
        ("loadPlugin", None, None),
        ("newPlugin", None, "0"),
        ("options", None, "0"),
        ("newPlugin", None, "1"),
        ("options", None, "1"),
        ("event", "1", "0"), ("event", "1", "1"),   # JobStart
        ("event", "3", "0"), ("event", "3", "1"),   # JobInit
        ("event", "4", "0"), ("event", "4", "1"),   # JobRun
        ("event", "2", "0"), ("event", "2", "1"),   # JobEnd
        ("freePlugin", None, "0"), ("freePlugin", None, "1"),
        ("unloadPlugin", None, None),
    ]
    assert r.calls(call="options", inst="1")[0]["value"] == \
        "good:instance=1:module_name=b"
    tid = {e["tid"] for e in r.log if e["call"] in ("loadPlugin",
                                                     "unloadPlugin")}
    setup_tid = {e["tid"] for e in r.log
                 if e["call"] in ("newPlugin", "options")
                 or e.get("event") in ("1", "3")}
    job_tid = {e["tid"] for e in r.log if e.get("event") in ("4", "2")}
    free_tid = {e["tid"] for e in r.log if e["call"] == "freePlugin"}
    assert len(tid) == len(setup_tid) == len(job_tid) == len(free_tid) == 1
    assert len(tid | setup_tid | job_tid | free_tid) == 4
    assert r.calls(call="loadPlugin")[0]["api_size"] == \
        r.calls(call="loadPlugin")[0]["core_size"]
    assert r.calls(call="loadPlugin")[0]["api_version"] == "4"
    assert r.lines(r"^sim-dir: good-dir\.so loaded$")
    assert r.lines(r"^sim-dir JobId 1: good-dir\.so inst 0 of JobId 1$")
    assert r.lines(r"^sim-dir JobId 1: good-dir\.so inst 1 of JobId 1$")
    (summary,) = r.lines(r"^bareosdir-sim: JobId 1 ")
    assert re.match(r"bareosdir-sim: JobId 1 \(j\.\d{4}-\d\d-\d\d_\d\d\.\d\d\."
                    r"\d\d_01\): OK, status T, JobEnd bRC_OK", summary)


def test_job_values_from_the_configuration(setup):
    setup.plugin("good-dir.so")
    setup.config('"good"')
    r = setup.run()
    (run,) = r.calls(event="4")
    assert (run["status"], run["level"], run["type"], run["prio"],
            run["client"], run["pool"], run["wstore"], run["rstore"],
            run["job"]) == ("R", "I", "B", "7", "cl", "po", "st", "-", "j")
    assert re.fullmatch(r"j\.\d{4}-\d\d-\d\d_\d\d\.\d\d\.\d\d_01", run["name"])
    assert [e["status"] for e in r.calls(event="1")] == ["C"]
    assert [e["status"] for e in r.calls(event="2")] == ["T"]


def test_level_and_status_from_the_command_line(setup):
    setup.plugin("good-dir.so")
    setup.config('"good"')
    for level, code in [("F", "F"), ("Full", "F"), ("differential", "D"),
                        ("VirtualFull", "f")]:
        r = setup.run("--level", level, "--status", "E")
        assert r.rc == 0
        assert r.calls(event="4")[0]["level"] == code
        assert r.calls(event="2")[0]["status"] == "E"
    r = setup.run("--level", "Fulll")
    assert r.rc == 2 and "unknown level" in r.err


def test_restore_job_reads_from_its_storage(setup):
    setup.plugin("good-dir.so")
    d = setup.config('"good"')
    (d / "bareos-dir.d" / "job" / "r.conf").write_text(
        "Job { Name = r; Type = Restore; Storage = File; Client = c }\n")
    r = setup.run("-j", "r")
    (run,) = r.calls(event="4")
    # Level ' ' (none), which the log line shows as an empty value.
    assert (run["type"], run["level"], run["rstore"], run["wstore"]) == \
        ("R", "", "File", "-")


def test_jobdefs_options_used_and_replaced_by_dash_o(setup):
    setup.plugin("good-dir.so")
    d = setup.config('"good"', job_lines="  JobDefs = defs\n")
    (d / "bareos-dir.d" / "job" / "defs.conf").write_text(
        'JobDefs { Name = defs\n'
        '  Dir Plugin Options = "good:from=defs"\n}\n')
    r = setup.run()
    assert [e["value"] for e in r.calls(call="options")] == ["good:from=defs"]
    r = setup.run("-o", "good:from=cli", "-o", "good:instance=2:x=y")
    assert [e["value"] for e in r.calls(call="options")] == \
        ["good:from=cli", "good:instance=2:x=y"]
    assert r.rc == 0


def test_options_for_a_plugin_not_loaded_fail_the_job(setup):
    # bareos-dir passes them to no one, silently; the simulator is a
    # checking tool: a job that asks for a plugin that is not there fails.
    setup.plugin("good-dir.so")
    setup.config('"good"')
    r = setup.run("-o", "python:module_name=x", "-o", "GOOD:case=any")
    assert r.rc == 1
    assert [e["value"] for e in r.calls(call="options")] == ["GOOD:case=any"]
    assert ('bareosdir-sim: JobId 1: Dir Plugin Options for plugin "python", '
            "which is not loaded: Plugin Names does not list it") in r.out
    assert "FAILED (plugins not loaded)" in r.out
    assert "0 of 1 jobs OK" in r.out


def test_missing_plugin_directory_is_not_ok(setup, tmp_path):
    # The raw examples/ configurations: once "1 of 1 jobs OK", exit 0.
    missing = tmp_path / "no-such-dir"
    setup.config('"python3"', plugin_dir=missing,
                 job_lines='  Dir Plugin Options = "python3:module_name=x"\n')
    r = setup.run()
    assert r.rc == 1
    assert ('Dir Plugin Options for plugin "python3", which is not loaded: '
            'the Plugin Directory "%s" does not exist' % missing) in r.out
    # Listed and there, but the file is missing.
    setup.config('"python3"',
                 job_lines='  Dir Plugin Options = "python3:module_name=x"\n')
    r = setup.run()
    assert r.rc == 1
    assert "no python3-dir.so could be loaded from" in r.out
    # A misspelt directive stops the simulator before any job.
    setup.config(director_lines='  Plugin Directroy = "/x"\n')
    r = setup.run()
    assert r.rc == 2
    assert ('Keyword "Plugin Directroy" not permitted in this resource '
            '(Director); did you mean "PluginDirectory"?') in r.err


def test_help_says_the_simulator_is_stricter(sim_exe):
    out = subprocess.run([str(sim_exe), "--help"], capture_output=True,
                         text=True, timeout=30).stdout
    assert "deliberately stricter" in out
    for flag in ("--files N", "--bytes N", "--errors N", "--run-time"):
        assert flag in out


def test_job_name_lookup(setup):
    setup.plugin("good-dir.so")
    setup.config('"good"')
    r = setup.run("-j", "J")
    assert r.rc == 0 and r.calls(call="newPlugin")
    r = setup.run("-j", "nope")
    assert r.rc == 2
    assert 'no Job resource named "nope"' in r.err and '"j"' in r.err


# ---- finding and loading plugin files ----

def test_directory_scan_loads_every_regular_dash_dir_so(setup):
    setup.plugin("b-dir.so")
    setup.plugin("a-dir.so")
    setup.plugin("python-fd.so")
    setup.plugin("notaplugin.so")
    setup.plugin("-dir.so")                         # no name before -dir.so
    (setup.plugins / "d-dir.so").mkdir()            # not a regular file
    os.symlink(setup.plugins / "a-dir.so", setup.plugins / "link-dir.so")
    setup.config(None)
    r = setup.run("-d", "50")
    assert r.rc == 0, (r.out, r.err)
    assert [e["file"] for e in r.calls(call="loadPlugin")] == \
        ["a-dir.so", "b-dir.so"]
    assert {e["file"] for e in r.calls(call="newPlugin")} == \
        {"a-dir.so", "b-dir.so"}
    assert "link-dir.so: not a regular file (a symbolic link)" in r.err
    assert "d-dir.so: not a regular file" in r.err
    # unloadPlugin in load order, each followed by dlclose.
    assert [e["file"] for e in r.calls(call="unloadPlugin")] == \
        ["a-dir.so", "b-dir.so"]


def test_plugin_names_select_files_and_skip_symlinks_silently(setup):
    setup.plugin("a-dir.so")
    setup.plugin("b-dir.so")
    os.symlink(setup.plugins / "a-dir.so", setup.plugins / "link-dir.so")
    setup.config('"b:link:missing"')
    r = setup.run()
    assert r.rc == 0, (r.out, r.err)
    assert [e["file"] for e in r.calls(call="loadPlugin")] == ["b-dir.so"]
    assert "Error" not in r.out


def test_two_copies_of_one_plugin_are_two_plugins(setup):
    first = setup.plugin("python-dir.so")
    shutil.copyfile(first, setup.plugins / "python3-dir.so")
    setup.config(None, job_lines=(
        '  Dir Plugin Options = "python:to=python"\n'
        '  Dir Plugin Options = "python3:to=python3"\n'))
    r = setup.run()
    assert r.rc == 0, (r.out, r.err)
    loads = r.calls(call="loadPlugin")
    assert [(e["file"], e["loads"]) for e in loads] == \
        [("python-dir.so", "1"), ("python3-dir.so", "1")]
    assert [(e["file"], e["value"]) for e in r.calls(call="options")] == \
        [("python-dir.so", "python:to=python"),
         ("python3-dir.so", "python3:to=python3")]


def test_rtld_global_by_default_and_local_when_asked(setup):
    setup.plugin("good-dir.so")
    setup.config('"good"')
    r = setup.run("-d", "50")
    assert r.calls(call="loadPlugin")[0]["global"] == "1"
    assert "RTLD_LAZY|RTLD_GLOBAL" in r.err
    r = setup.run("-d", "50", "--dlopen-local")
    assert r.calls(call="loadPlugin")[0]["global"] == "0"
    assert "RTLD_NOW|RTLD_LOCAL" in r.err
    r = setup.run(env={"BAREOSDIR_SIM_RTLD_LOCAL": "1"})
    assert r.calls(call="loadPlugin")[0]["global"] == "0"
    assert r.rc == 0


@pytest.mark.parametrize("defines,why", [
    ({"MAGIC": '"*FDPluginData*"'}, "magic"),
    ({"LICENSE": '"GPLv2"'}, "license"),
    ({"IFACE_VERSION": "3"}, "version"),
    ({"INFO_SIZE": "8"}, "size"),
])
def test_incompatible_plugin_is_refused_and_unloaded(setup, defines, why):
    setup.plugin("bad-dir.so", **defines)
    setup.plugin("good-dir.so")
    setup.config(None)
    r = setup.run()
    assert r.rc == 1, (r.out, r.err)
    assert [(e["file"], e["call"]) for e in r.log
            if e["file"] == "bad-dir.so"] == \
        [("bad-dir.so", "loadPlugin"), ("bad-dir.so", "unloadPlugin")]
    (err,) = r.lines(r"^sim-dir: Error: ")
    assert "plugin bad" in err and why in err
    # The job still ran with the good one, and was fine.
    assert r.calls(file="good-dir.so", event="2")
    assert r.lines(r"JobId 1 \(.*\): OK")
    assert r.lines(r"outside of jobs")


def test_failed_load_is_unloaded_without_a_message_of_the_director(setup):
    setup.plugin("bad-dir.so", LOAD_RC="bRC_Error")
    setup.config(None)
    r = setup.run("-d", "50")
    assert [e["call"] for e in r.log] == ["loadPlugin", "unloadPlugin"]
    assert "Error" not in r.out
    assert "Got plugin=bad-dir.so but not accepted" in r.err
    assert r.rc == 0


def test_missing_unload_symbol_and_unloadable_file(setup):
    setup.plugin("nounload-dir.so", NO_UNLOAD="1")
    (setup.plugins / "garbage-dir.so").write_text("not an ELF file\n")
    setup.config(None)
    r = setup.run()
    assert r.rc == 1
    assert r.lines(r"^sim-dir: Error: dlopen plugin .*/garbage-dir\.so "
                   r"failed: ERR=")
    assert r.lines(r"^sim-dir: Error: Lookup of unloadPlugin in plugin "
                   r".*/nounload-dir\.so failed")
    assert r.log == []   # loadPlugin is never called without unloadPlugin
    assert r.lines(r"^sim-dir: Warning: Failed to find any plugins in ")


def test_no_plugins_and_no_plugin_directory(setup):
    setup.config(None)
    r = setup.run()
    assert r.rc == 0
    assert r.lines(r"^sim-dir: Warning: Failed to find any plugins in ")
    r = setup.run(config=setup.config(None, plugin_dir=setup.tmp / "nodir"))
    assert r.rc == 1
    assert r.lines(r"^sim-dir ERROR TERMINATION$")
    assert r.lines(r"Failed to open Plugin directory .*nodir")


def test_no_plugin_directory_runs_without_plugins(setup, tmp_path):
    cfg = tmp_path / "plain.conf"
    cfg.write_text("Director { Name = plain-dir }\nJob { Name = j }\n")
    r = setup.run(config=cfg)
    assert r.rc == 0
    assert r.lines(r"^bareosdir-sim: JobId 1 \(j\..*\): OK")


# ---- messages and exit status ----

@pytest.mark.parametrize("say,line,rc,status", [
    ("fatal", "sim-dir JobId 1: Fatal error: asked to fail", 1, "f"),
    ("error", "sim-dir JobId 1: Error: an error", 1, "T"),
    ("warning", "sim-dir JobId 1: Warning: a warning", 0, "T"),
    ("security", "sim-dir JobId 1: Security violation: intruder", 0, "T"),
    ("info", "sim-dir JobId 1: no newline", 0, "T"),
])
def test_message_lines_and_exit_status(setup, say, line, rc, status):
    setup.plugin("good-dir.so")
    setup.config('"good"')
    r = setup.run("-o", f"good:say={say}")
    assert r.rc == rc, (r.out, r.err)
    assert line in r.out.splitlines()
    assert r.calls(event="2")[0]["status"] == status
    (summary,) = r.lines(r"^bareosdir-sim: JobId 1 ")
    assert ("OK" if rc == 0 else "FAILED") in summary


def test_message_types_that_end_a_real_director(setup):
    setup.plugin("good-dir.so")
    setup.config('"good"')
    r = setup.run("-o", "good:say=abort")
    assert r.rc == 1
    out = r.out.splitlines()
    i = out.index("sim-dir ABORTING due to ERROR")
    assert out[i + 1] == "sim-dir JobId 1: abort now"
    assert "would end a real bareos-dir" in r.err


def test_debug_messages_up_to_the_debug_level(setup):
    setup.plugin("good-dir.so")
    setup.config('"good"')
    r = setup.run("-o", "good:say=debug", "-d", "100")
    # bareos-dir's head, then the plugin and instance that sent it.
    assert "sim-dir (100): fake.c:9-1 good:instance=0: a debug line\n" in r.err
    # Two instances of one plugin (the seed form's two lines).
    r = setup.run("-o", "good:say=debug", "-o", "good:instance=1:say=debug",
                  "-d", "100")
    assert "sim-dir (100): fake.c:9-1 good:instance=0: a debug line\n" in r.err
    assert "sim-dir (100): fake.c:9-1 good:instance=1: a debug line\n" in r.err
    assert "a debug line" not in r.out
    r = setup.run("-o", "good:say=debug", "-d", "99")
    assert "a debug line" not in r.err


def test_illegal_instance_fails_the_job(setup):
    setup.plugin("good-dir.so")
    setup.config('"good"')
    r = setup.run("-o", "good:instance=128")
    assert r.rc == 1
    (err,) = r.lines(r"^sim-dir JobId 1: Error: ")
    assert "instance=128" in err and "JobId 1: Error: JobId" not in err
    # bareos-dir's own words for it.
    assert err.startswith("sim-dir JobId 1: Error: Illegal DIR plugin options "
                          "encountered, \"good:instance=128\" skipping: "), err
    assert r.lines(r"^bareosdir-sim: JobId 1 .*FAILED")


def test_jobend_answer_decides_too(setup):
    setup.plugin("good-dir.so", END_RC="bRC_Error")
    setup.config('"good"')
    r = setup.run()
    assert r.rc == 1
    assert r.lines(r"^bareosdir-sim: JobId 1 .*FAILED.*JobEnd bRC_Error")


def test_concurrent_jobs_keep_their_messages_apart(setup):
    setup.plugin("python-dir.so")
    shutil.copyfile(setup.plugins / "python-dir.so",
                    setup.plugins / "python3-dir.so")
    setup.config(None, job_lines=(
        '  Dir Plugin Options = "python:a=1"\n'
        '  Dir Plugin Options = "python:instance=1:b=2"\n'
        '  Dir Plugin Options = "python3:c=3"\n'))
    n = 24
    r = setup.run("--jobs", str(n), "--concurrent", "8")
    assert r.rc == 0, (r.out[-2000:], r.err[-2000:])
    for jobid in range(1, n + 1):
        lines = r.lines(rf"^sim-dir JobId {jobid}: ")
        assert sorted(lines) == sorted([
            f"sim-dir JobId {jobid}: python-dir.so inst 0 of JobId {jobid}",
            f"sim-dir JobId {jobid}: python-dir.so inst 1 of JobId {jobid}",
            f"sim-dir JobId {jobid}: python3-dir.so inst 0 of JobId {jobid}"])
        # Every call of a job reports that job's JobId, in lifecycle order.
        events = [e.get("event") for e in r.log
                  if e.get("jobid") == str(jobid) and e.get("inst") == "0"
                  and e["file"] == "python-dir.so"]
        assert [x for x in events if x] == ["1", "3", "4", "2"]
        assert len(r.calls(call="freePlugin", jobid=str(jobid))) == 3
    assert r.lines(rf"^bareosdir-sim: {n} of {n} jobs OK$")
    # JobIds of the unique job names count from 1.
    names = {e["name"] for e in r.calls(event="4")}
    assert {int(x[-2:]) for x in names} == set(range(1, n + 1))
    # Jobs really overlapped: more than one setup thread was used.
    assert len({e["tid"] for e in r.calls(call="newPlugin")}) > 1
    assert len(r.calls(call="unloadPlugin")) == 2


def test_usage_errors(setup, sim_exe):
    r = subprocess.run([str(sim_exe), "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "-c CONFIG -j JOBNAME" in r.stdout
    for args in (["-j", "j"], ["-c", "x"], ["-c", "x", "-j", "j", "--jobs",
                                            "0"],
                 ["-c", "x", "-j", "j", "--status", "TT"],
                 ["-c", "x", "-j", "j", "extra"]):
        r = subprocess.run([str(sim_exe), *args], capture_output=True,
                           text=True)
        assert r.returncode == 2, args


def test_configuration_errors_are_reported_with_file_and_line(setup):
    d = setup.config('"good"', job_lines="  Level Full\n")
    r = setup.run(config=d)
    assert r.rc == 2
    assert ("bareosdir-sim: bareos-dir.d/job/j.conf:9: expected '=' after "
            "key \"Level\"") in r.err


def test_finished_job_values_and_run_time(setup):
    # What plugins read at JobEnd: once always 0 files and 0 bytes, and a
    # running time of microseconds.
    setup.plugin("good-dir.so")
    setup.config('"good"')
    r = setup.run("-o", "good:x=1", "--files", "42", "--bytes", "123456789012",
                  "--errors", "2", "--run-time", "0.3")
    assert r.rc == 0, r.out + r.err
    [end] = [e for e in r.calls() if e.get("event") == "2"]
    assert (end["files"], end["sdfiles"], end["errors"], end["bytes"],
            end["readbytes"]) == ("42", "42", "2", "123456789012",
                                  "123456789012")
    assert 0.3 <= float(end["ran"]) < 30
    # Without them the values stay the model's (nothing saved).
    r = setup.run("-o", "good:x=1")
    [end] = [e for e in r.calls() if e.get("event") == "2"]
    assert (end["files"], end["bytes"], end["errors"]) == ("0", "0", "0")
    assert float(end["ran"]) < 0.3


@pytest.mark.parametrize("args,expected", [
    (("--files", "-1"), "--files wants a number"),
    (("--bytes", "x"), "--bytes wants a number"),
    (("--run-time", "3601"), "--run-time wants seconds from 0 to 3600"),
    (("--run-time", "nan"), "--run-time wants seconds"),
])
def test_bad_job_values_are_usage_errors(setup, args, expected):
    setup.plugin("good-dir.so")
    setup.config('"good"')
    r = setup.run(*args)
    assert r.rc == 2 and expected in r.err
