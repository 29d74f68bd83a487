/*
 * The plugin engine: the PluginFunctions table the Director calls
 * (newPlugin, freePlugin, getPluginValue, setPluginValue,
 * handlePluginEvent), the binding to the Director's callbacks, and the life
 * of a plugin instance: options, loading the module into its interpreter,
 * dispatching events to it and ending it.
 *
 * There is one engine per process, shared by both shim copies
 * (python-dir.so, python3-dir.so) and by every mock director, because there
 * is one Python runtime per process and the Director hands every copy the
 * same callbacks.  Its few fields are guarded by a mutex or atomic.
 */
#include "bareosdir.h"

#include <libgen.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
  pthread_mutex_t lock;
  int binds;
  const CoreFunctions *core;
  atomic_int inflight;  /* calls from the Director inside the engine now */
  atomic_int closing;   /* the last unbind is under way */
  atomic_int instances; /* live instances */
  atomic_int loaded;    /* instances with a module loaded */
  char *extra_path;     /* the binding's extra directories, under lock */
} g_eng = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *const event_names[] = {
    [bDirEventJobStart] = "bDirEventJobStart",
    [bDirEventJobEnd] = "bDirEventJobEnd",
    [bDirEventJobInit] = "bDirEventJobInit",
    [bDirEventJobRun] = "bDirEventJobRun",
    [bDirEventVolumePurged] = "bDirEventVolumePurged",
    [bDirEventNewVolume] = "bDirEventNewVolume",
    [bDirEventNeedVolume] = "bDirEventNeedVolume",
    [bDirEventVolumeFull] = "bDirEventVolumeFull",
    [bDirEventRecyle] = "bDirEventRecyle",
    [bDirEventGetScratch] = "bDirEventGetScratch",
    [bDirEventNewPluginOptions] = "bDirEventNewPluginOptions",
};

const char *bd_eng_event_name(int event) {
  if (event >= 1 && event <= BD_DIR_EVENT_MAX) return event_names[event];
  return "unknown event";
}

const CoreFunctions *bd_eng_core(void) {
  pthread_mutex_lock(&g_eng.lock);
  const CoreFunctions *core = g_eng.binds > 0 ? g_eng.core : NULL;
  pthread_mutex_unlock(&g_eng.lock);
  return core;
}

/* ---- entering an instance's interpreter ---- */

/*
 * Every Director-to-Python call has this shape: enter the instance's
 * interpreter (taking the GIL with this thread's thread state of it), make
 * the instance findable for the API functions, call, convert, leave.
 */
typedef struct {
  PyThreadState *ts;
  PyObject *tsd;      /* main mode: the thread dict we put the instance in */
  PyObject *key;
  PyObject *previous; /* what was there before (nested dispatch), or NULL */
} bd_entry;

static int enter(bd_instance *inst, bd_entry *e) {
  memset(e, 0, sizeof *e);
  e->ts = bd_ip_enter(inst->interp);
  if (e->ts == NULL) return -1;
  if (inst->interp_mode == BD_INTERP_ISOLATED && inst->interp->api_module)
    bd_mod_thread_entered(inst->interp->api_module);
  if (inst->interp_mode == BD_INTERP_MAIN) {
    if (inst->capsule == NULL) {
      inst->capsule = bd_eng_marker(inst); /* new */
      if (inst->capsule == NULL) PyErr_Clear();
    }
    /* Several instances share the main interpreter, so the instance goes
     * with the dispatch in progress on this thread state. */
    bd_modstate *st = bd_mod_state(inst->interp->api_module);
    e->tsd = PyThreadState_GetDict(); /* borrowed */
    e->key = st->tsd_key;
    if (e->tsd != NULL && inst->capsule != NULL) {
      e->previous = PyDict_GetItemWithError(e->tsd, e->key); /* borrowed */
      Py_XINCREF(e->previous);
      if (PyDict_SetItem(e->tsd, e->key, inst->capsule) < 0) PyErr_Clear();
    }
  }
  return 0;
}

static void leave(bd_entry *e) {
  if (e->tsd != NULL) {
    if (e->previous != NULL) {
      if (PyDict_SetItem(e->tsd, e->key, e->previous) < 0) PyErr_Clear();
      Py_DECREF(e->previous);
    } else if (PyDict_DelItem(e->tsd, e->key) < 0) {
      PyErr_Clear();
    }
  }
  if (PyErr_Occurred()) PyErr_Clear(); /* nothing leaks into the next call */
  bd_ip_leave(e->ts);
}

/* ---- instance lifetimes and handles ---- */

/*
 * An instance lives as long as anything refers to it: the Director (from
 * newPlugin to freePlugin) and every API call that drops the GIL while
 * using it (JobMessage and DebugMessage wait in the Director).  The last
 * reference frees it, so freePlugin never frees memory a plugin thread is
 * still using, however long that thread stays in the Director.
 *
 * Python code never holds a pointer: the marker an instance's modules and
 * the thread dict carry is a handle, an index into this table plus the
 * generation of that slot.  freePlugin retires the handle with the GIL
 * held; a marker kept past its job (or made up) then finds a different
 * generation or an empty slot and is refused, never followed.
 */
#define HANDLE_INDEX_BITS (sizeof(uintptr_t) * 4)
#define HANDLE_INDEX_MASK (((uintptr_t)1 << HANDLE_INDEX_BITS) - 1)
#define HANDLE_MAX_SLOTS ((size_t)1 << (HANDLE_INDEX_BITS < 20 ? 15 : 20))

