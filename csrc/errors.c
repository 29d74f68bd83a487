/*
 * Reporting what goes wrong in a plugin as Director messages: a Python
 * exception in an entry point, a return value that is not a bRC, or a host
 * failure (module not found, bad options).  Each becomes one job message
 * and one debug message naming the module, the instance and what was being
 * done, with the formatted traceback where there is one.  on_error decides
 * the message type and the answer: fatal -> M_FATAL and bRC_Error (the job
 * fails, as in Bareos); warning -> M_WARNING and bRC_OK.
 */
#include "bareosdir.h"

#include <stdarg.h>
#include <string.h>

#define BD_ERROR_DEBUG_LEVEL 10

static bRC answer(bd_instance *inst) {
  return inst->on_error == BD_ON_ERROR_WARNING ? bRC_OK : bRC_Error;
}

static bRC report_text(bd_instance *inst, const char *text, size_t len) {
  int warn = inst->on_error == BD_ON_ERROR_WARNING;
  /* Callers come with and without the GIL; this touches no Python.  The
   * GIL stays as it is: errors are rare, and a thread state cannot be
   * told apart reliably across interpreters without private API. */
  bd_mod_job_message(inst->core, inst->ctx, __FILE__, __LINE__,
                     warn ? M_WARNING : M_FATAL, text, len);
  bd_mod_debug_message(inst->core, inst->ctx, __FILE__, __LINE__,
                       BD_ERROR_DEBUG_LEVEL, text, len);
  return answer(inst);
}

static const char *module_name(bd_instance *inst) {
  return inst->module_name ? inst->module_name : "(no module)";
}

/* Every report is "FILE: MODULE (instance N): " and a body, FILE being the
 * copy of the shim the Director loaded (python-dir, python3-dir), built in
 * one bounded piece (BD_TEXT_MAX; longer is cut, marked "..."). */
BD_FMT_PRINTF(2, 3)
static bRC report(bd_instance *inst, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t len;
  char *text = bd_vafmt(0, &len, fmt, ap);
  va_end(ap);
  if (text == NULL) return answer(inst);
  bRC rc = report_text(inst, text, len);
  free(text);
  return rc;
}

bRC bd_err_host(bd_instance *inst, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *body = bd_vafmt(0, NULL, fmt, ap);
  va_end(ap);
  if (body == NULL) return answer(inst);
  bRC rc = report(inst, "%s: %s (instance %u): %s", inst->file_name,
                  module_name(inst), inst->ctx ? inst->ctx->instance : 0,
                  body);
  free(body);
  return rc;
}

/* The formatted traceback of (type, value, tb), or str(value); new ref. */
static PyObject *format_exc(bd_instance *inst, PyObject *type,
                            PyObject *value, PyObject *tb) {
  PyObject *fmt = NULL; /* borrowed from module state */
  if (inst->interp && inst->interp->api_module) {
    bd_modstate *st = bd_mod_state(inst->interp->api_module);
    if (st->format_exception == NULL) {
      PyObject *m = PyImport_ImportModule("traceback"); /* new */
      if (m) {
        st->format_exception = PyObject_GetAttrString(m, "format_exception");
        Py_DECREF(m);
      }
      PyErr_Clear();
    }
    fmt = st->format_exception;
  }
  if (fmt != NULL) {
    PyObject *lines = PyObject_CallFunctionObjArgs(
        fmt, type, value ? value : Py_None, tb ? tb : Py_None, NULL);
    if (lines != NULL) {
      PyObject *empty = PyUnicode_FromString("");
      PyObject *joined = empty ? PyUnicode_Join(empty, lines) : NULL;
      Py_XDECREF(empty);
      Py_DECREF(lines);
      if (joined) return joined;
    }
    PyErr_Clear();
  }
  PyObject *s = value ? PyObject_Str(value) : NULL;
  if (s == NULL) {
    PyErr_Clear();
    s = PyUnicode_FromString("(exception without details)");
  }
  return s;
}

/* The pending exception, normalised, with its traceback attached; NULL
 * when none is set.  New references; the error indicator is cleared. */
static PyObject *fetch_exception(PyObject **type, PyObject **tb) {
#if PY_VERSION_HEX >= 0x030C0000
  PyObject *value = PyErr_GetRaisedException(); /* new */
  if (value == NULL) return NULL;
  *type = Py_NewRef((PyObject *)Py_TYPE(value));
  *tb = PyException_GetTraceback(value); /* new */
  return value;
#else
  PyObject *value;
  PyErr_Fetch(type, &value, tb);
  if (*type == NULL) return NULL;
  PyErr_NormalizeException(type, &value, tb);
  if (*tb != NULL && value != NULL) PyException_SetTraceback(value, *tb);
  if (value == NULL) value = Py_NewRef(Py_None);
  return value;
#endif
}

bRC bd_err_report(bd_instance *inst, const char *what) {
  PyObject *type = NULL, *tb = NULL;
  PyObject *value = fetch_exception(&type, &tb); /* new */
  if (value == NULL) return bd_err_host(inst, "%s failed", what);
  PyObject *text = format_exc(inst, type, value, tb); /* new */
  /* Text with a lone surrogate (from the exception's message, a file name)
   * has no UTF-8 form: escape what cannot be encoded rather than lose the
   * report's type, file and line. */
  PyObject *bytes = text ? PyUnicode_AsEncodedString(text, "utf-8",
                                                     "backslashreplace")
                         : NULL; /* new */
  const char *t = bytes ? PyBytes_AsString(bytes) : NULL;
  if (t == NULL) {
    PyErr_Clear();
    t = "(traceback unavailable)";
  }
  bRC rc = report(inst, "%s: %s (instance %u): %s raised an exception:\n%s",
                  inst->file_name, module_name(inst),
                  inst->ctx ? inst->ctx->instance : 0,
                  what, t);
  Py_XDECREF(bytes);
  Py_XDECREF(text);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  PyErr_Clear();
  return rc;
}

bRC bd_err_result_fast(PyObject *result) {
  if (!PyLong_Check(result)) return (bRC)-1;
  int overflow = 0;
  long v = PyLong_AsLongAndOverflow(result, &overflow);
  if (v == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    return (bRC)-1;
  }
  if (overflow || v < bRC_OK || v > bRC_Cancel || v == bRC_Term)
    return (bRC)-1;
  return (bRC)v;
}

bRC bd_err_result(bd_instance *inst, const char *what, PyObject *result) {
  bRC ok = bd_err_result_fast(result);
  if (ok != (bRC)-1) return ok;
  if (PyLong_Check(result)) {
    int overflow = 0;
    long v = PyLong_AsLongAndOverflow(result, &overflow);
    if (v == -1 && PyErr_Occurred()) PyErr_Clear();
    if (!overflow && v == bRC_Term)
      return bd_err_host(inst,
                         "%s returned bRC_Term (4), which would make the "
                         "Director unload the plugin in the middle of the "
                         "job; answered as an error instead",
                         what);
  }
  PyObject *r = PyObject_Repr(result); /* new */
  const char *rs = r ? PyUnicode_AsUTF8(r) : NULL;
  if (rs == NULL) PyErr_Clear();
  bRC rc = bd_err_host(inst,
                       "%s returned %.200s (%s), not a bRC value (an int "
                       "from 0 to 8)",
                       what, rs ? rs : "?", Py_TYPE(result)->tp_name);
  Py_XDECREF(r);
  return rc;
}
