/*
 * python-dir.so: the file bareos-dir dlopens.  It starts Python (or joins
 * the one a second copy of this file already started), imports the
 * bareosdir package, hands it the Director's callbacks in a capsule and
 * returns the plugin tables it gets back.  All behaviour lives in the
 * bareosdir extension; this file only boots and unloads.
 *
 * Statics here are per copy of the file (python-dir.so and python3-dir.so
 * each have their own), which is exactly what they describe.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binding.h"
#include "pyexc.h"
#include "textfmt.h"

#ifndef BAREOSDIR_PYTHON_EXE
#define BAREOSDIR_PYTHON_EXE "/usr/bin/python3"
#endif
#define PATH_FILE "bareosdir-path.conf"
#define PATH_FILE_MAX ((uintmax_t)1 << 20)

static struct {
  int started_python;              /* this copy called Py_Initialize */
  int loads;                       /* loadPlugin calls not yet unloaded */
  const bd_plugin_binding *binding;
  bd_director_binding director;
  char shim_dir[4096];
  char name[256];                  /* this file's name without ".so" */
  char *extra_path;
} g_shim;

__attribute__((visibility("default"))) bRC
loadPlugin(PluginApiDefinition *core_version, CoreFunctions *core_functions,
           PluginInformation **plugin_info, PluginFunctions **plugin_functions);
__attribute__((visibility("default"))) bRC unloadPlugin(void);

/* Messages carry the name of the file the Director loaded: python-dir or
 * python3-dir (or whatever the administrator called it). */
static const char *shim_name(void) {
  return g_shim.name[0] ? g_shim.name : BD_DEFAULT_FILE_NAME;
}

static void log_error(CoreFunctions *core, const char *text) {
  if (core != NULL && core->JobMessage != NULL)
    core->JobMessage(NULL, __FILE__, __LINE__, M_ERROR, 0, "%s\n", text);
}

/*
 * The Director owns its signals.  Python, started with
 * install_signal_handlers = 0, still installs a SIGINT handler when the
 * signal module is first imported in the main interpreter (the extension
 * does that while binding, so that no plugin import does it later), and
 * finalizing resets what it installed.  Around both, the dispositions and
 * this thread's mask are put back as they were.
 */
typedef struct {
  struct sigaction act[NSIG];
  char valid[NSIG];
  sigset_t mask;
} sig_state;

static void sig_save(sig_state *s) {
  for (int i = 1; i < NSIG; i++)
    s->valid[i] = sigaction(i, NULL, &s->act[i]) == 0;
  pthread_sigmask(SIG_SETMASK, NULL, &s->mask);
}

static void sig_restore(const sig_state *s) {
  for (int i = 1; i < NSIG; i++) {
    struct sigaction now;
    if (s->valid[i] && sigaction(i, NULL, &now) == 0 &&
        (now.sa_handler != s->act[i].sa_handler ||
         now.sa_flags != s->act[i].sa_flags))
      sigaction(i, &s->act[i], NULL);
  }
  pthread_sigmask(SIG_SETMASK, &s->mask, NULL);
}

/*
 * Python's C extension modules (_ssl, _json, ...) do not link libpython on
 * Debian: they find its symbols in the global namespace.  A host that
 * opened us RTLD_LOCAL would break them, so libpython is promoted to
 * RTLD_GLOBAL here; RTLD_NODELETE keeps it mapped after the Director's
 * dlclose, since threads and interpreters may outlive this file.
 */
static void pin_libpython(void) {
  Dl_info info;
  if (dladdr((void *)Py_Initialize, &info) && info.dli_fname != NULL)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
}

/* The whole of bareosdir-path.conf beside us, NUL-terminated (malloc'd),
 * or NULL when there is none or it cannot be used (then said in the
 * Director's log).  Only a regular file of at most PATH_FILE_MAX bytes is
 * read, and opening it never blocks: a FIFO or a device put there by
 * mistake must neither stop the Director's start nor fill its memory.  A
 * NUL byte ends the text. */