static struct {
  pthread_mutex_t lock;
  bd_instance **slot;   /* live instances by index */
  uintptr_t *gen;       /* generation of the instance in each slot */
  size_t cap, next;     /* next: where to look for a free slot first */
  uint64_t state;       /* for the next generation */
} g_handles = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A new generation (lock held): the splitmix64 sequence from a seed taken
 * at the first registration.  Not a small counter, so a handle cannot be
 * guessed from the previous one; 0 is never used. */
static uintptr_t next_generation(void) {
  if (g_handles.state == 0) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    g_handles.state = ((uint64_t)t.tv_sec << 32) ^ (uint64_t)t.tv_nsec ^
                      (uint64_t)(uintptr_t)&g_handles ^ (uint64_t)getpid();
  }
  uintptr_t g = 0;
  while (g == 0) {
    uint64_t z = (g_handles.state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    g = (uintptr_t)z & (~(uintptr_t)0 >> HANDLE_INDEX_BITS);
  }
  return g;
}

/* Gives inst its handle and the Director's reference.  -1 when the table
 * cannot grow (memory, or more than HANDLE_MAX_SLOTS live instances). */
static int handle_register(bd_instance *inst) {
  atomic_store(&inst->refs, 1);
  pthread_mutex_lock(&g_handles.lock);
  size_t i = g_handles.cap;
  for (size_t k = 0; k < g_handles.cap; k++) {
    size_t j = (g_handles.next + k) % g_handles.cap;
    if (g_handles.slot[j] == NULL) {
      i = j;
      break;
    }
  }
  if (i == g_handles.cap) {
    size_t cap = g_handles.cap ? 2 * g_handles.cap : 64;
    bd_instance **slot = cap <= HANDLE_MAX_SLOTS
                             ? realloc(g_handles.slot, cap * sizeof *slot)
                             : NULL;
    if (slot != NULL) g_handles.slot = slot;
    uintptr_t *gen = slot ? realloc(g_handles.gen, cap * sizeof *gen) : NULL;
    if (gen == NULL) {
      pthread_mutex_unlock(&g_handles.lock);
      return -1;
    }
    g_handles.gen = gen;
    for (size_t j = g_handles.cap; j < cap; j++) {
      g_handles.slot[j] = NULL;
      g_handles.gen[j] = 0;
    }
    g_handles.cap = cap;
  }
  g_handles.slot[i] = inst;
  g_handles.next = i + 1;
  g_handles.gen[i] = next_generation();
  inst->handle = (g_handles.gen[i] << HANDLE_INDEX_BITS) | (uintptr_t)(i + 1);
  pthread_mutex_unlock(&g_handles.lock);
  return 0;
}

/* From now on no lookup finds inst.  Idempotent. */
static void handle_retire(bd_instance *inst) {
  pthread_mutex_lock(&g_handles.lock);
  size_t i = (size_t)(inst->handle & HANDLE_INDEX_MASK);
  if (i >= 1 && i <= g_handles.cap && g_handles.slot[i - 1] == inst) {
    g_handles.slot[i - 1] = NULL;
    g_handles.gen[i - 1] = 0;
  }
  pthread_mutex_unlock(&g_handles.lock);
}

bd_instance *bd_eng_lookup(uintptr_t handle) {
  bd_instance *inst = NULL;
  size_t i = (size_t)(handle & HANDLE_INDEX_MASK);
  uintptr_t gen = handle >> HANDLE_INDEX_BITS;
  pthread_mutex_lock(&g_handles.lock);
  if (i >= 1 && i <= g_handles.cap && gen != 0 && g_handles.gen[i - 1] == gen)
    inst = g_handles.slot[i - 1];
  pthread_mutex_unlock(&g_handles.lock);
  if (inst != NULL && atomic_load(&inst->closing)) inst = NULL;
  return inst;
}

void bd_eng_ref(bd_instance *inst) { atomic_fetch_add(&inst->refs, 1); }

void bd_eng_unref(bd_instance *inst) {
  if (atomic_fetch_sub(&inst->refs, 1) != 1) return;
  int bare = inst->bare;
  free(inst->module_name);
  free(inst->module_path);
  free(inst);
  if (!bare) atomic_fetch_sub(&g_eng.instances, 1);
}

PyObject *bd_eng_marker(bd_instance *inst) {
  /* The capsule's pointer is the handle itself, never dereferenced. */
  return PyCapsule_New((void *)inst->handle, BD_MARKER_NAME, NULL);
}

bd_instance *bd_eng_marker_instance(PyObject *marker, const char **why) {
  static const char *const forged = "it is not a marker bareosdir made";
  if (!PyCapsule_CheckExact(marker) ||
      !PyCapsule_IsValid(marker, BD_MARKER_NAME)) {
    if (why) *why = forged;
    return NULL;
  }
  void *p = PyCapsule_GetPointer(marker, BD_MARKER_NAME);
  if (p == NULL) {
    PyErr_Clear();
    if (why) *why = forged;
    return NULL;
  }
  bd_instance *inst = bd_eng_lookup((uintptr_t)p);
  if (inst == NULL && why)
    *why = "its plugin instance has ended (a marker kept from an earlier "
           "job, or made up)";
  return inst;
}

/* ---- loading the plugin module ---- */

/* Isolated mode: the interpreter serves this one instance. */
static void set_owner(bd_instance *inst, bd_instance *owner) {
  if (inst->interp_mode != BD_INTERP_ISOLATED) return;
  if (inst->interp->api_module)
    bd_mod_state(inst->interp->api_module)->owner = owner;
}

static char *path_text(PyObject *where) {
  PyObject *sys_path = where ? where : PySys_GetObject("path"); /* borrowed */
  PyObject *r = sys_path ? PyObject_Repr(sys_path) : NULL;
  const char *s = r ? PyUnicode_AsUTF8(r) : NULL;
  char *out = strdup(s ? s : "(unknown)");
  Py_XDECREF(r);
  PyErr_Clear();
  return out;
}

