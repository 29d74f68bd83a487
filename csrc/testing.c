/*
 * The Python face of the director model: the types behind
 * bareosdir.testing (MockDirector, MockJob).  A mock director binds the
 * engine in this process and runs jobs through the very PluginFunctions
 * table the Director would call; bareosdir/testing.py wraps these types in
 * the API plugin authors use.  Every call into the model drops the GIL, as
 * the Director's threads do not hold it.
 */
#include "bareosdir.h"
#include "director_model.h"

#include <string.h>

typedef struct {
  PyObject_HEAD
  dm_director *dir;
  const bd_plugin_binding *binding;
} MockDirector;

typedef struct {
  PyObject_HEAD
  MockDirector *director; /* strong */
  dm_job *job;
  bd_instance *bare;      /* for bind(): direct API calls from a test */
  PyObject *bare_capsule;
  PyObject *module;       /* strong: for the thread-dict key */
} MockJob;

/* ---- MockDirector ---- */

static PyObject *md_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"name", "plugin_dir", "plugins", NULL};
  const char *name = "bareos-dir", *plugin_dir = "";
  PyObject *plugins = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|ssO", kwlist, &name,
                                   &plugin_dir, &plugins))
    return NULL;
  PyObject *module = PyType_GetModule(type); /* borrowed */
  if (module == NULL) return NULL;
  MockDirector *self = (MockDirector *)type->tp_alloc(type, 0);
  if (self == NULL) return NULL;
  self->dir = dm_director_new(name, plugin_dir);
  if (self->dir == NULL) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  PluginApiDefinition api;
  dm_api_definition(&api);
  bd_director_binding b = {sizeof b, api.version, dm_core_functions(), NULL,
                           NULL};
  char err[256];
  self->binding = bd_eng_bind_direct(module, &b, err, sizeof err);
  if (self->binding == NULL) {
    Py_DECREF(self);
    PyErr_SetString(PyExc_RuntimeError, err);
    return NULL;
  }
  PyObject *names = plugins ? PySequence_Fast(plugins, "plugins must be a "
                                                       "sequence of names")
                            : Py_BuildValue("(ss)", "python", "python3");
  if (names == NULL) {
    Py_DECREF(self);
    return NULL;
  }
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(names); i++) {
    const char *n = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(names, i));
    /* Each short name has its file, as in a Plugin Directory: reports of
     * a "python3" context begin "python3-dir:". */
    char file_name[256];
    if (n != NULL && bd_fmt_whole(file_name, sizeof file_name, "%s-dir", n))
      file_name[0] = '\0'; /* too long: the default name */
    if (n == NULL ||
        dm_director_add_plugin(self->dir, n, self->binding->info,
                               bd_eng_functions_for(file_name), NULL, err,
                               sizeof err) < 0) {
      if (n != NULL) PyErr_SetString(PyExc_RuntimeError, err);
      Py_DECREF(names);
      Py_DECREF(self);
      return NULL;
    }
  }
  Py_DECREF(names);
  return (PyObject *)self;
}

static void md_close_impl(MockDirector *self) {
  if (self->binding != NULL) {
    const bd_plugin_binding *b = self->binding;
    self->binding = NULL;
    Py_BEGIN_ALLOW_THREADS
    b->unbind();
    Py_END_ALLOW_THREADS
  }
}

static void md_dealloc(MockDirector *self) {
  PyTypeObject *tp = Py_TYPE(self);
  md_close_impl(self);
  if (self->dir) dm_director_free(self->dir);
  tp->tp_free(self);
  Py_DECREF(tp);
}

static PyObject *md_close(MockDirector *self, PyObject *unused) {
  (void)unused;
  md_close_impl(self);
  Py_RETURN_NONE;
}

static PyObject *message_tuple(const dm_message *m) {
  return Py_BuildValue("(iisIzsi)", (int)m->kind, m->type, m->text,
                       (unsigned)m->instance, m->plugin,
                       m->file ? m->file : "", m->line);
}

static PyObject *md_messages(MockDirector *self, PyObject *unused) {
  (void)unused;
  PyObject *list = PyList_New(0);
  size_t n = dm_director_message_count(self->dir);
  for (size_t i = 0; list && i < n; i++) {
    dm_message m;
    if (dm_director_message(self->dir, i, &m) != 0) continue;
    PyObject *t = message_tuple(&m);
    if (t == NULL || PyList_Append(list, t) < 0) Py_CLEAR(list);
    Py_XDECREF(t);
  }
  return list;
}