static char *read_path_file(CoreFunctions *core) {
  char file[4200], msg[4600];
  if (g_shim.shim_dir[0] == '\0' ||
      bd_fmt_whole(file, sizeof file, "%s/%s", g_shim.shim_dir, PATH_FILE))
    return NULL;
  int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) {
      bd_fmt(msg, sizeof msg, "%s: %s ignored: %s", shim_name(), file,
             strerror(errno));
      log_error(core, msg);
    }
    return NULL;
  }
  struct stat st;
  const char *why = NULL;
  char *text = NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    why = "not a regular file";
  else if ((uintmax_t)st.st_size > PATH_FILE_MAX)
    why = "larger than 1 MiB";
  else if ((text = malloc((size_t)st.st_size + 1)) == NULL)
    why = "out of memory";
  if (text != NULL) {
    size_t got = 0, want = (size_t)st.st_size;
    while (got < want) {
      ssize_t n = read(fd, text + got, want - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += (size_t)n;
    }
    text[got] = '\0';
  }
  close(fd);
  if (why != NULL) {
    bd_fmt(msg, sizeof msg, "%s: %s ignored: %s", shim_name(), file, why);
    log_error(core, msg);
  }
  return text;
}

/* Our directory, and the extra sys.path entries an administrator listed in
 * bareosdir-path.conf beside us and in $BAREOSDIR_PATH. */
static void find_paths(CoreFunctions *core) {
  Dl_info info;
  g_shim.shim_dir[0] = '\0';
  /* The address of a static, not of loadPlugin: opened RTLD_GLOBAL, the
   * second copy's own references to loadPlugin bind to the first copy's,
   * and dladdr would name the first file. */
  if (dladdr((void *)&g_shim, &info) && info.dli_fname != NULL) {
    char tmp[sizeof g_shim.shim_dir];
    /* A path too long for the buffer is no path at all. */
    if (bd_fmt_whole(tmp, sizeof tmp, "%s", info.dli_fname) != 0 ||
        bd_fmt_whole(g_shim.shim_dir, sizeof g_shim.shim_dir, "%s",
                     dirname(tmp)) != 0)
      g_shim.shim_dir[0] = '\0';
    if (bd_fmt_whole(tmp, sizeof tmp, "%s", info.dli_fname) == 0 &&
        bd_fmt_whole(g_shim.name, sizeof g_shim.name, "%s", basename(tmp)) ==
            0) {
      size_t n = strlen(g_shim.name);
      if (n > 3 && strcmp(g_shim.name + n - 3, ".so") == 0)
        g_shim.name[n - 3] = '\0';
    } else {
      g_shim.name[0] = '\0';
    }
  }
  free(g_shim.extra_path);
  char *text = read_path_file(core);
  /* Each line's ':' takes the place of its newline: never longer. */
  char *out = malloc(text != NULL ? strlen(text) + 1 : 1);
  size_t len = 0;
  if (out == NULL) {
    free(text);
    g_shim.extra_path = NULL;
    return;
  }
  out[0] = '\0';
  for (char *line = text, *next; line != NULL && *line != '\0';
       line = next) {
    next = line + strcspn(line, "\n");
    if (*next != '\0') *next++ = '\0';
    char *d = line + strspn(line, " \t");
    size_t n = strcspn(d, "\r");
    while (n > 0 && (d[n - 1] == ' ' || d[n - 1] == '\t')) n--;
    if (n == 0 || d[0] == '#') continue;
    if (len) out[len++] = ':';
    memcpy(out + len, d, n);
    len += n;
    out[len] = '\0';
  }
  free(text);
  const char *env = getenv("BAREOSDIR_PATH");
  if (env != NULL && env[0] != '\0') {
    size_t n = strlen(env);
    char *bigger = realloc(out, len + n + 2);
    if (bigger != NULL) {
      out = bigger;
      if (len) out[len++] = ':';
      memcpy(out + len, env, n + 1);
    }
  }
  g_shim.extra_path = out;
}

/*
 * The interpreter is configured explicitly: the Python this file was built
 * for (never whatever python3 is first on PATH), no signal handlers (the
 * Director owns signals), and no PYTHON* environment variables except
 * PYTHONMALLOC (see the README).
 */