static bRC import_failed(bd_instance *inst, PyObject *where);

/* The ':'-separated BAREOSDIR_PATH and bareosdir-path.conf entries the
 * binding brought (a copy: a later bind may replace them). */
static char *extra_path(void) {
  pthread_mutex_lock(&g_eng.lock);
  char *s = strdup(g_eng.extra_path ? g_eng.extra_path : "");
  pthread_mutex_unlock(&g_eng.lock);
  return s;
}

/* The Director's Plugin Directory, or "". */
static const char *plugin_dir_of(bd_instance *inst) {
  char *d = NULL;
  if (inst->core->getBareosValue(inst->ctx, bDirVarPluginDir, &d) != bRC_OK ||
      d == NULL)
    return "";
  return d;
}

/*
 * Both modes search one way (bareosdir._search): module_path, the Plugin
 * Directory, the administrator's extra directories, bareosdir/plugins,
 * then the standard library and site-packages; the directory the module is
 * found in comes first for its own imports.
 *
 * Isolated mode: _search.load_module puts that order on sys.path (the
 * interpreter serves this instance alone) and loads the file the search
 * found into sys.modules.  GIL held in the instance's interpreter.
 */
static bRC import_module(bd_instance *inst) {
  PyObject *search = NULL, *rest = NULL, *mod = NULL;
  bRC rc;
  char *extra = extra_path();
  if (extra == NULL) return bd_err_host(inst, "out of memory");
  search = PyImport_ImportModule("bareosdir._search"); /* new */
  if (inst->interp->baseline != NULL)
    rest = PyObject_GetAttrString(inst->interp->baseline, "path"); /* new */
  else
    rest = PyList_New(0);
  if (search == NULL || rest == NULL) {
    rc = bd_err_report(inst, "setting up the module search");
  } else {
    mod = PyObject_CallMethod(search, "load_module", "ssssO",
                              inst->module_name,
                              inst->module_path ? inst->module_path : "",
                              plugin_dir_of(inst), extra, rest); /* new */
    if (mod == NULL) {
      rc = import_failed(inst, NULL);
    } else {
      inst->module = mod; /* owns */
      rc = bRC_OK;
    }
  }
  free(extra);
  Py_XDECREF(rest);
  Py_XDECREF(search);
  return rc;
}

/* interpreter=main: the module and its own imports as private module
 * objects of this instance (bareosdir._isolation.PrivateModules), found by
 * the same search. */
static bRC import_private(bd_instance *inst) {
  PyObject *search_mod = NULL, *search = NULL, *iso = NULL, *mod = NULL;
  bRC rc;
  char *extra = extra_path();
  if (extra == NULL) return bd_err_host(inst, "out of memory");
  search_mod = PyImport_ImportModule("bareosdir._search"); /* new */
  search = search_mod ? PyObject_CallMethod(
                            search_mod, "Search", "sss",
                            inst->module_path ? inst->module_path : "",
                            plugin_dir_of(inst), extra)
                      : NULL; /* new */
  free(extra);
  PyObject *r = search ? PyObject_CallMethod(search_mod, "remember_main", "O",
                                             search)
                       : NULL; /* new */
  Py_XDECREF(r);
  iso = r ? PyImport_ImportModule("bareosdir._isolation") : NULL;
  inst->private_mods =
      iso ? PyObject_CallMethod(iso, "PrivateModules", "OO", search,
                                inst->capsule ? inst->capsule : Py_None)
          : NULL;
  mod = inst->private_mods
            ? PyObject_CallMethod(inst->private_mods, "load", "s",
                                  inst->module_name)
            : NULL;
  if (mod == NULL) {
    bd_exc exc;
    bd_exc_take(&exc);
    PyObject *where = inst->private_mods
                          ? PyObject_GetAttrString(inst->private_mods, "paths")
                          : NULL;
    PyErr_Clear();
    bd_exc_restore(&exc);
    rc = import_failed(inst, where);
    Py_XDECREF(where);
  } else {
    inst->module = mod;
    rc = bRC_OK;
  }
  Py_XDECREF(search);
  Py_XDECREF(search_mod);
  Py_XDECREF(iso);
  return rc;
}

/* A refusal under BAREOSDIR_STRICT_PATHS=1 is pending: it fails the load
 * whatever on_error says. */
static int refusal_pending(void) {
  bd_exc exc;
  bd_exc_take(&exc);
  PyObject *m = PyImport_ImportModule("bareosdir._search"); /* new */
  PyObject *cls = m ? PyObject_GetAttrString(m, "UnsafePluginPath") : NULL;
  Py_XDECREF(m);
  PyErr_Clear(); /* cannot tell: the original error is reported as it is */
  bd_exc_restore(&exc);
  int yes = cls != NULL && PyErr_ExceptionMatches(cls);
  Py_XDECREF(cls);
  return yes;
}

/* Reports a failed import (exception pending).  `where` is the search
 * path (None: sys.path). */
