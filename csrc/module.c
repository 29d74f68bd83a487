/*
 * The bareosdir._bareosdir Python module: the seven functions plugins call
 * (GetValue, SetValue, DebugMessage, JobMessage, RegisterEvents,
 * UnRegisterEvents, GetInstanceCount), the constants with their named
 * dicts, and the per-module state that ties a call to its plugin instance.
 * Multi-phase initialisation: every interpreter gets its own module object
 * and state.
 */
#include "bareosdir.h"

#include <string.h>

typedef struct {
  const char *group;
  const char *name;
  int value;
} bd_const;

static const bd_const bd_consts[] = {
    {"bRCs", "bRC_OK", bRC_OK},
    {"bRCs", "bRC_Stop", bRC_Stop},
    {"bRCs", "bRC_Error", bRC_Error},
    {"bRCs", "bRC_More", bRC_More},
    {"bRCs", "bRC_Term", bRC_Term},
    {"bRCs", "bRC_Seen", bRC_Seen},
    {"bRCs", "bRC_Core", bRC_Core},
    {"bRCs", "bRC_Skip", bRC_Skip},
    {"bRCs", "bRC_Cancel", bRC_Cancel},
    {"bJobMessageType", "M_ABORT", M_ABORT},
    {"bJobMessageType", "M_DEBUG", M_DEBUG},
    {"bJobMessageType", "M_FATAL", M_FATAL},
    {"bJobMessageType", "M_ERROR", M_ERROR},
    {"bJobMessageType", "M_WARNING", M_WARNING},
    {"bJobMessageType", "M_INFO", M_INFO},
    {"bJobMessageType", "M_SAVED", M_SAVED},
    {"bJobMessageType", "M_NOTSAVED", M_NOTSAVED},
    {"bJobMessageType", "M_SKIPPED", M_SKIPPED},
    {"bJobMessageType", "M_MOUNT", M_MOUNT},
    {"bJobMessageType", "M_ERROR_TERM", M_ERROR_TERM},
    {"bJobMessageType", "M_TERM", M_TERM},
    {"bJobMessageType", "M_RESTORED", M_RESTORED},
    {"bJobMessageType", "M_SECURITY", M_SECURITY},
    {"bJobMessageType", "M_ALERT", M_ALERT},
    {"bJobMessageType", "M_VOLMGMT", M_VOLMGMT},
    {"bDirVariable", "bDirVarJob", bDirVarJob},
    {"bDirVariable", "bDirVarLevel", bDirVarLevel},
    {"bDirVariable", "bDirVarType", bDirVarType},
    {"bDirVariable", "bDirVarJobId", bDirVarJobId},
    {"bDirVariable", "bDirVarClient", bDirVarClient},
    {"bDirVariable", "bDirVarNumVols", bDirVarNumVols},
    {"bDirVariable", "bDirVarPool", bDirVarPool},
    {"bDirVariable", "bDirVarStorage", bDirVarStorage},
    {"bDirVariable", "bDirVarWriteStorage", bDirVarWriteStorage},
    {"bDirVariable", "bDirVarReadStorage", bDirVarReadStorage},
    {"bDirVariable", "bDirVarCatalog", bDirVarCatalog},
    {"bDirVariable", "bDirVarMediaType", bDirVarMediaType},
    {"bDirVariable", "bDirVarJobName", bDirVarJobName},
    {"bDirVariable", "bDirVarJobStatus", bDirVarJobStatus},
    {"bDirVariable", "bDirVarPriority", bDirVarPriority},
    {"bDirVariable", "bDirVarVolumeName", bDirVarVolumeName},
    {"bDirVariable", "bDirVarCatalogRes", bDirVarCatalogRes},
    {"bDirVariable", "bDirVarJobErrors", bDirVarJobErrors},
    {"bDirVariable", "bDirVarJobFiles", bDirVarJobFiles},
    {"bDirVariable", "bDirVarSDJobFiles", bDirVarSDJobFiles},
    {"bDirVariable", "bDirVarSDErrors", bDirVarSDErrors},
    {"bDirVariable", "bDirVarFDJobStatus", bDirVarFDJobStatus},
    {"bDirVariable", "bDirVarSDJobStatus", bDirVarSDJobStatus},
    {"bDirVariable", "bDirVarPluginDir", bDirVarPluginDir},
    {"bDirVariable", "bDirVarLastRate", bDirVarLastRate},
    {"bDirVariable", "bDirVarJobBytes", bDirVarJobBytes},
    {"bDirVariable", "bDirVarReadBytes", bDirVarReadBytes},
    {"bwDirVariable", "bwDirVarJobReport", bwDirVarJobReport},
    {"bwDirVariable", "bwDirVarVolumeName", bwDirVarVolumeName},
    {"bwDirVariable", "bwDirVarPriority", bwDirVarPriority},
    {"bwDirVariable", "bwDirVarJobLevel", bwDirVarJobLevel},
    {"bDirEventType", "bDirEventJobStart", bDirEventJobStart},
    {"bDirEventType", "bDirEventJobEnd", bDirEventJobEnd},
    {"bDirEventType", "bDirEventJobInit", bDirEventJobInit},
    {"bDirEventType", "bDirEventJobRun", bDirEventJobRun},
    {"bDirEventType", "bDirEventVolumePurged", bDirEventVolumePurged},
    {"bDirEventType", "bDirEventNewVolume", bDirEventNewVolume},
    {"bDirEventType", "bDirEventNeedVolume", bDirEventNeedVolume},
    {"bDirEventType", "bDirEventVolumeFull", bDirEventVolumeFull},
    {"bDirEventType", "bDirEventRecyle", bDirEventRecyle},
    {"bDirEventType", "bDirEventGetScratch", bDirEventGetScratch},
    {"bDirEventType", "bDirEventNewPluginOptions", bDirEventNewPluginOptions},
};