static PyObject *md_job(MockDirector *self, PyObject *args);

/* set_job_message_delay(seconds): each JobMessage callback with a job
 * context takes this long (see dm_director_set_job_message_delay). */
static PyObject *md_set_job_message_delay(MockDirector *self, PyObject *arg) {
  double s = PyFloat_AsDouble(arg);
  if (s == -1.0 && PyErr_Occurred()) return NULL;
  if (!(s >= 0.0 && s <= 3600.0)) {
    PyErr_SetString(PyExc_ValueError,
                    "the delay must be from 0 to 3600 seconds");
    return NULL;
  }
  dm_director_set_job_message_delay(self->dir, (unsigned)(s * 1000.0 + 0.5));
  Py_RETURN_NONE;
}

static PyMethodDef md_methods[] = {
    {"close", (PyCFunction)md_close, METH_NOARGS, "End the binding."},
    {"messages", (PyCFunction)md_messages, METH_NOARGS,
     "Messages sent with no job: (kind, type, text, instance, plugin, file, "
     "line)."},
    {"job", (PyCFunction)md_job, METH_VARARGS, "job(name, jobid)"},
    {"set_job_message_delay", (PyCFunction)md_set_job_message_delay, METH_O,
     "set_job_message_delay(seconds): make JobMessage callbacks slow."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot md_slots[] = {
    {Py_tp_new, md_new},
    {Py_tp_dealloc, md_dealloc},
    {Py_tp_methods, md_methods},
    {Py_tp_doc, "The director model bound to this process's plugin engine."},
    {0, NULL},
};

static PyType_Spec md_spec = {"bareosdir._bareosdir.MockDirector",
                              sizeof(MockDirector), 0,
                              Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
                              md_slots};

/* ---- MockJob ---- */

static PyObject *md_job(MockDirector *self, PyObject *args) {
  const char *name;
  unsigned int jobid;
  if (!PyArg_ParseTuple(args, "sI", &name, &jobid)) return NULL;
  if (self->binding == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "the mock director is closed");
    return NULL;
  }
  PyObject *module = PyType_GetModule(Py_TYPE(self)); /* borrowed */
  if (module == NULL) return NULL;
  bd_modstate *st = bd_mod_state(module);
  PyTypeObject *jt = (PyTypeObject *)st->mock_job_type;
  MockJob *job = (MockJob *)jt->tp_alloc(jt, 0);
  if (job == NULL) return NULL;
  job->job = dm_job_new(self->dir, name, jobid);
  if (job->job == NULL) {
    Py_DECREF(job);
    return PyErr_NoMemory();
  }
  job->director = (MockDirector *)Py_NewRef(self);
  job->module = Py_NewRef(module);
  return (PyObject *)job;
}

static void mj_dealloc(MockJob *self) {
  PyTypeObject *tp = Py_TYPE(self);
  if (self->job) {
    dm_job *j = self->job;
    Py_BEGIN_ALLOW_THREADS
    dm_job_free_plugins(j);
    dm_job_free(j);
    Py_END_ALLOW_THREADS
  }
  Py_XDECREF(self->bare_capsule);
  if (self->bare) bd_eng_free_bare_instance(self->bare);
  Py_XDECREF(self->director);
  Py_XDECREF(self->module);
  tp->tp_free(self);
  Py_DECREF(tp);
}

#define MJ_STEP(fname, call)                                                 \
  static PyObject *fname(MockJob *self, PyObject *unused) {                  \
    (void)unused;                                                            \
    int rc;                                                                  \
    dm_job *j = self->job;                                                   \
    Py_BEGIN_ALLOW_THREADS rc = call(j);                                     \
    Py_END_ALLOW_THREADS return PyLong_FromLong(rc);                         \
  }

MJ_STEP(mj_new_plugins, dm_job_new_plugins)
MJ_STEP(mj_free_plugins, dm_job_free_plugins)

static PyObject *mj_cancel(MockJob *self, PyObject *unused) {
  (void)unused;
  dm_job_cancel(self->job);
  Py_RETURN_NONE;
}

static PyObject *mj_plugin_options(MockJob *self, PyObject *arg) {
  const char *s = PyUnicode_AsUTF8(arg);
  if (s == NULL) return NULL;
  char *copy = strdup(s);
  if (copy == NULL) return PyErr_NoMemory();
  int rc;
  dm_job *j = self->job;
  Py_BEGIN_ALLOW_THREADS
  rc = dm_job_plugin_options(j, copy);
  Py_END_ALLOW_THREADS
  free(copy);
  return PyLong_FromLong(rc);
}

static PyObject *mj_event(MockJob *self, PyObject *arg) {
  long ev = PyLong_AsLong(arg);
  if (ev == -1 && PyErr_Occurred()) return NULL;
  int rc;
  dm_job *j = self->job;
  Py_BEGIN_ALLOW_THREADS
  rc = dm_job_event(j, (int)ev, NULL);
  Py_END_ALLOW_THREADS
  return PyLong_FromLong(rc);
}

static PyObject *mj_set_int(MockJob *self, PyObject *args) {
  int var;
  long long v;
  if (!PyArg_ParseTuple(args, "iL", &var, &v)) return NULL;
  if (dm_job_set_int(self->job, var, v) != 0) {
    PyErr_Format(PyExc_ValueError, "variable %d is not an integer variable",
                 var);
    return NULL;
  }
  Py_RETURN_NONE;
}

static PyObject *mj_set_str(MockJob *self, PyObject *args) {
  int var;
  const char *v;
  if (!PyArg_ParseTuple(args, "iz", &var, &v)) return NULL;
  if (dm_job_set_str(self->job, var, v) != 0) {
    PyErr_Format(PyExc_ValueError, "variable %d is not a string variable",
                 var);
    return NULL;
  }
  Py_RETURN_NONE;
}

static PyObject *mj_get(MockJob *self, PyObject *arg) {
  long var = PyLong_AsLong(arg);
  if (var == -1 && PyErr_Occurred()) return NULL;
  int64_t v;
  if (dm_job_get_int(self->job, (int)var, &v) == 0)
    return PyLong_FromLongLong(v);
  /* Whole, however long (a fixed buffer answered None past 4095 bytes). */
  char *s = dm_job_dup_str(self->job, (int)var);
  if (s == NULL) Py_RETURN_NONE;
  PyObject *r = PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s),
                                     "surrogateescape");
  free(s);
  return r;
}