static bRC import_failed(bd_instance *inst, PyObject *where) {
  {
    if (refusal_pending()) inst->on_error = BD_ON_ERROR_FATAL;
    /* Not found at all (as opposed to failing inside the module): say
     * where we looked. */
    if (PyErr_ExceptionMatches(PyExc_ModuleNotFoundError)) {
      bd_exc exc;
      bd_exc_take(&exc);
      PyObject *name =
          exc.value ? PyObject_GetAttrString(exc.value, "name") : NULL;
      const char *n = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name)
                                                    : NULL;
      int self = n != NULL && strcmp(n, inst->module_name) == 0;
      Py_XDECREF(name);
      PyErr_Clear();
      if (self) {
        bd_exc_drop(&exc);
        char *path = path_text(where);
        bRC rc = bd_err_host(
            inst,
            "cannot load plugin module '%s': no module of that name on "
            "the search path %s; set module_path= in Dir Plugin Options or put "
            "%s.py in the Plugin Directory",
            inst->module_name, path, inst->module_name);
        free(path);
        return rc;
      }
      bd_exc_restore(&exc);
    }
    return bd_err_report(inst, "importing the plugin module");
  }
}

/* What was being done, for a message: `what`, or for an event
 * "handle_plugin_event(bDirEventJobEnd=2)".  Built only when reporting:
 * formatting on every event would cost more than the dispatch itself. */
static const char *describe(char *buf, size_t n, const char *what,
                            int event) {
  if (event <= 0) return what;
  bd_fmt(buf, n, "%s(%s=%d)", what, bd_eng_event_name(event), event);
  return buf;
}

/* Calls module.<name>(arg) (with the old API's context first when the
 * plugin is old-style).  GIL held.  `event` > 0 for handle_plugin_event. */
static bRC call_entry(bd_instance *inst, PyObject *name, PyObject *arg,
                      const char *what, int event) {
  char buf[128];
  PyObject *fn = PyObject_GetAttr(inst->module, name); /* new */
  if (fn == NULL) {
    PyErr_Clear();
    return bd_err_host(inst, "plugin module '%s' has no %s() function",
                       inst->module_name, PyUnicode_AsUTF8(name));
  }
  PyObject *res; /* new */
  if (inst->legacy) {
    PyObject *args[2] = {inst->legacy_ctx, arg};
    res = PyObject_Vectorcall(fn, args, 2, NULL);
  } else {
    res = PyObject_CallOneArg(fn, arg);
  }
  Py_DECREF(fn);
  if (res == NULL) {
    /* A refused import (BAREOSDIR_STRICT_PATHS=1) fails the call whatever
     * on_error says; on_error stays as it was for later calls. */
    int on_error = inst->on_error;
    if (refusal_pending()) inst->on_error = BD_ON_ERROR_FATAL;
    bRC rc = bd_err_report(inst, describe(buf, sizeof buf, what, event));
    inst->on_error = on_error;
    bd_mod_flush_output(inst);
    return rc;
  }
  bRC rc = bd_err_result_fast(res);
  if (rc == (bRC)-1)
    rc = bd_err_result(inst, describe(buf, sizeof buf, what, event), res);
  Py_DECREF(res);
  bd_mod_flush_output(inst);
  return rc;
}

/* Old-style plugins (Bareos 19 and older) take a context first: their
 * load_bareos_plugin has exactly two required positional parameters. */
static int detect_legacy(bd_instance *inst) {
  PyObject *hostio = PyImport_ImportModule("bareosdir._hostio"); /* new */
  if (hostio == NULL) return -1;
  PyObject *r = PyObject_CallMethod(hostio, "legacy_context", "O",
                                    inst->module); /* new */
  Py_DECREF(hostio);
  if (r == NULL) return -1;
  if (r != Py_None) {
    inst->legacy = 1;
    inst->legacy_ctx = r; /* owns */
    bd_modstate *st = bd_mod_state(inst->interp->api_module);
    if (st->legacy_ctx_type == NULL) {
      st->legacy_ctx_type = (PyObject *)Py_TYPE(r);
      Py_INCREF(st->legacy_ctx_type);
    }
  } else {
    Py_DECREF(r);
  }
  return 0;
}

static bRC load_plugin(bd_instance *inst, const char *rest) {
  char err[512];
  if (inst->interp_mode == BD_INTERP_ISOLATED) {
    inst->interp = bd_ip_acquire(inst->module_name, err, sizeof err);
    if (inst->interp == NULL)
      return bd_err_host(inst, "cannot start an interpreter for module "
                               "'%s': %s", inst->module_name, err);
  } else {
    inst->interp = bd_ip_main();
    if (inst->interp->api_module == NULL)
      return bd_err_host(inst, "interpreter=main is not available here");
  }
  bd_entry e;
  if (enter(inst, &e) < 0)
    return bd_err_host(inst, "cannot enter the interpreter");
  set_owner(inst, inst);
  bRC rc = inst->interp_mode == BD_INTERP_MAIN ? import_private(inst)
                                               : import_module(inst);
  if (rc == bRC_OK && inst->module != NULL) {
    if (detect_legacy(inst) < 0) {
      rc = bd_err_report(inst, "inspecting load_bareos_plugin()");
    } else {
      PyObject *arg = PyUnicode_FromString(rest); /* new */
      bd_modstate *st = bd_mod_state(inst->interp->api_module);
      rc = arg ? call_entry(inst, st->str_load, arg, "load_bareos_plugin()", 0)
               : bd_err_report(inst, "converting the options");
      Py_XDECREF(arg);
    }
  }
  if (inst->module != NULL && rc == bRC_OK) {
    /* Route the plugin's logging, if it uses it, to the Director. */
    PyObject *hostio = PyImport_ImportModule("bareosdir._hostio"); /* new */
    PyObject *r = hostio ? PyObject_CallMethod(hostio, "after_load", NULL)
                         : NULL;
    Py_XDECREF(r);
    Py_XDECREF(hostio);
    PyErr_Clear();
  }
#ifdef BAREOSDIR_TEST_LEAK
  /* Test builds only (cmake -DBAREOSDIR_TEST_LEAK=ON): leak one str and one
   * malloc'ed block per loaded instance, so tools/test-valgrind.sh can show
   * that it catches both kinds of leak. */
  if (rc == bRC_OK) {
    (void)PyUnicode_FromFormat("bareosdir test leak %p", (void *)inst);
    char *block = malloc(48);
    if (block != NULL) memset(block, 0x5a, 48);
  }
#endif
  if (inst->module != NULL && rc == bRC_OK && inst->loaded == 0) {
    inst->loaded = 1;
    atomic_fetch_add(&g_eng.loaded, 1);
  }
  leave(&e);
  return rc;
}