static int start_python(char *err, size_t errlen) {
  PyStatus status;
  PyPreConfig pre;
  PyPreConfig_InitPythonConfig(&pre);
  pre.use_environment = 0;
  pre.utf8_mode = 1;
  const char *alloc = getenv("PYTHONMALLOC");
  if (alloc != NULL && strcmp(alloc, "malloc") == 0)
    pre.allocator = PYMEM_ALLOCATOR_MALLOC;
  else if (alloc != NULL && strcmp(alloc, "malloc_debug") == 0)
    pre.allocator = PYMEM_ALLOCATOR_MALLOC_DEBUG;
  status = Py_PreInitialize(&pre);
  if (PyStatus_Exception(status)) goto fail;

  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.use_environment = 0;
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  config.user_site_directory = 0;
  /* site runs once, in the main interpreter (bind_extension); the
   * sub-interpreters that inherit this configuration skip it and get the
   * resulting sys.path from the extension. */
  config.site_import = 0;
  /* No bytecode into plugin directories (README, Security). */
  config.write_bytecode = 0;
  status = PyConfig_SetBytesString(&config, &config.program_name,
                                   BAREOSDIR_PYTHON_EXE);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) goto fail;
  return 0;
fail:
  bd_fmt(err, errlen, "%s: cannot start Python %s (%s): %s", shim_name(),
         BAREOSDIR_PYTHON_EXE, PY_VERSION,
         status.err_msg ? status.err_msg : "unknown error");
  return -1;
}

/* GIL held.  Appends each absolute ':'-separated entry of
 * g_shim.extra_path that sys.path lacks; -1 with a Python error set on
 * failure.  A relative entry is left to the extension's site.addsitedir,
 * which makes it absolute: appended here as it is, it would stand on
 * sys.path twice, in two spellings. */
static int append_extra_path(PyObject *sys_path) {
  const char *p = g_shim.extra_path ? g_shim.extra_path : "";
  while (*p != '\0') {
    size_t n = strcspn(p, ":");
    if (n > 0 && p[0] == '/') {
      PyObject *entry = PyUnicode_DecodeFSDefaultAndSize(p, (Py_ssize_t)n);
      int has = entry ? PySequence_Contains(sys_path, entry) : -1;
      int rc = has < 0 || (has == 0 && PyList_Append(sys_path, entry) < 0);
      Py_XDECREF(entry);
      if (rc) return -1;
    }
    p += n + (p[n] == ':');
  }
  return 0;
}

/* GIL held.  Puts our directory first on sys.path and the administrator's
 * directories after it, imports the extension and binds.  On failure,
 * err says what was searched and how to fix it. */
static const bd_plugin_binding *bind_extension(char *err, size_t errlen) {
  const bd_plugin_binding *result = NULL;
  PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
  PyObject *dir = NULL, *mod = NULL, *cap = NULL, *res = NULL, *hostio = NULL;
  if (sys_path == NULL) {
    bd_fmt(err, errlen, "%s: sys.path is missing", shim_name());
    return NULL;
  }
  if (g_shim.started_python) {
    PyObject *site = PyImport_ImportModule("site"); /* new */
    PyObject *x = site ? PyObject_CallMethod(site, "main", NULL) : NULL;
    Py_XDECREF(x);
    Py_XDECREF(site);
    PyErr_Clear();
  }
  /* Once, also when the second copy of this file joins from the same
   * directory. */
  dir = PyUnicode_DecodeFSDefault(g_shim.shim_dir); /* new */
  int has = dir ? PySequence_Contains(sys_path, dir) : -1;
  if (has < 0 || (has == 0 && PyList_Insert(sys_path, 0, dir) < 0)) goto fail;
  /* The administrator's directories may hold the package itself: they go
   * after everything else (where the extension's site.addsitedir would put
   * them) before it is imported. */
  if (append_extra_path(sys_path) < 0) goto fail;
  mod = PyImport_ImportModule("bareosdir._bareosdir"); /* new */
  if (mod == NULL) goto fail;
  cap = PyCapsule_New(&g_shim.director, BD_DIRECTOR_CAPSULE, NULL); /* new */
  if (cap == NULL) goto fail;
  res = PyObject_CallMethod(mod, "_bind", "O", cap); /* new */
  if (res == NULL) goto fail;
  result = PyCapsule_GetPointer(res, BD_PLUGIN_CAPSULE);
  if (result == NULL) goto fail;
  if (result->size != sizeof *result) {
    bd_fmt(err, errlen,
           "%s: the bareosdir extension found does not match this %s.so "
           "(binding size %u, expected %zu): install both from the same "
           "build",
           shim_name(), shim_name(), result->size, sizeof *result);
    result = NULL;
    goto done;
  }
  /* The Director's stdout is closed: plugin output in the main
   * interpreter goes to the Director as messages too. */
  hostio = PyImport_ImportModule("bareosdir._hostio"); /* new */
  if (hostio != NULL) {
    PyObject *x = PyObject_CallMethod(hostio, "install", NULL);
    Py_XDECREF(x);
  }
  PyErr_Clear();
  goto done;
fail: {
  char exc[2048];
  bd_exc_format(exc, sizeof exc);
  PyObject *p = PyObject_Repr(sys_path); /* new */
  const char *ps = p ? PyUnicode_AsUTF8(p) : NULL;
  bd_fmt(err, errlen,
         "%s: cannot load the bareosdir package with Python %s "
         "(%s): %s; sys.path was %s.  Install bareosdir beside "
         "%s.so (cmake --install), or list the directory that "
         "holds it in %s/%s or in BAREOSDIR_PATH",
         shim_name(), BAREOSDIR_PYTHON_EXE, PY_VERSION, exc, ps ? ps : "?",
         shim_name(), g_shim.shim_dir, PATH_FILE);
  Py_XDECREF(p);
  PyErr_Clear();
  result = NULL;
}
done:
  Py_XDECREF(dir);
  Py_XDECREF(mod);
  Py_XDECREF(cap);
  Py_XDECREF(res);
  Py_XDECREF(hostio);
  return result;
}