static PyObject *mj_set_count(MockJob *self, PyObject *arg) {
  long var = PyLong_AsLong(arg);
  if (var == -1 && PyErr_Occurred()) return NULL;
  return PyLong_FromLong(dm_job_set_count(self->job, (int)var));
}

static PyObject *mj_messages(MockJob *self, PyObject *unused) {
  (void)unused;
  PyObject *list = PyList_New(0);
  size_t n = dm_job_message_count(self->job);
  for (size_t i = 0; list && i < n; i++) {
    dm_message m;
    if (dm_job_message(self->job, i, &m) != 0) continue;
    PyObject *t = message_tuple(&m);
    if (t == NULL || PyList_Append(list, t) < 0) Py_CLEAR(list);
    Py_XDECREF(t);
  }
  return list;
}

static PyObject *mj_calls(MockJob *self, PyObject *unused) {
  (void)unused;
  PyObject *list = PyList_New(0);
  size_t n = dm_job_call_count(self->job);
  for (size_t i = 0; list && i < n; i++) {
    dm_call c;
    if (dm_job_call(self->job, i, &c) != 0) continue;
    PyObject *t = Py_BuildValue("(zIii)", c.plugin, (unsigned)c.instance,
                                c.event, c.rc);
    if (t == NULL || PyList_Append(list, t) < 0) Py_CLEAR(list);
    Py_XDECREF(t);
  }
  return list;
}

static PyObject *mj_contexts(MockJob *self, PyObject *unused) {
  (void)unused;
  PyObject *list = PyList_New(0);
  size_t n = dm_job_context_count(self->job);
  for (size_t i = 0; list && i < n; i++) {
    PluginContext *ctx = dm_job_context(self->job, i);
    if (ctx == NULL) continue;
    PyObject *t = Py_BuildValue("(zIK)", dm_context_plugin_name(ctx),
                                (unsigned)ctx->instance,
                                (unsigned long long)dm_context_events(ctx));
    if (t == NULL || PyList_Append(list, t) < 0) Py_CLEAR(list);
    Py_XDECREF(t);
  }
  return list;
}

static PyObject *mj_counts(MockJob *self, PyObject *unused) {
  (void)unused;
  return Py_BuildValue("(iii)", dm_job_fatal_count(self->job),
                       dm_job_error_count(self->job),
                       dm_job_warning_count(self->job));
}