/* ---- PluginFunctions ---- */

static bd_instance *instance_of(PluginContext *ctx) {
  return ctx ? (bd_instance *)ctx->plugin_private_context : NULL;
}

/* Counts a Director call into the engine; refuses it during unload. */
static int begin_call(void) {
  atomic_fetch_add(&g_eng.inflight, 1);
  if (atomic_load(&g_eng.closing)) {
    atomic_fetch_sub(&g_eng.inflight, 1);
    return -1;
  }
  return 0;
}

static void end_call(void) { atomic_fetch_sub(&g_eng.inflight, 1); }

static bRC new_instance(PluginContext *ctx, const char *file_name) {
  if (ctx == NULL || begin_call() < 0) return bRC_Error;
  const CoreFunctions *core = bd_eng_core();
  bd_instance *inst = core ? calloc(1, sizeof *inst) : NULL;
  if (inst == NULL) {
    end_call();
    return bRC_Error;
  }
  inst->ctx = ctx;
  inst->core = core;
  inst->file_name = file_name;
  inst->interp_mode = BD_INTERP_ISOLATED;
  inst->on_error = BD_ON_ERROR_FATAL;
  if (handle_register(inst) < 0) {
    free(inst);
    end_call();
    return bRC_Error;
  }
  ctx->plugin_private_context = inst;
  atomic_fetch_add(&g_eng.instances, 1);
  /* Nothing is loaded until options name a module: instance 0 exists for
   * every job, with or without Dir Plugin Options. */
  bRC rc = core->registerBareosEvents(ctx, 1, bDirEventNewPluginOptions);
  end_call();
  return rc;
}

/*
 * Which copy of the shim an instance belongs to.  The Director's Plugin
 * struct is opaque, and every copy shares this one engine, so each file
 * name gets a PluginFunctions table of its own whose newPlugin hands the
 * name to the instance.  A table is filled once, under g_eng.lock, before
 * it is handed out, and never changes or goes away after; a name seen
 * again (a copy loaded, unloaded and loaded again) gets its table back.
 * More names than tables (never in practice: there are two copies) share
 * the default table, named "python-dir".
 */
#define BD_NAMED_TABLES 8

static struct {
  char name[256];
  PluginFunctions funcs;
  bd_plugin_binding binding;
} g_named[BD_NAMED_TABLES];
static int g_nnamed; /* under g_eng.lock */

static bRC eng_newPlugin(PluginContext *ctx) {
  return new_instance(ctx, BD_DEFAULT_FILE_NAME);
}

/* One newPlugin per table, since the Director passes only the context. */
#define BD_NEW_AT(k)                                  \
  static bRC eng_newPlugin_##k(PluginContext *ctx) {  \
    return new_instance(ctx, g_named[k].name);        \
  }
BD_NEW_AT(0)
BD_NEW_AT(1)
BD_NEW_AT(2)
BD_NEW_AT(3)
BD_NEW_AT(4)
BD_NEW_AT(5)
BD_NEW_AT(6)
BD_NEW_AT(7)
#undef BD_NEW_AT
static bRC (*const g_new_at[BD_NAMED_TABLES])(PluginContext *) = {
    eng_newPlugin_0, eng_newPlugin_1, eng_newPlugin_2, eng_newPlugin_3,
    eng_newPlugin_4, eng_newPlugin_5, eng_newPlugin_6, eng_newPlugin_7,
};

static bRC on_options(bd_instance *inst, const char *text) {
  if (text == NULL) return bd_err_host(inst, "no plugin options given");
  bd_options o;
  char err[512];
  if (bd_options_parse(text, &o, err, sizeof err) != 0)
    return bd_err_host(inst, "invalid Dir Plugin Options: %s", err);
  char *masked = bd_options_mask_secrets(text);
  size_t n;
  char *line = masked ? bd_afmt(0, &n, "bareosdir: instance %u options: %s",
                                inst->ctx->instance, masked)
                      : NULL;
  if (line != NULL)
    bd_mod_debug_message(inst->core, inst->ctx, __FILE__, __LINE__, 100, line,
                         n);
  free(line);
  free(masked);
  bRC rc = bRC_OK;
  if (!inst->loaded) {
    if (inst->module_name == NULL) {
      inst->module_name = strdup(o.module_name ? o.module_name : "bareos-dir");
      inst->module_path = o.module_path ? strdup(o.module_path) : NULL;
      if (o.has_interpreter) inst->interp_mode = o.interpreter;
    }
    if (o.has_on_error) inst->on_error = o.on_error;
    if (inst->interp == NULL) rc = load_plugin(inst, o.rest);
    if (!inst->loaded) {
      bd_options_free(&o);
      return rc;
    }
  } else if (o.has_on_error) {
    inst->on_error = o.on_error;
  }
  bd_entry e;
  if (enter(inst, &e) < 0) {
    bd_options_free(&o);
    return bd_err_host(inst, "cannot enter the interpreter");
  }
  PyObject *arg = PyUnicode_FromString(o.rest); /* new */
  bd_modstate *st = bd_mod_state(inst->interp->api_module);
  rc = arg ? call_entry(inst, st->str_parse, arg, "parse_plugin_definition()",
                        0)
           : bd_err_report(inst, "converting the options");
  Py_XDECREF(arg);
  leave(&e);
  bd_options_free(&o);
  return rc;
}