bRC loadPlugin(PluginApiDefinition *core_version, CoreFunctions *core,
               PluginInformation **plugin_info,
               PluginFunctions **plugin_functions) {
  char err[8192];
  if (core_version == NULL || core == NULL || plugin_info == NULL ||
      plugin_functions == NULL)
    return bRC_Error;
  if (g_shim.binding != NULL) {
    /* The same file loaded again (a hard link gives the Director the same
     * handle twice): the same tables serve both; the last unload ends. */
    g_shim.loads++;
    *plugin_info = g_shim.binding->info;
    *plugin_functions = g_shim.binding->functions;
    return bRC_OK;
  }
  sig_state sigs;
  sig_save(&sigs);
  pin_libpython();
  find_paths(core);
  if (!Py_IsInitialized()) {
    if (start_python(err, sizeof err) < 0) {
      sig_restore(&sigs);
      log_error(core, err);
      return bRC_Error;
    }
    g_shim.started_python = 1;
  } else {
    /* Another copy (python3-dir.so beside python-dir.so) started it:
     * share it.  GILState is right here: this is the main interpreter. */
    PyGILState_Ensure();
  }
  g_shim.director.size = sizeof g_shim.director;
  g_shim.director.api_version = core_version->version;
  g_shim.director.core = core;
  g_shim.director.extra_path = g_shim.extra_path;
  g_shim.director.file_name = shim_name();
  g_shim.binding = bind_extension(err, sizeof err);
  /* Release the GIL for the Director's threads. */
  PyEval_SaveThread();
  sig_restore(&sigs);
  if (g_shim.binding == NULL) {
    log_error(core, err);
    return bRC_Error;
  }
  g_shim.loads = 1;
  *plugin_info = g_shim.binding->info;
  *plugin_functions = g_shim.binding->functions;
  return bRC_OK;
}

bRC unloadPlugin(void) {
  int finalize;
  if (g_shim.binding != NULL && --g_shim.loads > 0) return bRC_OK;
  if (g_shim.binding != NULL) {
    /* Refuses new calls, waits a bounded time for running ones, ends the
     * interpreters it can.  1 only when this was the last binding and
     * nothing is left running. */
    finalize = g_shim.binding->unbind();
    g_shim.binding = NULL;
  } else {
    /* After a failed loadPlugin: undo only what this copy started. */
    finalize = g_shim.started_python;
  }
  const CoreFunctions *core = g_shim.director.core;
  if (core != NULL && core->DebugMessage != NULL)
    core->DebugMessage(NULL, __FILE__, __LINE__, 50, "%s: %s\n", shim_name(),
                       finalize ? "unloaded, finalizing Python"
                                : "unloaded, Python stays up (still bound "
                                  "or busy elsewhere)");
  if (finalize && Py_IsInitialized()) {
    sig_state sigs;
    sig_save(&sigs);
    PyGILState_Ensure();
    Py_FinalizeEx();
    sig_restore(&sigs);
  }
  g_shim.started_python = 0;
  free(g_shim.extra_path);
  g_shim.extra_path = NULL;
  return bRC_OK;
}
