/*
 * The pending Python exception, set aside and put back or described, the
 * same way on every Python this project builds for.  Header-only, for the
 * extension (csrc/) and the shim alike; include after Python.h.
 */
#ifndef BAREOSDIR_PYEXC_H
#define BAREOSDIR_PYEXC_H

#include "textfmt.h"

/* A pending exception set aside and put back: PyErr_GetRaisedException /
 * PyErr_SetRaisedException where Python has them (3.12+; PyErr_Fetch and
 * PyErr_Restore are deprecated there), PyErr_Fetch/PyErr_Restore before.
 * `value` is the exception (3.11: possibly not normalized, or NULL). */
typedef struct bd_exc {
  PyObject *type, *value, *tb;
} bd_exc;

static inline void bd_exc_take(bd_exc *e) {
#if PY_VERSION_HEX >= 0x030C0000
  e->type = e->tb = NULL;
  e->value = PyErr_GetRaisedException(); /* new */
#else
  PyErr_Fetch(&e->type, &e->value, &e->tb);
#endif
}

/* Steals what bd_exc_take took. */
static inline void bd_exc_restore(bd_exc *e) {
#if PY_VERSION_HEX >= 0x030C0000
  PyErr_SetRaisedException(e->value);
#else
  PyErr_Restore(e->type, e->value, e->tb);
#endif
  e->type = e->value = e->tb = NULL;
}

static inline void bd_exc_drop(bd_exc *e) {
  Py_CLEAR(e->type);
  Py_CLEAR(e->value);
  Py_CLEAR(e->tb);
}

/* "Type: str(exception)" of the pending exception into buf (bd_fmt: cut
 * to size); clears it. */
static inline void bd_exc_format(char *buf, size_t size) {
  bd_exc e;
  bd_exc_take(&e);
  PyObject *type = e.type ? e.type
                          : e.value ? (PyObject *)Py_TYPE(e.value) : NULL;
  PyObject *s = e.value ? PyObject_Str(e.value) : NULL; /* new */
  const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
  bd_fmt(buf, size, "%s: %s",
         type ? ((PyTypeObject *)type)->tp_name : "error",
         msg ? msg : "(no details)");
  Py_XDECREF(s);
  bd_exc_drop(&e);
  PyErr_Clear();
}

#endif