static bRC eng_handlePluginEvent(PluginContext *ctx, bDirEvent *event,
                                 void *value) {
  bd_instance *inst = instance_of(ctx);
  if (inst == NULL || event == NULL || begin_call() < 0) return bRC_Error;
  bRC rc;
  if (event->eventType == bDirEventNewPluginOptions) {
    rc = on_options(inst, (const char *)value);
  } else if (!inst->loaded) {
    rc = bRC_OK; /* no module: nothing to tell */
  } else {
    bd_entry e;
    if (enter(inst, &e) < 0) {
      end_call();
      return bd_err_host(inst, "cannot enter the interpreter");
    }
    PyObject *arg = PyLong_FromUnsignedLong(event->eventType); /* new */
    bd_modstate *st = bd_mod_state(inst->interp->api_module);
    rc = arg ? call_entry(inst, st->str_handle, arg, "handle_plugin_event",
                          (int)event->eventType)
             : bd_err_report(inst, "converting the event number");
    Py_XDECREF(arg);
    leave(&e);
  }
  end_call();
  return rc;
}

static double thread_wait_s(void) {
  const char *s = getenv("BAREOSDIR_THREAD_WAIT");
  double v = s ? atof(s) : 1.0;
  return v >= 0 && v <= 3600 ? v : 1.0;
}

/*
 * Gives plugin threads still inside a Director callback for this instance
 * (a JobMessage held up by mail or the catalog) up to
 * BAREOSDIR_THREAD_WAIT to return, so the Director's context is not ended
 * under them when it can be helped.  Memory safety does not rest on this
 * wait: each such call holds a reference to the instance.
 */
static void wait_calls_in_flight(bd_instance *inst) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  double start = (double)t.tv_sec + (double)t.tv_nsec / 1e9;
  double limit = thread_wait_s();
  while (atomic_load(&inst->refs) > 1) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((double)t.tv_sec + (double)t.tv_nsec / 1e9 - start >= limit) break;
    struct timespec d = {0, 1000 * 1000};
    nanosleep(&d, NULL);
  }
}

static bRC eng_freePlugin(PluginContext *ctx) {
  bd_instance *inst = instance_of(ctx);
  if (inst == NULL) return bRC_Error;
  /* Freeing is allowed during unload: it only ends things. */
  atomic_fetch_add(&g_eng.inflight, 1);
  atomic_store(&inst->closing, 1);
  if (inst->interp != NULL) {
    bd_entry e;
    if (enter(inst, &e) == 0) {
      bd_mod_flush_output(inst); /* text without a newline: this job's */
      set_owner(inst, NULL);
      if (inst->private_mods != NULL) {
        PyObject *r = PyObject_CallMethod(inst->private_mods, "release", NULL);
        Py_XDECREF(r);
        Py_CLEAR(inst->private_mods);
      }
      Py_CLEAR(inst->module);
      Py_CLEAR(inst->legacy_ctx);
      Py_CLEAR(inst->capsule);
      /* With the GIL held: from here no marker, thread dict or module state
       * leads to this instance, and no API call that found it earlier is
       * still running unless it holds a reference (see bd_eng_ref). */
      handle_retire(inst);
      leave(&e);
    }
    if (inst->loaded) atomic_fetch_sub(&g_eng.loaded, 1);
    wait_calls_in_flight(inst);
    if (inst->interp_mode == BD_INTERP_ISOLATED) {
      if (bd_ip_release(inst->interp, inst->module_name) != 0) {
        size_t n;
        char *line = bd_afmt(0, &n,
                             "bareosdir: module '%s' left threads running "
                             "after its job; its interpreter is kept until "
                             "they end",
                             inst->module_name ? inst->module_name : "?");
        if (line != NULL)
          bd_mod_debug_message(inst->core, ctx, __FILE__, __LINE__, 50, line,
                               n);
        free(line);
      }
    }
  }
  handle_retire(inst); /* not loaded, or the interpreter was not entered */
  ctx->plugin_private_context = NULL;
  bd_eng_unref(inst); /* the Director's reference */
  atomic_fetch_sub(&g_eng.inflight, 1);
  return bRC_OK;
}

static bRC eng_getPluginValue(PluginContext *ctx, int var, void *value) {
  (void)ctx;
  (void)var;
  (void)value;
  return bRC_OK;
}

static bRC eng_setPluginValue(PluginContext *ctx, int var, void *value) {
  (void)ctx;
  (void)var;
  (void)value;
  return bRC_OK;
}

static PluginInformation g_info = {
    sizeof(PluginInformation),
    BD_DIR_PLUGIN_INTERFACE_VERSION,
    BD_DIR_PLUGIN_MAGIC,
    "Bareos AGPLv3",
    "bareosdir",
    "2026-11-27",
    BD_VERSION,
    "Python Director plugins (bareosdir)",
    "python:module_name=NAME[:module_path=DIR][:instance=0..127]"
    "[:interpreter=isolated|main][:on_error=fatal|warning][:key=value...]",
};

static PluginFunctions g_funcs = {
    sizeof(PluginFunctions), BD_DIR_PLUGIN_INTERFACE_VERSION,
    eng_newPlugin,           eng_freePlugin,
    eng_getPluginValue,      eng_setPluginValue,
    eng_handlePluginEvent,
};

static bd_plugin_binding g_binding = {sizeof(bd_plugin_binding), &g_info,
                                      &g_funcs, bd_eng_unbind};