static const char *const bd_groups[] = {"bRCs", "bJobMessageType",
                                        "bDirVariable", "bwDirVariable",
                                        "bDirEventType"};

/*
 * The constant dicts (bRCs, bJobMessageType, bDirVariable, bwDirVariable,
 * bDirEventType).  Bareos 20-25 key them with bytes, its development
 * branch and we with str: a plugin written against either looks names up
 * as it always did.  A dict subclass whose keys stay str (no duplicates,
 * len and iteration unchanged) and whose d[k], d.get(k) and k in d also
 * answer for the ASCII bytes of a name.  One type per module object (no
 * static type objects: each interpreter has its own).
 */
static PyObject *constdict_str_key(PyObject *key) { /* new reference */
  if (!PyBytes_Check(key)) return NULL;
  PyObject *s = PyUnicode_DecodeASCII(PyBytes_AS_STRING(key),
                                      PyBytes_GET_SIZE(key), "strict");
  if (s == NULL) PyErr_Clear(); /* not a name of ours */
  return s;
}

static PyObject *constdict_missing(PyObject *self, PyObject *key) {
  PyObject *s = constdict_str_key(key); /* new */
  if (s != NULL) {
    PyObject *v = PyDict_GetItemWithError(self, s); /* borrowed */
    Py_DECREF(s);
    if (v != NULL) return Py_NewRef(v);
    if (PyErr_Occurred()) return NULL;
  }
  PyErr_SetObject(PyExc_KeyError, key);
  return NULL;
}

static PyObject *constdict_get(PyObject *self, PyObject *const *args,
                               Py_ssize_t nargs) {
  if (nargs < 1 || nargs > 2) {
    PyErr_Format(PyExc_TypeError, "get expected 1 or 2 arguments, got %zd",
                 nargs);
    return NULL;
  }
  PyObject *v = PyDict_GetItemWithError(self, args[0]); /* borrowed */
  if (v == NULL && !PyErr_Occurred()) {
    PyObject *s = constdict_str_key(args[0]); /* new */
    if (s != NULL) {
      v = PyDict_GetItemWithError(self, s);
      Py_DECREF(s);
    }
  }
  if (v != NULL) return Py_NewRef(v);
  if (PyErr_Occurred()) return NULL;
  return Py_NewRef(nargs == 2 ? args[1] : Py_None);
}

static int constdict_contains(PyObject *self, PyObject *key) {
  int r = PyDict_Contains(self, key);
  if (r != 0) return r;
  PyObject *s = constdict_str_key(key); /* new */
  if (s == NULL) return 0;
  r = PyDict_Contains(self, s);
  Py_DECREF(s);
  return r;
}

/* A heap type's instances hold a reference to it: visit and drop it, the
 * rest is dict's. */
static int constdict_traverse(PyObject *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  return PyDict_Type.tp_traverse(self, visit, arg);
}

static void constdict_dealloc(PyObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyDict_Type.tp_dealloc(self);
  Py_DECREF(tp);
}