/* bind(): makes plain calls such as bareosdir.GetValue() on this thread
 * answer for this job, through a bare context that no plugin owns. */
static PyObject *mj_bind(MockJob *self, PyObject *unused) {
  (void)unused;
  if (self->bare == NULL) {
    PluginContext *ctx = dm_job_bare_context(self->job, -1, 0);
    if (ctx == NULL) return PyErr_NoMemory();
    self->bare = bd_eng_bare_instance(dm_core_functions(), ctx);
    if (self->bare == NULL) return PyErr_NoMemory();
    self->bare_capsule = bd_eng_marker(self->bare); /* new */
    if (self->bare_capsule == NULL) return NULL;
  }
  PyObject *d = PyThreadState_GetDict(); /* borrowed */
  if (d == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "no thread state dict");
    return NULL;
  }
  bd_modstate *st = bd_mod_state(self->module);
  PyObject *prev = PyDict_GetItemWithError(d, st->tsd_key); /* borrowed */
  if (prev == NULL && PyErr_Occurred()) return NULL;
  if (PyDict_SetItem(d, st->tsd_key, self->bare_capsule) < 0) return NULL;
  return prev ? Py_NewRef(prev) : Py_NewRef(Py_None);
}

static PyObject *mj_unbind(MockJob *self, PyObject *prev) {
  PyObject *d = PyThreadState_GetDict(); /* borrowed */
  if (d == NULL) Py_RETURN_NONE;
  bd_modstate *st = bd_mod_state(self->module);
  if (prev != Py_None) {
    if (PyDict_SetItem(d, st->tsd_key, prev) < 0) return NULL;
  } else if (PyDict_DelItem(d, st->tsd_key) < 0) {
    PyErr_Clear();
  }
  Py_RETURN_NONE;
}

static PyObject *mj_jobid(MockJob *self, void *closure) {
  (void)closure;
  return PyLong_FromUnsignedLong(dm_job_id(self->job));
}

static PyMethodDef mj_methods[] = {
    {"new_plugins", (PyCFunction)mj_new_plugins, METH_NOARGS, NULL},
    {"free_plugins", (PyCFunction)mj_free_plugins, METH_NOARGS, NULL},
    {"plugin_options", (PyCFunction)mj_plugin_options, METH_O, NULL},
    {"event", (PyCFunction)mj_event, METH_O, NULL},
    {"cancel", (PyCFunction)mj_cancel, METH_NOARGS, NULL},
    {"set_int", (PyCFunction)mj_set_int, METH_VARARGS, NULL},
    {"set_str", (PyCFunction)mj_set_str, METH_VARARGS, NULL},
    {"get", (PyCFunction)mj_get, METH_O, NULL},
    {"set_count", (PyCFunction)mj_set_count, METH_O, NULL},
    {"messages", (PyCFunction)mj_messages, METH_NOARGS, NULL},
    {"calls", (PyCFunction)mj_calls, METH_NOARGS, NULL},
    {"contexts", (PyCFunction)mj_contexts, METH_NOARGS, NULL},
    {"counts", (PyCFunction)mj_counts, METH_NOARGS, NULL},
    {"bind", (PyCFunction)mj_bind, METH_NOARGS, NULL},
    {"unbind", (PyCFunction)mj_unbind, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef mj_getset[] = {
    {"jobid", (getter)mj_jobid, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot mj_slots[] = {
    {Py_tp_dealloc, mj_dealloc},
    {Py_tp_methods, mj_methods},
    {Py_tp_getset, mj_getset},
    {Py_tp_doc, "A job of the mock director."},
    {0, NULL},
};

static PyType_Spec mj_spec = {"bareosdir._bareosdir.MockJob", sizeof(MockJob),
                              0,
                              Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
                                  Py_TPFLAGS_DISALLOW_INSTANTIATION,
                              mj_slots};

int bd_test_add_types(PyObject *module, bd_modstate *st) {
  st->mock_director_type = PyType_FromModuleAndSpec(module, &md_spec, NULL);
  if (st->mock_director_type == NULL) return -1;
  st->mock_job_type = PyType_FromModuleAndSpec(module, &mj_spec, NULL);
  if (st->mock_job_type == NULL) return -1;
  if (PyModule_AddObjectRef(module, "MockDirector", st->mock_director_type) <
      0)
    return -1;
  return PyModule_AddObjectRef(module, "MockJob", st->mock_job_type);
}