/* The binding whose newPlugin names instances file_name (see g_named). */
static bd_plugin_binding *binding_for(const char *file_name) {
  if (file_name == NULL || file_name[0] == '\0' ||
      strcmp(file_name, BD_DEFAULT_FILE_NAME) == 0 ||
      strlen(file_name) >= sizeof g_named[0].name)
    return &g_binding;
  bd_plugin_binding *found = &g_binding;
  pthread_mutex_lock(&g_eng.lock);
  int k;
  for (k = 0; k < g_nnamed; k++)
    if (strcmp(g_named[k].name, file_name) == 0) break;
  if (k == g_nnamed && g_nnamed < BD_NAMED_TABLES) {
    bd_fmt(g_named[k].name, sizeof g_named[k].name, "%s", file_name);
    g_named[k].funcs = g_funcs;
    g_named[k].funcs.newPlugin = g_new_at[k];
    g_named[k].binding = g_binding;
    g_named[k].binding.functions = &g_named[k].funcs;
    g_nnamed++;
  }
  if (k < g_nnamed) found = &g_named[k].binding;
  pthread_mutex_unlock(&g_eng.lock);
  return found;
}

PluginFunctions *bd_eng_functions_for(const char *file_name) {
  return binding_for(file_name)->functions;
}

/* ---- binding ---- */

static int package_dirs(PyObject *module, bd_ip_config *cfg) {
  PyObject *f = PyModule_GetFilenameObject(module); /* new */
  if (f == NULL) return -1;
  PyObject *b = NULL;
  int rc = -1;
  if (!PyUnicode_FSConverter(f, &b)) goto done;
  char *a1 = strdup(PyBytes_AS_STRING(b));
  char *a2 = strdup(PyBytes_AS_STRING(b));
  if (a1 && a2) {
    char *pkg = dirname(a1); /* .../bareosdir */
    size_t n = strlen(pkg);
    cfg->plugins_dir = malloc(n + sizeof "/plugins");
    if (cfg->plugins_dir) {
      memcpy(cfg->plugins_dir, pkg, n);
      memcpy(cfg->plugins_dir + n, "/plugins", sizeof "/plugins");
    }
    cfg->package_parent = strdup(dirname(dirname(a2)));
    rc = cfg->plugins_dir && cfg->package_parent ? 0 : -1;
  }
  free(a1);
  free(a2);
done:
  Py_XDECREF(b);
  Py_DECREF(f);
  if (rc < 0 && !PyErr_Occurred()) PyErr_NoMemory();
  return rc;
}

/* The binding interpreter's sys.path, '\n'-separated: sub-interpreters
 * start from it (the shim runs site only in the main interpreter, which
 * saves each sub-interpreter about 0.8 MB). */
static char *main_sys_path(void) {
  PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
  PyObject *sep = PyUnicode_FromString("\n");   /* new */
  PyObject *joined = NULL;
  if (sys_path != NULL && sep != NULL && PyList_Check(sys_path)) {
    PyObject *strs = PyList_New(0); /* new */
    for (Py_ssize_t i = 0; strs && i < PyList_GET_SIZE(sys_path); i++) {
      PyObject *p = PyList_GET_ITEM(sys_path, i); /* borrowed */
      if (PyUnicode_Check(p) && PyList_Append(strs, p) < 0) Py_CLEAR(strs);
    }
    joined = strs ? PyUnicode_Join(sep, strs) : NULL;
    Py_XDECREF(strs);
  }
  const char *s = joined ? PyUnicode_AsUTF8(joined) : NULL;
  char *out = s ? strdup(s) : NULL;
  Py_XDECREF(joined);
  Py_XDECREF(sep);
  PyErr_Clear();
  return out;
}

/* The main interpreter's API module, for interpreter=main instances. */
static int bind_main(PyObject *module) {
  bd_interp *ip = bd_ip_main();
  if (ip->api_module != NULL) return 0;
  if (PyThreadState_GetInterpreter(PyThreadState_Get()) !=
      PyInterpreterState_Main())
    return 0; /* bound from a sub-interpreter: main mode stays off */
  ip->api_module = Py_NewRef(module);
  /* Path imports of main-mode plugins (packages, compiled modules from
   * BAREOSDIR_PATH entries) are judged like those of isolated ones.  The
   * bytecode switch is left to the embedder: the shim turns it off, a test
   * process keeps its own. */
  PyObject *iso = PyImport_ImportModule("bareosdir._isolation"); /* new */
  PyObject *r = iso ? PyObject_CallMethod(iso, "install", "i", 0) : NULL;
  if (r == NULL) PyErr_Clear(); /* the API works; only the hook is missing */
  Py_XDECREF(r);
  Py_XDECREF(iso);
  return 0;
}