static PyMethodDef constdict_methods[] = {
    {"__missing__", constdict_missing, METH_O, NULL},
    {"get", (PyCFunction)(void (*)(void))constdict_get, METH_FASTCALL,
     "get(name, default=None): the value of name (str or bytes)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot constdict_slots[] = {
    {Py_tp_doc, "Constants by name; names may be given as str or bytes."},
    {Py_tp_methods, constdict_methods},
    {Py_sq_contains, constdict_contains},
    {Py_tp_traverse, constdict_traverse},
    {Py_tp_dealloc, constdict_dealloc},
    {0, NULL},
};

static PyType_Spec constdict_spec = {
    .name = "bareosdir._bareosdir.ConstantDict",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = constdict_slots,
};

static const char *msg_type_name(int type) {
  for (size_t i = 0; i < sizeof bd_consts / sizeof bd_consts[0]; i++) {
    if (strcmp(bd_consts[i].group, "bJobMessageType") == 0 &&
        bd_consts[i].value == type)
      return bd_consts[i].name;
  }
  if (type == M_AUDIT) return "M_AUDIT";
  if (type == M_CONFIG_ERROR) return "M_CONFIG_ERROR";
  return "an unknown type";
}

bd_modstate *bd_mod_state(PyObject *module) {
  return (bd_modstate *)PyModule_GetState(module);
}

/*
 * The instance a call belongs to.  In an isolated interpreter it is the one
 * instance that interpreter serves (any thread of it, including threads the
 * plugin started, finds it; none once the job is over).  In the main
 * interpreter the engine (or a test's bind) puts the instance in the
 * calling thread state's dict for the duration of the dispatch.
 */
bd_instance *bd_mod_current(PyObject *module, int raise) {
  bd_modstate *st = bd_mod_state(module);
  if (st->owner != NULL && !atomic_load(&st->owner->closing))
    return st->owner;
  bd_instance *inst = NULL;
  const char *why = NULL;
  /* interpreter=main: the calling plugin function's module globals name
   * the instance (its private modules carry the marker), which also works
   * on threads the plugin started.  The marker is a handle: one kept from
   * an ended job, or anything else put there, is refused. */
#if PY_VERSION_HEX >= 0x030D0000
  PyObject *globals = PyEval_GetFrameGlobals(); /* new */
#else
  PyObject *globals = Py_XNewRef(PyEval_GetGlobals());
#endif
  if (globals != NULL) {
    PyObject *mark = PyDict_GetItemWithError(globals, st->marker_key);
    if (mark == NULL) {
      PyErr_Clear();
    } else if (mark == Py_None) {
      /* The marker was cleared: this code belongs to an ended instance. */
      Py_DECREF(globals);
      goto none;
    } else {
      inst = bd_eng_marker_instance(mark, &why);
    }
    Py_DECREF(globals);
    if (inst != NULL) return inst;
    if (why != NULL) goto none;
  }
  /* The dispatch in progress on this thread (the engine, or a test's
   * bind()). */
  PyObject *d = PyThreadState_GetDict(); /* borrowed */
  if (d != NULL) {
    PyObject *mark = PyDict_GetItemWithError(d, st->tsd_key); /* borrowed */
    if (mark != NULL) {
      inst = bd_eng_marker_instance(mark, NULL);
      if (inst != NULL) return inst;
    } else {
      PyErr_Clear();
    }
  }
none:
  if (raise) {
    if (why != NULL)
      PyErr_Format(PyExc_RuntimeError,
                   "bareosdir: no Bareos Director context here: the "
                   "__bareosdir_instance__ marker of the calling module is "
                   "refused: %s",
                   why);
    else
      PyErr_SetString(PyExc_RuntimeError,
                      "bareosdir: no Bareos Director context here: this "
                      "call works only inside a plugin that the Director "
                      "(or bareosdir.testing) is running, on its job's "
                      "threads and while its job lasts");
  }
  return NULL;
}

/* The instance a marker names, if it is still running: a handle lookup,
 * so a token kept past its instance (buffered output) finds nothing. */
static bd_instance *marker_instance(PyObject *cap) {
  return cap != NULL ? bd_eng_marker_instance(cap, NULL) : NULL;
}

/*
 * interpreter=main, for output the host routes (print, sys.stderr,
 * logging, warnings): the caller of the host's own code is further up the
 * stack, so the nearest frame whose module globals carry a marker names
 * the instance (also on threads the plugin started), else the dispatch in
 * progress on this thread.  Returns the marker (borrowed) or NULL.
 */
static PyObject *current_marker(bd_modstate *st) {
  PyObject *found = NULL;
  PyFrameObject *f = PyEval_GetFrame(); /* borrowed */
  Py_XINCREF(f);
  while (f != NULL) {
    PyObject *g = PyFrame_GetGlobals(f); /* new */
    PyObject *cap = g ? PyDict_GetItemWithError(g, st->marker_key) : NULL;
    Py_XDECREF(g); /* the module keeps the marker alive while its code runs */
    if (cap != NULL) {
      found = cap == Py_None ? NULL : cap; /* None: an ended instance */
      Py_DECREF(f);
      f = NULL;
      if (found == NULL) return NULL;
      break;
    }
    PyErr_Clear();
    PyFrameObject *back = PyFrame_GetBack(f); /* new */
    Py_DECREF(f);
    f = back;
  }
  if (found == NULL) {
    PyObject *d = PyThreadState_GetDict(); /* borrowed */
    found = d ? PyDict_GetItemWithError(d, st->tsd_key) : NULL;
    PyErr_Clear();
  }
  return marker_instance(found) ? found : NULL;
}

/* _current(): a token for the instance that output written now belongs
 * to: its marker in main mode, None otherwise (an isolated interpreter's
 * output always belongs to the instance it serves, if any). */
static PyObject *mod__current(PyObject *m, PyObject *unused) {
  (void)unused;
  bd_modstate *st = bd_mod_state(m);
  if (st->owner != NULL) Py_RETURN_NONE;
  PyObject *marker = current_marker(st); /* borrowed */
  return Py_NewRef(marker ? marker : Py_None);
}

/* _output_pending(): a host stream holds text without a newline; the
 * engine flushes it when the dispatch or the job ends. */
static PyObject *mod__output_pending(PyObject *m, PyObject *unused) {
  (void)unused;
  bd_mod_state(m)->output_pending = 1;
  Py_RETURN_NONE;
}

void bd_mod_flush_output(bd_instance *inst) {
  if (inst->interp == NULL || inst->interp->api_module == NULL) return;
  bd_modstate *st = bd_mod_state(inst->interp->api_module);
  if (!st->output_pending) return;
  st->output_pending = 0;
  bd_exc exc;
  bd_exc_take(&exc);
  /* At the end of its job the instance is already closing (API calls are
   * refused): its own last text still goes to its job.  Only on this
   * thread: sending a message lets other threads run. */
  bd_instance *was = st->flushing;
  PyThreadState *was_ts = st->flushing_ts;
  st->flushing = inst;
  st->flushing_ts = PyThreadState_Get();
  PyObject *hostio = PyImport_ImportModule("bareosdir._hostio"); /* new */
  PyObject *r = hostio ? PyObject_CallMethod(
                             hostio, "flush_instance", "O",
                             inst->capsule ? inst->capsule : Py_None)
                       : NULL; /* new */
  st->flushing = was;
  st->flushing_ts = was_ts;
  /* Other instances of the main interpreter may still hold text. */
  if (r == NULL || PyObject_IsTrue(r) != 0) st->output_pending = 1;
  Py_XDECREF(r);
  Py_XDECREF(hostio);
  PyErr_Clear();
  bd_exc_restore(&exc);
}

/*
 * Trace and profile functions belong to a thread state, and ours are
 * cached per (OS thread, interpreter): one a plugin set would trace the
 * next plugin that gets the interpreter on that thread.  The reset for
 * reuse starts a new epoch (_new_epoch); the first time a thread enters
 * in a new epoch, its trace and profile functions are cleared.
 */
static PyObject *mod__new_epoch(PyObject *m, PyObject *unused) {
  (void)unused;
  bd_modstate *st = bd_mod_state(m);
  PyObject *epoch = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
  if (epoch == NULL) return NULL;
  Py_XSETREF(st->epoch, epoch);
  Py_RETURN_NONE;
}

void bd_mod_thread_entered(PyObject *api_module) {
  bd_modstate *st = bd_mod_state(api_module);
  if (st->epoch == NULL) return; /* never reset: nothing to clear */
  PyObject *d = PyThreadState_GetDict(); /* borrowed */
  if (d == NULL) return;
  PyObject *seen = PyDict_GetItemWithError(d, st->epoch_key); /* borrowed */
  if (seen == st->epoch) return;
  PyErr_Clear();
  PyEval_SetTrace(NULL, NULL);
  PyEval_SetProfile(NULL, NULL);
  if (PyDict_SetItem(d, st->epoch_key, st->epoch) < 0) PyErr_Clear();
}

/* ---- messages: our rules on types, newlines and formats ---- */

/* Copies text, escaping NUL bytes as "\0" and ending with exactly one
 * newline: the text's own trailing newlines, however many, become one.
 * Returns a malloc'd string or NULL. */
static char *message_text(const char *prefix, const char *text, size_t len) {
  while (len > 0 && text[len - 1] == '\n') len--;
  size_t plen = prefix ? strlen(prefix) : 0;
  size_t nul = 0;
  for (size_t i = 0; i < len; i++)
    if (text[i] == '\0') nul++;
  char *out = malloc(plen + len + nul + 2);
  if (out == NULL) return NULL;
  size_t o = 0;
  if (plen) {
    memcpy(out, prefix, plen);
    o = plen;
  }
  for (size_t i = 0; i < len; i++) {
    if (text[i] == '\0') {
      out[o++] = '\\';
      out[o++] = '0';
    } else {
      out[o++] = text[i];
    }
  }
  out[o++] = '\n';
  out[o] = '\0';
  return out;
}

void bd_mod_job_message(const CoreFunctions *core, PluginContext *ctx,
                        const char *file, int line, int type,
                        const char *text, size_t len) {
  char prefix[96];
  const char *pre = NULL;
  /* Types that end the Director (abort, exit) and numbers it does not know
   * never reach it: they become M_FATAL, naming what was asked for. */
  if (type < 1 || type > M_VOLMGMT || type == M_ABORT ||
      type == M_ERROR_TERM) {
    bd_fmt(prefix, sizeof prefix, "[message type %s (%d) sent as M_FATAL] ",
           msg_type_name(type), type);
    pre = prefix;
    type = M_FATAL;
  }
  char *buf = message_text(pre, text, len);
  if (buf == NULL) return;
  core->JobMessage(ctx, file, line, type, 0, "%s", buf);
  free(buf);
}

void bd_mod_debug_message(const CoreFunctions *core, PluginContext *ctx,
                          const char *file, int line, int level,
                          const char *text, size_t len) {
  char *buf = message_text(NULL, text, len);
  if (buf == NULL) return;
  core->DebugMessage(ctx, file, line, level, "%s", buf);
  free(buf);
}

/* ---- argument helpers ---- */

static int arg_int(PyObject *o, const char *fn, const char *what, long *out) {
  if (!PyLong_Check(o)) {
    PyErr_Format(PyExc_TypeError, "%s(): %s must be int, not %.100s", fn,
                 what, Py_TYPE(o)->tp_name);
    return -1;
  }
  int overflow = 0;
  long v = PyLong_AsLongAndOverflow(o, &overflow);
  if (v == -1 && PyErr_Occurred()) return -1;
  if (overflow || v < INT32_MIN || v > INT32_MAX) {
    PyErr_Format(PyExc_OverflowError, "%s(): %s %R is out of range", fn,
                 what, o);
    return -1;
  }
  *out = v;
  return 0;
}

/*
 * Argument checks come in Bareos's order: first the argument formats (as
 * PyArg_ParseTuple would: counts, ints where an int belongs), then the
 * context (RuntimeError outside a job), then the contents.  So
 * DebugMessage("text") is a TypeError anywhere, DebugMessage(100, "text")
 * a RuntimeError outside a job.
 *
 * Old plugins (Bareos 19 and older) pass their context object first:
 * arg_start() skips it by its type (a format matter); ctx_matches() then
 * refuses one that belongs to another instance (a contents matter).
 * Returns the number of leading arguments to skip, or -1.
 */
static int arg_start(bd_modstate *st, PyObject *const *args, Py_ssize_t nargs,
                     Py_ssize_t nplain, const char *fn) {
  if (nargs == 0) return 0;
  PyObject *first = args[0];
  if (st->legacy_ctx_type != NULL &&
      PyObject_TypeCheck(first, (PyTypeObject *)st->legacy_ctx_type))
    return 1;
  if (nargs > nplain) {
    PyErr_Format(PyExc_TypeError,
                 "%s(): the first of %zd arguments must be the plugin "
                 "context that Bareos passed to the plugin (old API), not "
                 "%.100s",
                 fn, nargs, Py_TYPE(first)->tp_name);
    return -1;
  }
  return 0;
}

static int ctx_matches(bd_instance *inst, PyObject *const *args, int skip,
                       const char *fn) {
  if (skip && inst->legacy_ctx != NULL && args[0] != inst->legacy_ctx) {
    PyErr_Format(PyExc_ValueError,
                 "%s(): the context passed belongs to another plugin "
                 "instance", fn);
    return -1;
  }
  return 0;
}

/* Where in the plugin the call came from, for the message's file:line. */
static void caller_location(PyObject **file_obj, const char **file,
                            int *line) {
  *file_obj = NULL;
  *file = "python";
  *line = 0;
  PyFrameObject *f = PyEval_GetFrame(); /* borrowed */
  if (f == NULL) return;
  PyCodeObject *co = PyFrame_GetCode(f); /* new reference */
  *line = PyFrame_GetLineNumber(f);
  if (co != NULL) {
    PyObject *fn = PyObject_GetAttrString((PyObject *)co, "co_filename");
    Py_DECREF(co);
    if (fn != NULL && PyUnicode_Check(fn)) {
      const char *s = PyUnicode_AsUTF8(fn);
      if (s != NULL) {
        *file_obj = fn;
        *file = s;
        return;
      }
    }
    Py_XDECREF(fn);
    PyErr_Clear();
  }
}

/* ---- the functions ---- */

static const signed char var_kind[BD_DIR_VAR_MAX + 1] = {
    /* 0 unknown, 's' string, 'i' int, 'u' int read as uint64, 'U' uint64,
     * 'x' always an error */
    [bDirVarJob] = 's',          [bDirVarLevel] = 'i',
    [bDirVarType] = 'i',         [bDirVarJobId] = 'i',
    [bDirVarClient] = 's',       [bDirVarNumVols] = 'i',
    [bDirVarPool] = 's',         [bDirVarStorage] = 's',
    [bDirVarWriteStorage] = 's', [bDirVarReadStorage] = 's',
    [bDirVarCatalog] = 's',      [bDirVarMediaType] = 's',
    [bDirVarJobName] = 's',      [bDirVarJobStatus] = 'i',
    [bDirVarPriority] = 'i',     [bDirVarVolumeName] = 's',
    [bDirVarCatalogRes] = 'x',   [bDirVarJobErrors] = 'u',
    [bDirVarJobFiles] = 'u',     [bDirVarSDJobFiles] = 'u',
    [bDirVarSDErrors] = 'u',     [bDirVarFDJobStatus] = 'i',
    [bDirVarSDJobStatus] = 'i',  [bDirVarPluginDir] = 's',
    [bDirVarLastRate] = 'u',     [bDirVarJobBytes] = 'U',
    [bDirVarReadBytes] = 'U',
};

static PyObject *mod_GetValue(PyObject *m, PyObject *const *args,
                              Py_ssize_t nargs) {
  int skip = arg_start(bd_mod_state(m), args, nargs, 1, "GetValue");
  if (skip < 0) return NULL;
  if (nargs - skip != 1) {
    PyErr_Format(PyExc_TypeError, "GetValue() takes 1 argument (%zd given)",
                 nargs - skip);
    return NULL;
  }
  long var;
  if (arg_int(args[skip], "GetValue", "the variable", &var) < 0) return NULL;
  bd_instance *inst = bd_mod_current(m, 1);
  if (inst == NULL || ctx_matches(inst, args, skip, "GetValue") < 0)
    return NULL;
  int kind = (var >= 1 && var <= BD_DIR_VAR_MAX) ? var_kind[var] : 0;
  if (kind == 0) {
    char text[96];
    size_t n = bd_fmt(text, sizeof text,
                      "GetValue: unknown variable %ld, answering None", var);
    bd_mod_debug_message(inst->core, inst->ctx, __FILE__, __LINE__, 100, text,
                         n);
    Py_RETURN_NONE;
  }
  if (kind == 'x') Py_RETURN_NONE;
  /* The Director's answer is an in-memory lookup: done with the GIL held,
   * so the instance cannot be freed underneath the call. */
  if (kind == 's') {
    char *s = NULL;
    if (inst->core->getBareosValue(inst->ctx, (int)var, &s) != bRC_OK ||
        s == NULL)
      Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
  }
  if (kind == 'i') {
    int v = 0;
    if (inst->core->getBareosValue(inst->ctx, (int)var, &v) != bRC_OK)
      Py_RETURN_NONE;
    return PyLong_FromLong(v);
  }
  uint64_t v = 0; /* 'u': the Director writes an int into it */
  if (inst->core->getBareosValue(inst->ctx, (int)var, &v) != bRC_OK)
    Py_RETURN_NONE;
  return PyLong_FromUnsignedLongLong(v);
}

static PyObject *mod_SetValue(PyObject *m, PyObject *const *args,
                              Py_ssize_t nargs) {
  int skip = arg_start(bd_mod_state(m), args, nargs, 2, "SetValue");
  if (skip < 0) return NULL;
  if (nargs - skip != 2) {
    PyErr_Format(PyExc_TypeError,
                 "SetValue() takes 2 arguments (%zd given)", nargs - skip);
    return NULL;
  }
  long var;
  if (arg_int(args[skip], "SetValue", "the variable", &var) < 0) return NULL;
  bd_instance *inst = bd_mod_current(m, 1);
  if (inst == NULL || ctx_matches(inst, args, skip, "SetValue") < 0)
    return NULL;
  PyObject *value = args[skip + 1];
  bRC rc = bRC_Error;
  switch (var) {
  case bwDirVarJobReport:
    rc = bRC_OK;
    break;
  case bwDirVarVolumeName: {
    if (!PyUnicode_Check(value)) {
      PyErr_Format(PyExc_TypeError,
                   "SetValue(bwDirVarVolumeName): value must be str, not "
                   "%.100s", Py_TYPE(value)->tp_name);
      return NULL;
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(value, &len);
    if (s == NULL) return NULL;
    if ((size_t)len != strlen(s)) {
      PyErr_SetString(PyExc_ValueError,
                      "SetValue(bwDirVarVolumeName): the volume name "
                      "contains a NUL character");
      return NULL;
    }
    rc = inst->core->setBareosValue(inst->ctx, (int)var, (void *)s);
    break;
  }
  case bwDirVarPriority:
  case bwDirVarJobLevel: {
    long v;
    if (arg_int(value, "SetValue", "the value", &v) < 0) return NULL;
    if (v < 0) {
      rc = bRC_Error;
      break;
    }
    int iv = (int)v;
    rc = inst->core->setBareosValue(inst->ctx, (int)var, &iv);
    break;
  }
  default:
    rc = bRC_Error;
  }
  return PyLong_FromLong(rc);
}

/* JobMessage and DebugMessage may block inside the Director (mail, catalog
 * writes): the GIL is dropped around the callback, and the reference taken
 * before keeps the instance alive however long the Director takes, even
 * when its job is freed meanwhile (freePlugin waits only a bounded time
 * for such calls). */
static PyObject *send_message(PyObject *m, PyObject *const *args,
                              Py_ssize_t nargs, int is_job) {
  const char *fn = is_job ? "JobMessage" : "DebugMessage";
  int skip = arg_start(bd_mod_state(m), args, nargs, 2, fn);
  if (skip < 0) return NULL;
  Py_ssize_t n = nargs - skip;
  if (n < 1 || n > 2) {
    PyErr_Format(PyExc_TypeError,
                 "%s() takes a %s and an optional text (%zd arguments given)",
                 fn, is_job ? "message type" : "level", n);
    return NULL;
  }
  long kind;
  if (arg_int(args[skip], fn, is_job ? "the message type" : "the level",
              &kind) < 0)
    return NULL;
  const char *text = "";
  Py_ssize_t len = 0;
  if (n == 2 && args[skip + 1] != Py_None) {
    if (!PyUnicode_Check(args[skip + 1])) {
      PyErr_Format(PyExc_TypeError, "%s(): text must be str or None, not "
                                    "%.100s",
                   fn, Py_TYPE(args[skip + 1])->tp_name);
      return NULL;
    }
    text = PyUnicode_AsUTF8AndSize(args[skip + 1], &len);
    if (text == NULL) return NULL;
  }
  bd_instance *inst = bd_mod_current(m, 1);
  if (inst == NULL || ctx_matches(inst, args, skip, fn) < 0) return NULL;
  PyObject *file_obj;
  const char *file;
  int line;
  caller_location(&file_obj, &file, &line);
  bd_eng_ref(inst);
  Py_BEGIN_ALLOW_THREADS
  if (is_job)
    bd_mod_job_message(inst->core, inst->ctx, file, line, (int)kind, text,
                       (size_t)len);
  else
    bd_mod_debug_message(inst->core, inst->ctx, file, line, (int)kind, text,
                         (size_t)len);
  Py_END_ALLOW_THREADS
  bd_eng_unref(inst);
  Py_XDECREF(file_obj);
  Py_RETURN_NONE;
}

static PyObject *mod_JobMessage(PyObject *m, PyObject *const *args,
                                Py_ssize_t nargs) {
  return send_message(m, args, nargs, 1);
}

static PyObject *mod_DebugMessage(PyObject *m, PyObject *const *args,
                                  Py_ssize_t nargs) {
  return send_message(m, args, nargs, 0);
}

static PyObject *change_events(PyObject *m, PyObject *const *args,
                               Py_ssize_t nargs, int reg) {
  const char *fn = reg ? "RegisterEvents" : "UnRegisterEvents";
  int skip = arg_start(bd_mod_state(m), args, nargs, 1, fn);
  if (skip < 0) return NULL;
  if (nargs - skip != 1) {
    PyErr_Format(PyExc_TypeError, "%s() takes 1 argument (%zd given)", fn,
                 nargs - skip);
    return NULL;
  }
  bd_instance *inst = bd_mod_current(m, 1);
  if (inst == NULL || ctx_matches(inst, args, skip, fn) < 0) return NULL;
  PyObject *seq = args[skip];
  if (PyUnicode_Check(seq) || PyBytes_Check(seq) || !PySequence_Check(seq)) {
    PyErr_Format(PyExc_TypeError,
                 "%s(): expected a sequence of event numbers, not %.100s", fn,
                 Py_TYPE(seq)->tp_name);
    return NULL;
  }
  PyObject *fast = PySequence_Fast(seq, "expected a sequence"); /* new */
  if (fast == NULL) return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  int any = 0;
  bRC rc = bRC_OK;
  for (Py_ssize_t i = 0; i < n; i++) {
    long ev;
    if (arg_int(PySequence_Fast_GET_ITEM(fast, i), fn, "each event", &ev) <
        0) {
      Py_DECREF(fast);
      return NULL;
    }
    if (ev < bDirEventJobStart || ev > bDirEventGetScratch) continue;
    any = 1;
    bRC r = reg ? inst->core->registerBareosEvents(inst->ctx, 1, (int)ev)
                : inst->core->unregisterBareosEvents(inst->ctx, 1, (int)ev);
    if (r != bRC_OK) rc = r;
  }
  Py_DECREF(fast);
  return PyLong_FromLong(any ? rc : bRC_Error);
}

static PyObject *mod_RegisterEvents(PyObject *m, PyObject *const *args,
                                    Py_ssize_t nargs) {
  return change_events(m, args, nargs, 1);
}

static PyObject *mod_UnRegisterEvents(PyObject *m, PyObject *const *args,
                                      Py_ssize_t nargs) {
  return change_events(m, args, nargs, 0);
}

static PyObject *mod_GetInstanceCount(PyObject *m, PyObject *const *args,
                                      Py_ssize_t nargs) {
  int skip = arg_start(bd_mod_state(m), args, nargs, 0, "GetInstanceCount");
  if (skip < 0) return NULL;
  if (nargs - skip != 0) {
    PyErr_SetString(PyExc_TypeError, "GetInstanceCount() takes no arguments");
    return NULL;
  }
  bd_instance *inst = bd_mod_current(m, 1);
  if (inst == NULL || ctx_matches(inst, args, skip, "GetInstanceCount") < 0)
    return NULL;
  int count = 0;
  if (inst->core->getInstanceCount(inst->ctx, &count) != bRC_OK)
    Py_RETURN_NONE;
  return PyLong_FromLong(count);
}

/* Host-side helpers used by bareosdir._hostio and the shim. */

/* _message(is_job, level_or_type, text, token=None): like JobMessage or
 * DebugMessage for output the host routes.  The instance is the one
 * `token` (from _current) names, else the interpreter's owner, else the
 * one the calling code belongs to (current_marker); with none, the
 * Director's log (NULL context); with no Director bound, nothing (answers
 * False). */
static PyObject *mod__message(PyObject *m, PyObject *args) {
  int is_job, kind;
  const char *text;
  Py_ssize_t len;
  PyObject *token = Py_None;
  if (!PyArg_ParseTuple(args, "pis#|O", &is_job, &kind, &text, &len, &token))
    return NULL;
  bd_modstate *st = bd_mod_state(m);
  bd_instance *inst = NULL;
  if (st->flushing != NULL && st->flushing_ts == PyThreadState_Get() &&
      (token == Py_None || token == st->flushing->capsule))
    inst = st->flushing;
  if (inst == NULL && token != Py_None) inst = marker_instance(token);
  if (inst == NULL && st->owner != NULL && !atomic_load(&st->owner->closing))
    inst = st->owner;
  if (inst == NULL && token == Py_None)
    inst = marker_instance(current_marker(st));
  const CoreFunctions *core = inst ? inst->core : NULL;
  PluginContext *ctx = inst ? inst->ctx : NULL;
  if (core == NULL) core = bd_eng_core();
  if (core == NULL) Py_RETURN_FALSE;
  if (inst) bd_eng_ref(inst);
  Py_BEGIN_ALLOW_THREADS
  if (is_job)
    bd_mod_job_message(core, ctx, "python", 0, kind, text, (size_t)len);
  else
    bd_mod_debug_message(core, ctx, "python", 0, kind, text, (size_t)len);
  Py_END_ALLOW_THREADS
  if (inst) bd_eng_unref(inst);
  Py_RETURN_TRUE;
}

/*
 * _restore_dict(d, saved) -> bool: makes d hold exactly saved's items (the
 * same objects), for the reset of a reused interpreter; answers whether
 * anything had to change.  In C because it runs on about 500 entries per
 * job and almost always finds nothing to do.
 */
static PyObject *mod__restore_dict(PyObject *m, PyObject *args) {
  (void)m;
  PyObject *d, *saved, *extra = NULL, *k, *v;
  Py_ssize_t pos = 0;
  if (!PyArg_ParseTuple(args, "O!O!", &PyDict_Type, &d, &PyDict_Type, &saved))
    return NULL;
  int same = PyDict_GET_SIZE(d) == PyDict_GET_SIZE(saved);
  /* Nearly always nothing changed, and then d lists the very items of
   * saved (a copy of it) in the same order: one walk over both, comparing
   * by identity, with no lookup per key.  Anything else (even the same
   * items in another order) takes the lookups below. */
  if (same) {
    Py_ssize_t dpos = 0;
    PyObject *dk, *dv;
    int in_order = 1;
    while (in_order && PyDict_Next(saved, &pos, &k, &v))
      in_order = PyDict_Next(d, &dpos, &dk, &dv) && dk == k && dv == v;
    if (in_order) Py_RETURN_FALSE;
    pos = 0;
  }
  while (same && PyDict_Next(saved, &pos, &k, &v)) {
    PyObject *cur = PyDict_GetItemWithError(d, k); /* borrowed */
    if (cur != v) same = 0;
  }
  if (PyErr_Occurred()) return NULL;
  if (same) Py_RETURN_FALSE;
  extra = PyList_New(0); /* new */
  if (extra == NULL) return NULL;
  pos = 0;
  while (PyDict_Next(d, &pos, &k, &v)) {
    int has = PyDict_Contains(saved, k);
    if (has < 0 || (!has && PyList_Append(extra, k) < 0)) goto error;
  }
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(extra); i++)
    if (PyDict_DelItem(d, PyList_GET_ITEM(extra, i)) < 0) goto error;
  pos = 0;
  while (PyDict_Next(saved, &pos, &k, &v)) {
    PyObject *cur = PyDict_GetItemWithError(d, k); /* borrowed */
    if (cur == v) continue;
    if (PyErr_Occurred() || PyDict_SetItem(d, k, v) < 0) goto error;
  }
  Py_DECREF(extra);
  Py_RETURN_TRUE;
error:
  Py_DECREF(extra);
  return NULL;
}

static PyObject *mod__in_main_interpreter(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  return PyBool_FromLong(PyThreadState_GetInterpreter(PyThreadState_Get()) ==
                         PyInterpreterState_Main());
}

/* _is_secret_key(key): the host's rule (options.c), for the base class. */
static PyObject *mod__is_secret_key(PyObject *m, PyObject *key) {
  (void)m;
  if (!PyUnicode_Check(key)) {
    PyErr_Format(PyExc_TypeError, "key must be str, not %.100s",
                 Py_TYPE(key)->tp_name);
    return NULL;
  }
  Py_ssize_t len;
  const char *s = PyUnicode_AsUTF8AndSize(key, &len);
  if (s == NULL) return NULL;
  return PyBool_FromLong(bd_options_key_is_secret(s, (size_t)len));
}

static PyObject *mod__bind(PyObject *m, PyObject *capsule) {
  return bd_eng_bind(m, capsule);
}

static PyObject *mod__stats(PyObject *m, PyObject *unused) {
  (void)m;
  (void)unused;
  return bd_eng_stats();
}

static PyMethodDef bd_methods[] = {
    {"GetValue", (PyCFunction)(void (*)(void))mod_GetValue, METH_FASTCALL,
     "GetValue(var) -> int | str | None: a value of the current job."},
    {"SetValue", (PyCFunction)(void (*)(void))mod_SetValue, METH_FASTCALL,
     "SetValue(var, value) -> int: set a job value; answers a bRC."},
    {"DebugMessage", (PyCFunction)(void (*)(void))mod_DebugMessage,
     METH_FASTCALL,
     "DebugMessage(level, text=None): a Director debug message."},
    {"JobMessage", (PyCFunction)(void (*)(void))mod_JobMessage, METH_FASTCALL,
     "JobMessage(type, text=None): a message in the job log."},
    {"RegisterEvents", (PyCFunction)(void (*)(void))mod_RegisterEvents,
     METH_FASTCALL, "RegisterEvents(events) -> int: ask for these events."},
    {"UnRegisterEvents", (PyCFunction)(void (*)(void))mod_UnRegisterEvents,
     METH_FASTCALL, "UnRegisterEvents(events) -> int: stop these events."},
    {"GetInstanceCount", (PyCFunction)(void (*)(void))mod_GetInstanceCount,
     METH_FASTCALL, "GetInstanceCount() -> int | None"},
    {"_message", mod__message, METH_VARARGS, NULL},
    {"_current", mod__current, METH_NOARGS, NULL},
    {"_output_pending", mod__output_pending, METH_NOARGS, NULL},
    {"_new_epoch", mod__new_epoch, METH_NOARGS, NULL},
    {"_restore_dict", mod__restore_dict, METH_VARARGS, NULL},
    {"_in_main_interpreter", mod__in_main_interpreter, METH_NOARGS, NULL},
    {"_bind", mod__bind, METH_O, NULL},
    {"_is_secret_key", mod__is_secret_key, METH_O,
     "_is_secret_key(key) -> bool: whether option values of this key are "
     "shown as ****."},
    {"_stats", mod__stats, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static int bd_exec(PyObject *m) {
  bd_modstate *st = bd_mod_state(m);
  st->tsd_key = PyUnicode_InternFromString("bareosdir.instance");
  st->marker_key = PyUnicode_InternFromString("__bareosdir_instance__");
  st->str_load = PyUnicode_InternFromString("load_bareos_plugin");
  st->str_parse = PyUnicode_InternFromString("parse_plugin_definition");
  st->str_handle = PyUnicode_InternFromString("handle_plugin_event");
  st->epoch_key = PyUnicode_InternFromString("bareosdir.epoch");
  if (st->epoch_key == NULL) return -1;
  if (!st->tsd_key || !st->marker_key || !st->str_load || !st->str_parse || !st->str_handle)
    return -1;
  st->constdict_type =
      PyType_FromModuleAndSpec(m, &constdict_spec, (PyObject *)&PyDict_Type);
  if (st->constdict_type == NULL) return -1;
  for (size_t g = 0; g < sizeof bd_groups / sizeof bd_groups[0]; g++) {
    PyObject *d = PyObject_CallNoArgs(st->constdict_type); /* new */
    if (d == NULL) return -1;
    for (size_t i = 0; i < sizeof bd_consts / sizeof bd_consts[0]; i++) {
      if (strcmp(bd_consts[i].group, bd_groups[g]) != 0) continue;
      PyObject *v = PyLong_FromLong(bd_consts[i].value);
      if (v == NULL || PyDict_SetItemString(d, bd_consts[i].name, v) < 0 ||
          PyModule_AddObjectRef(m, bd_consts[i].name, v) < 0) {
        Py_XDECREF(v);
        Py_DECREF(d);
        return -1;
      }
      Py_DECREF(v);
    }
    int rc = PyModule_AddObjectRef(m, bd_groups[g], d);
    Py_DECREF(d);
    if (rc < 0) return -1;
  }
  if (PyModule_AddStringConstant(m, "__version__", BD_VERSION) < 0) return -1;
  {
    const char *const *w = bd_options_secret_words();
    Py_ssize_t n = 0;
    while (w[n] != NULL) n++;
    PyObject *t = PyTuple_New(n); /* new */
    for (Py_ssize_t i = 0; t != NULL && i < n; i++) {
      PyObject *s = PyUnicode_FromString(w[i]); /* new */
      if (s == NULL) Py_CLEAR(t);
      else PyTuple_SET_ITEM(t, i, s); /* steals */
    }
    int rc = t != NULL ? PyModule_AddObjectRef(m, "_SECRET_WORDS", t) : -1;
    Py_XDECREF(t);
    if (rc < 0) return -1;
  }
  if (bd_test_add_types(m, st) < 0) return -1;
  return 0;
}

static int bd_traverse(PyObject *m, visitproc visit, void *arg) {
  bd_modstate *st = bd_mod_state(m);
  Py_VISIT(st->format_exception);
  Py_VISIT(st->mock_director_type);
  Py_VISIT(st->mock_job_type);
  Py_VISIT(st->legacy_ctx_type);
  Py_VISIT(st->constdict_type);
  Py_VISIT(st->epoch);
  return 0;
}

static int bd_clear(PyObject *m) {
  bd_modstate *st = bd_mod_state(m);
  Py_CLEAR(st->tsd_key);
  Py_CLEAR(st->marker_key);
  Py_CLEAR(st->str_load);
  Py_CLEAR(st->str_parse);
  Py_CLEAR(st->str_handle);
  Py_CLEAR(st->format_exception);
  Py_CLEAR(st->mock_director_type);
  Py_CLEAR(st->mock_job_type);
  Py_CLEAR(st->legacy_ctx_type);
  Py_CLEAR(st->constdict_type);
  Py_CLEAR(st->epoch_key);
  Py_CLEAR(st->epoch);
  return 0;
}

static void bd_free(void *m) { bd_clear((PyObject *)m); }

static PyModuleDef_Slot bd_slots[] = {
    {Py_mod_exec, bd_exec},
#ifdef Py_mod_multiple_interpreters
    /* No static Python objects, all state per module; the engine's C state
     * relies on the one GIL that 3.11 interpreters share. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef bd_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bareosdir._bareosdir",
    .m_doc = "The Bareos Director's plugin API, for Python plugins.",
    .m_size = sizeof(bd_modstate),
    .m_methods = bd_methods,
    .m_slots = bd_slots,
    .m_traverse = bd_traverse,
    .m_clear = bd_clear,
    .m_free = bd_free,
};

PyMODINIT_FUNC PyInit__bareosdir(void) { return PyModuleDef_Init(&bd_module); }