const bd_plugin_binding *bd_eng_bind_direct(PyObject *module,
                                            const bd_director_binding *b,
                                            char *err, size_t errlen) {
  if (b == NULL || b->size != sizeof *b || b->core == NULL) {
    bd_fmt(err, errlen, "bad director binding");
    return NULL;
  }
  if (b->api_version != BD_DIR_PLUGIN_INTERFACE_VERSION) {
    bd_fmt(err, errlen,
             "the Director speaks plugin interface version %u, this plugin "
             "version %d", b->api_version, BD_DIR_PLUGIN_INTERFACE_VERSION);
    return NULL;
  }
  bd_ip_config cfg = {0};
  cfg.extra_path = (char *)b->extra_path;
  /* The administrator's directories in the binding interpreter first, so
   * the sys.path handed to sub-interpreters has them too. */
  bd_ip_add_site_dirs(b->extra_path);
  cfg.main_path = main_sys_path();
  if (package_dirs(module, &cfg) < 0) {
    PyErr_Clear();
    bd_fmt(err, errlen, "cannot tell where the bareosdir package is");
    return NULL;
  }
  pthread_mutex_lock(&g_eng.lock);
  if (g_eng.binds > 0 && g_eng.core != b->core) {
    pthread_mutex_unlock(&g_eng.lock);
    bd_fmt(err, errlen, "already bound to another Director's callbacks");
    free(cfg.main_path);
    free(cfg.plugins_dir);
    free(cfg.package_parent);
    return NULL;
  }
  g_eng.binds++;
  g_eng.core = b->core;
  if (b->extra_path != NULL) {
    free(g_eng.extra_path);
    g_eng.extra_path = strdup(b->extra_path);
  }
  pthread_mutex_unlock(&g_eng.lock);
  bd_ip_init(&cfg);
  bind_main(module);
  free(cfg.main_path);
  free(cfg.plugins_dir);
  free(cfg.package_parent);
  return binding_for(b->file_name);
}

PyObject *bd_eng_bind(PyObject *module, PyObject *capsule) {
  bd_director_binding *b =
      PyCapsule_GetPointer(capsule, BD_DIRECTOR_CAPSULE); /* borrowed */
  if (b == NULL) return NULL;
  char err[256];
  const bd_plugin_binding *pb = bd_eng_bind_direct(module, b, err, sizeof err);
  if (pb == NULL) {
    PyErr_SetString(PyExc_RuntimeError, err);
    return NULL;
  }
  return PyCapsule_New((void *)pb, BD_PLUGIN_CAPSULE, NULL);
}

static double unload_wait_s(void) {
  const char *s = getenv("BAREOSDIR_UNLOAD_WAIT");
  double v = s ? atof(s) : 5.0;
  if (!(v >= 0)) v = 5.0; /* negative or not a number */
  return v < 600 ? v : 600;
}

static double mono_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Level 50: what unloading skipped because it could not end safely. */
static void report_leftovers(const bd_ip_leftovers *left, int clean) {
  const CoreFunctions *core = g_eng.core;
  if (core == NULL) return;
  char line[512];
  size_t n = bd_fmt(
      line, sizeof line,
      "bareosdir: unload: %d atexit callback(s) of plugins dropped unrun; "
      "%d interpreter(s) left running with plugin threads%s%s%s; %d plugin "
      "thread(s) in the main interpreter; Python %s",
      left->atexit_skipped, left->aside, left->aside ? " (modules: " : "",
      left->holders, left->aside ? ")" : "", left->main_threads,
      clean ? "can be finalized" : "is not finalized (would wait for them)");
  bd_mod_debug_message(core, NULL, __FILE__, __LINE__, 50, line, n);
}

int bd_eng_unbind(void) {
  pthread_mutex_lock(&g_eng.lock);
  int last = g_eng.binds > 0 && --g_eng.binds == 0;
  if (last) {
    free(g_eng.extra_path);
    g_eng.extra_path = NULL;
  }
  pthread_mutex_unlock(&g_eng.lock);
  if (!last) return 0;
  /* Refuse new calls, then give the ones in progress, and plugin threads
   * about to end, BAREOSDIR_UNLOAD_WAIT in all (by the clock: sleeps
   * overrun under load). */
  atomic_store(&g_eng.closing, 1);
  double deadline = mono_s() + unload_wait_s();
  while (atomic_load(&g_eng.inflight) > 0 && mono_s() < deadline) {
    struct timespec d = {0, 1000 * 1000};
    nanosleep(&d, NULL);
  }
  int clean = atomic_load(&g_eng.inflight) == 0 &&
              atomic_load(&g_eng.instances) == 0;
  if (clean && Py_IsInitialized()) {
    bd_interp *ip = bd_ip_main();
    if (ip->api_module != NULL) {
      PyThreadState *ts = bd_ip_enter(ip);
      if (ts != NULL) {
        Py_CLEAR(ip->api_module);
        bd_ip_leave(ts);
      }
    }
    bd_ip_leftovers left;
    clean = bd_ip_fini(&left, deadline);
    report_leftovers(&left, clean);
  }
  atomic_store(&g_eng.closing, 0);
  return clean;
}

bd_instance *bd_eng_bare_instance(const CoreFunctions *core,
                                  PluginContext *ctx) {
  bd_instance *inst = calloc(1, sizeof *inst);
  if (inst == NULL) return NULL;
  inst->ctx = ctx;
  inst->core = core;
  inst->file_name = BD_DEFAULT_FILE_NAME;
  inst->interp_mode = BD_INTERP_MAIN;
  inst->bare = 1;
  if (handle_register(inst) < 0) {
    free(inst);
    return NULL;
  }
  return inst;
}

void bd_eng_free_bare_instance(bd_instance *inst) {
  atomic_store(&inst->closing, 1);
  handle_retire(inst);
  bd_eng_unref(inst);
}

PyObject *bd_eng_stats(void) {
  pthread_mutex_lock(&g_eng.lock);
  int binds = g_eng.binds;
  pthread_mutex_unlock(&g_eng.lock);
  long created, reused;
  bd_ip_counters(&created, &reused);
  return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:i,s:l,s:l,s:i}", "binds", binds,
                       "instances", atomic_load(&g_eng.instances), "loaded",
                       atomic_load(&g_eng.loaded), "inflight",
                       atomic_load(&g_eng.inflight), "set_aside",
                       bd_ip_set_aside_count(), "idle", bd_ip_idle_count(),
                       "created", created, "reused", reused, "main_tstates",
                       bd_ip_main_tstates());
}
