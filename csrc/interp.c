/*
 * Interpreters and thread states: entering the right interpreter from
 * whatever Director thread calls, creating sub-interpreters for isolated
 * instances, and ending them safely.
 *
 * The Director calls one plugin instance from two or three of its threads,
 * and many instances at once.  PyGILState_* only knows the main
 * interpreter, so every (OS thread, interpreter) pair gets a thread state
 * of its own, created on first use and cached.  The cache is process-wide
 * on purpose: there is one Python runtime per process, shared by both shim
 * copies and every mock director, and its thread states must be deleted
 * before an interpreter ends (Py_EndInterpreter aborts the process while
 * another thread state of it remains).  One mutex guards it.
 *
 * The first thread state a thread gets is always one of the main
 * interpreter, which we never delete while the thread lives: CPython
 * remembers a thread's first thread state for PyGILState_Ensure, and that
 * must not dangle when a sub-interpreter's thread state is deleted later
 * from another thread.
 */
#include "bareosdir.h"

#include <string.h>
#include <time.h>

typedef struct bd_thread bd_thread;

typedef struct bd_tsref {
  PyThreadState *ts;
  bd_interp *ip;
  bd_thread *thr;            /* NULL once the OS thread has exited */
  struct bd_tsref *ip_next;  /* in ip->tstates */
  struct bd_tsref *thr_next; /* in thr->refs */
} bd_tsref;

struct bd_thread {
  bd_tsref *refs;
};

static struct {
  pthread_mutex_t lock;
  pthread_key_t key;
  int ready;
  bd_interp main;
  bd_interp *aside;          /* set aside: plugin threads still running */
  int aside_count;
  bd_interp *idle;           /* reset, ready for the next instance */
  int idle_count;
  long created, reused;
  bd_ip_config cfg;
} g_rt = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

/* Thread exit: its thread states can no longer be current anywhere, so
 * whoever ends their interpreter may delete them. */
static void thread_gone(void *p) {
  bd_thread *thr = p;
  pthread_mutex_lock(&g_rt.lock);
  for (bd_tsref *r = thr->refs; r != NULL; r = r->thr_next) {
    r->thr = NULL;
    r->ip->dead++;
  }
  pthread_mutex_unlock(&g_rt.lock);
  free(thr);
}

static void make_key(void) { pthread_key_create(&g_rt.key, thread_gone); }

static bd_thread *this_thread(void) {
  bd_thread *thr = pthread_getspecific(g_rt.key);
  if (thr == NULL) {
    thr = calloc(1, sizeof *thr);
    if (thr == NULL) return NULL;
    pthread_setspecific(g_rt.key, thr);
  }
  return thr;
}

/* Under g_rt.lock. */
static bd_tsref *find_ref(bd_thread *thr, bd_interp *ip) {
  for (bd_tsref *r = thr->refs; r != NULL; r = r->thr_next)
    if (r->ip == ip) return r;
  return NULL;
}

/* Under g_rt.lock. */
static bd_tsref *add_ref(bd_thread *thr, bd_interp *ip, PyThreadState *ts) {
  bd_tsref *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->ts = ts;
  r->ip = ip;
  r->thr = thr;
  r->thr_next = thr->refs;
  thr->refs = r;
  r->ip_next = ip->tstates;
  ip->tstates = r;
  return r;
}

/* Under g_rt.lock: unlinks r from both lists and frees it. */
static void drop_ref(bd_tsref *r) {
  if (r->thr == NULL) r->ip->dead--;
  for (bd_tsref **pp = &r->ip->tstates; *pp; pp = &(*pp)->ip_next)
    if (*pp == r) {
      *pp = r->ip_next;
      break;
    }
  if (r->thr != NULL)
    for (bd_tsref **pp = &r->thr->refs; *pp; pp = &(*pp)->thr_next)
      if (*pp == r) {
        *pp = r->thr_next;
        break;
      }
  free(r);
}

/* This thread's thread state for ip, created when missing (GIL not held). */
static PyThreadState *thread_state_for(bd_interp *ip) {
  bd_thread *thr = this_thread();
  if (thr == NULL) return NULL;
  pthread_mutex_lock(&g_rt.lock);
  bd_tsref *r = find_ref(thr, ip);
  PyThreadState *ts = r ? r->ts : NULL;
  pthread_mutex_unlock(&g_rt.lock);
  if (ts != NULL) return ts;
  if (!ip->is_main && thread_state_for(&g_rt.main) == NULL) return NULL;
  /* PyThreadState_New does not need the GIL. */
  ts = PyThreadState_New(ip->interp);
  if (ts == NULL) return NULL;
  pthread_mutex_lock(&g_rt.lock);
  r = add_ref(thr, ip, ts);
  pthread_mutex_unlock(&g_rt.lock);
  if (r == NULL) {
    PyEval_RestoreThread(ts);
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
    return NULL;
  }
  return ts;
}

int bd_ip_init(const bd_ip_config *cfg) {
  pthread_once(&g_key_once, make_key);
  pthread_mutex_lock(&g_rt.lock);
  if (!g_rt.ready) {
    g_rt.main.interp = PyInterpreterState_Main();
    g_rt.main.is_main = 1;
    free(g_rt.cfg.package_parent);
    free(g_rt.cfg.plugins_dir);
    free(g_rt.cfg.extra_path);
    free(g_rt.cfg.main_path);
    g_rt.cfg.main_path = cfg->main_path ? strdup(cfg->main_path) : NULL;
    g_rt.cfg.package_parent = strdup(cfg->package_parent);
    g_rt.cfg.plugins_dir = strdup(cfg->plugins_dir);
    g_rt.cfg.extra_path = cfg->extra_path ? strdup(cfg->extra_path) : NULL;
    g_rt.ready = 1;
  }
  pthread_mutex_unlock(&g_rt.lock);
  return 0;
}

bd_interp *bd_ip_main(void) { return &g_rt.main; }

/* GIL held in ip with cur current: deletes the cached thread states of
 * Director threads that have exited (a Director makes new job threads all
 * the time; without this each would leave one behind per interpreter). */
static void drop_dead_tstates(bd_interp *ip, PyThreadState *cur) {
  pthread_mutex_lock(&g_rt.lock);
  bd_tsref *r = ip->tstates;
  while (r != NULL && ip->dead > 0) {
    bd_tsref *next = r->ip_next;
    if (r->thr == NULL && r->ts != cur) {
      PyThreadState_Clear(r->ts);
      PyThreadState_Delete(r->ts);
      drop_ref(r);
    }
    r = next;
  }
  pthread_mutex_unlock(&g_rt.lock);
}

PyThreadState *bd_ip_enter(bd_interp *ip) {
  /* Isolated instances rarely enter the main interpreter, where every
   * Director thread has its first thread state: sweep it from here. */
  if (!ip->is_main &&
      __atomic_load_n(&g_rt.main.dead, __ATOMIC_RELAXED) > 0) {
    PyThreadState *main_ts = bd_ip_enter(&g_rt.main);
    if (main_ts != NULL) bd_ip_leave(main_ts);
  }
  PyThreadState *ts = thread_state_for(ip);
  if (ts == NULL) return NULL;
  PyEval_RestoreThread(ts);
  /* An unlocked peek: a stale answer only delays the sweep to the next
   * entry. */
  if (__atomic_load_n(&ip->dead, __ATOMIC_RELAXED) > 0)
    drop_dead_tstates(ip, ts);
  return ts;
}

void bd_ip_leave(PyThreadState *ts) {
  (void)ts;
  PyEval_SaveThread();
}

void bd_ip_add_site_dirs(const char *dirs) {
  if (dirs == NULL || dirs[0] == '\0') return;
  PyObject *site = PyImport_ImportModule("site"); /* new */
  char *copy = site ? strdup(dirs) : NULL, *save = NULL;
  for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d != NULL;
       d = strtok_r(NULL, ":", &save)) {
    PyObject *x = PyObject_CallMethod(site, "addsitedir", "s", d); /* new */
    Py_XDECREF(x);
    PyErr_Clear();
  }
  free(copy);
  Py_XDECREF(site);
  PyErr_Clear();
}

/* In the new interpreter, GIL held: make `bareosdir` importable, import the
 * API module and route stdout/stderr/logging/warnings to the Director. */
static int setup_interp(bd_interp *ip) {
  int rc = -1;
  PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
  PyObject *p1 = NULL, *p2 = NULL, *hostio = NULL, *r = NULL;
  PyObject *isolation = NULL;
  if (sys_path == NULL) goto done;
  p1 = PyUnicode_DecodeFSDefault(g_rt.cfg.plugins_dir); /* new */
  p2 = PyUnicode_DecodeFSDefault(g_rt.cfg.package_parent); /* new */
  if (p1 == NULL || p2 == NULL) goto done;
  /* bareosdir/plugins first, then the package's parent: in an installed
   * plugin directory that parent is the Director's plugin directory, where
   * Bareos's own framework files may lie; ours must win. */
  if (PyList_Insert(sys_path, 0, p2) < 0 || PyList_Insert(sys_path, 0, p1) < 0)
    goto done;
  /* Then what the binding interpreter had that this one lacks (its
   * site-packages, when site ran only there). */
  if (g_rt.cfg.main_path != NULL) {
    char *copy = strdup(g_rt.cfg.main_path), *save = NULL;
    for (char *d = copy ? strtok_r(copy, "\n", &save) : NULL; d != NULL;
         d = strtok_r(NULL, "\n", &save)) {
      PyObject *p = PyUnicode_DecodeFSDefault(d); /* new */
      int has = p ? PySequence_Contains(sys_path, p) : -1;
      if (has == 0 && PyList_Append(sys_path, p) < 0) has = -1;
      Py_XDECREF(p);
      if (has < 0) break;
    }
    free(copy);
    if (PyErr_Occurred()) goto done;
  }
  bd_ip_add_site_dirs(g_rt.cfg.extra_path);
  ip->api_module = PyImport_ImportModule("bareosdir._bareosdir"); /* new */
  if (ip->api_module == NULL) goto done;
  hostio = PyImport_ImportModule("bareosdir._hostio"); /* new */
  if (hostio == NULL) goto done;
  r = PyObject_CallMethod(hostio, "install", NULL); /* new */
  if (r == NULL) goto done;
  Py_DECREF(r);
  isolation = PyImport_ImportModule("bareosdir._isolation"); /* new */
  if (isolation == NULL) goto done;
  r = PyObject_CallMethod(isolation, "install", NULL); /* new */
  if (r == NULL) goto done;
  ip->baseline = PyObject_CallMethod(isolation, "Baseline", NULL); /* new */
  if (ip->baseline == NULL) goto done;
  rc = 0;
done:
  Py_XDECREF(p1);
  Py_XDECREF(p2);
  Py_XDECREF(hostio);
  Py_XDECREF(isolation);
  Py_XDECREF(r);
  return rc;
}

/* A short description of the pending exception, for err; clears it. */
static void exc_text(char *err, size_t errlen, const char *what) {
#if PY_VERSION_HEX >= 0x030C0000
  PyObject *value = PyErr_GetRaisedException(); /* new */
  PyObject *type = value ? Py_NewRef((PyObject *)Py_TYPE(value)) : NULL;
  PyObject *tb = NULL;
#else
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
#endif
  PyObject *s = value ? PyObject_Str(value) : NULL;
  const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
  bd_fmt(err, errlen, "%s: %s: %s", what,
         type ? ((PyTypeObject *)type)->tp_name : "error",
         msg ? msg : "(no details)");
  PyErr_Clear();
  Py_XDECREF(s);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
}

static bd_interp *create_interp(char *err, size_t errlen);

bd_interp *bd_ip_acquire(char *err, size_t errlen) {
  pthread_mutex_lock(&g_rt.lock);
  bd_interp *ip = g_rt.idle;
  if (ip != NULL) {
    g_rt.idle = ip->next;
    g_rt.idle_count--;
    g_rt.reused++;
    ip->next = NULL;
  }
  pthread_mutex_unlock(&g_rt.lock);
  if (ip != NULL) return ip;
  return create_interp(err, errlen);
}

/* A new sub-interpreter, set up and released (GIL not held). */
static bd_interp *create_interp(char *err, size_t errlen) {
  PyThreadState *main_ts = bd_ip_enter(&g_rt.main);
  if (main_ts == NULL) {
    bd_fmt(err, errlen, "cannot create a thread state");
    return NULL;
  }
  bd_interp *ip = calloc(1, sizeof *ip);
  PyThreadState *sub = ip ? Py_NewInterpreter() : NULL; /* now current */
  pthread_mutex_lock(&g_rt.lock);
  g_rt.created++;
  pthread_mutex_unlock(&g_rt.lock);
  if (sub == NULL) {
    bd_fmt(err, errlen, "cannot create a sub-interpreter");
    free(ip);
    PyThreadState_Swap(main_ts);
    bd_ip_leave(main_ts);
    return NULL;
  }
  ip->interp = PyThreadState_GetInterpreter(sub);
  pthread_mutex_lock(&g_rt.lock);
  bd_tsref *ref = add_ref(this_thread(), ip, sub);
  pthread_mutex_unlock(&g_rt.lock);
  if (ref == NULL || setup_interp(ip) < 0) {
    if (PyErr_Occurred())
      exc_text(err, errlen, "setting up the sub-interpreter failed");
    else
      bd_fmt(err, errlen, "setting up the sub-interpreter failed");
    Py_CLEAR(ip->api_module);
    Py_CLEAR(ip->baseline);
    pthread_mutex_lock(&g_rt.lock);
    while (ip->tstates) drop_ref(ip->tstates);
    pthread_mutex_unlock(&g_rt.lock);
    Py_EndInterpreter(sub);
    PyThreadState_Swap(main_ts);
    bd_ip_leave(main_ts);
    free(ip);
    return NULL;
  }
  PyEval_SaveThread();
  return ip;
}

static int thread_count(PyInterpreterState *interp) {
  int n = 0;
  for (PyThreadState *t = PyInterpreterState_ThreadHead(interp); t != NULL;
       t = PyThreadState_Next(t))
    n++;
  return n;
}

/* GIL held with `cur` (a thread state of ip) current: deletes every other
 * cached thread state of ip.  None of them is current: calls into one
 * interpreter's instance never overlap, and threads that exited left theirs
 * behind. */
static void drop_other_tstates(bd_interp *ip, PyThreadState *cur) {
  pthread_mutex_lock(&g_rt.lock);
  bd_tsref *r = ip->tstates;
  while (r != NULL) {
    bd_tsref *next = r->ip_next;
    if (r->ts != cur) {
      PyThreadState_Clear(r->ts);
      PyThreadState_Delete(r->ts);
      drop_ref(r);
    }
    r = next;
  }
  pthread_mutex_unlock(&g_rt.lock);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double thread_wait_s(void) {
  const char *s = getenv("BAREOSDIR_THREAD_WAIT");
  double v = s ? atof(s) : 1.0;
  return v >= 0 ? v : 1.0;
}

/*
 * Ends ip if only our thread state is left in it, waiting up to `wait`
 * seconds for plugin threads to finish.  GIL not held.  Returns 0 when
 * ended, 1 when threads are still running (ip untouched otherwise).
 */
/* GIL held in ip with ts current: polls busy() for up to `wait` seconds,
 * dropping the GIL between polls so the threads in question can finish.
 * Returns 0 once busy() answers 0, 1 when the time is up. */
static int wait_until_idle(bd_interp *ip, PyThreadState *ts, double wait,
                           int (*busy)(bd_interp *, PyThreadState *)) {
  double deadline = now_s() + wait;
  while (busy(ip, ts)) {
    if (now_s() >= deadline) return 1;
    Py_BEGIN_ALLOW_THREADS
    struct timespec d = {0, 5 * 1000 * 1000};
    nanosleep(&d, NULL);
    Py_END_ALLOW_THREADS
  }
  return 0;
}

/* Any thread state of ip besides ts, after deleting our cached ones. */
static int others_left(bd_interp *ip, PyThreadState *ts) {
  drop_other_tstates(ip, ts);
  return thread_count(ip->interp) > 1;
}

static int foreign_threads(bd_interp *ip, PyThreadState *cur);

static int foreign_left(bd_interp *ip, PyThreadState *ts) {
  return foreign_threads(ip, ts) > 0;
}

static int try_end(bd_interp *ip, double wait) {
  PyThreadState *ts = bd_ip_enter(ip);
  if (ts == NULL) return 1;
  if (wait_until_idle(ip, ts, wait, others_left) != 0) {
    bd_ip_leave(ts);
    return 1;
  }
  Py_CLEAR(ip->api_module);
  Py_CLEAR(ip->baseline);
  pthread_mutex_lock(&g_rt.lock);
  while (ip->tstates) drop_ref(ip->tstates);
  pthread_mutex_unlock(&g_rt.lock);
  Py_EndInterpreter(ts); /* GIL still held, no thread state current */
  PyThreadState *main_ts = thread_state_for(&g_rt.main);
  PyThreadState_Swap(main_ts);
  PyEval_SaveThread();
  free(ip);
  return 0;
}

static void set_aside(bd_interp *ip);

/* Ends the set-aside interpreters whose plugin threads have finished. */
static void sweep_aside(void) {
  for (;;) {
    pthread_mutex_lock(&g_rt.lock);
    bd_interp **pp = &g_rt.aside;
    bd_interp *ip = NULL;
    for (; *pp; pp = &(*pp)->next) {
      /* Reading the thread list without the GIL would race; only take
       * candidates out here and check under the GIL in try_end. */
      ip = *pp;
      *pp = ip->next;
      g_rt.aside_count--;
      break;
    }
    pthread_mutex_unlock(&g_rt.lock);
    if (ip == NULL) return;
    if (try_end(ip, 0) != 0) {
      set_aside(ip);
      return; /* still busy: try the others next time */
    }
  }
}

static int pool_max(void) {
  const char *s = getenv("BAREOSDIR_POOL_MAX");
  int v = s ? atoi(s) : 64;
  return v >= 0 ? v : 64;
}

/* GIL held in ip: thread states of ip that are not ours (threads the
 * plugin started and left running), after deleting those we cached for
 * Director threads that have exited. */
static int foreign_threads(bd_interp *ip, PyThreadState *cur) {
  drop_dead_tstates(ip, cur);
  int ours = 0;
  pthread_mutex_lock(&g_rt.lock);
  for (bd_tsref *r = ip->tstates; r != NULL; r = r->ip_next) ours++;
  pthread_mutex_unlock(&g_rt.lock);
  return thread_count(ip->interp) - ours;
}

static void set_aside(bd_interp *ip) {
  pthread_mutex_lock(&g_rt.lock);
  ip->next = g_rt.aside;
  g_rt.aside = ip;
  g_rt.aside_count++;
  pthread_mutex_unlock(&g_rt.lock);
}

/*
 * Reset for the next instance: the plugin's modules dropped, sys.path and
 * logging restored (_isolation.Baseline.reset).  Returns 0 when ip went to
 * the idle pool, 1 when it had to be set aside, -1 when it should be ended.
 */
static int reset_for_reuse(bd_interp *ip) {
  PyThreadState *ts = bd_ip_enter(ip);
  if (ts == NULL) return -1;
  if (wait_until_idle(ip, ts, thread_wait_s(), foreign_left) != 0) {
    bd_ip_leave(ts);
    return 1;
  }
  PyObject *r = PyObject_CallMethod(ip->baseline, "reset", NULL); /* new */
  int ok = r != NULL;
  Py_XDECREF(r);
  PyErr_Clear();
  bd_ip_leave(ts);
  if (!ok) return -1;
  pthread_mutex_lock(&g_rt.lock);
  ip->next = g_rt.idle;
  g_rt.idle = ip;
  g_rt.idle_count++;
  pthread_mutex_unlock(&g_rt.lock);
  return 0;
}

int bd_ip_release(bd_interp *ip) {
  pthread_mutex_lock(&g_rt.lock);
  int keep = g_rt.idle_count < pool_max();
  pthread_mutex_unlock(&g_rt.lock);
  if (keep) {
    int rc = reset_for_reuse(ip);
    if (rc == 0) return 0;
    if (rc == 1) {
      /* A plugin left threads running: ending the interpreter now would
       * abort the process, waiting longer would stall the Director. */
      set_aside(ip);
      return 1;
    }
  }
  if (try_end(ip, thread_wait_s()) == 0) {
    sweep_aside();
    return 0;
  }
  set_aside(ip);
  return 1;
}

int bd_ip_main_tstates(void) {
  int n = 0;
  pthread_mutex_lock(&g_rt.lock);
  for (bd_tsref *r = g_rt.main.tstates; r != NULL; r = r->ip_next) n++;
  pthread_mutex_unlock(&g_rt.lock);
  return n;
}

int bd_ip_idle_count(void) {
  pthread_mutex_lock(&g_rt.lock);
  int n = g_rt.idle_count;
  pthread_mutex_unlock(&g_rt.lock);
  return n;
}

void bd_ip_counters(long *created, long *reused) {
  pthread_mutex_lock(&g_rt.lock);
  *created = g_rt.created;
  *reused = g_rt.reused;
  pthread_mutex_unlock(&g_rt.lock);
}

int bd_ip_set_aside_count(void) {
  pthread_mutex_lock(&g_rt.lock);
  int n = g_rt.aside_count;
  pthread_mutex_unlock(&g_rt.lock);
  return n;
}

int bd_ip_fini(void) {
  for (;;) {
    pthread_mutex_lock(&g_rt.lock);
    bd_interp *ip = g_rt.idle;
    if (ip != NULL) {
      g_rt.idle = ip->next;
      g_rt.idle_count--;
    }
    pthread_mutex_unlock(&g_rt.lock);
    if (ip == NULL) break;
    if (try_end(ip, 0) != 0) set_aside(ip);
  }
  sweep_aside();
  /* Delete the main interpreter's cached thread states but the current
   * one, which stays with this thread (CPython remembers it as the
   * thread's own); the runtime may be finalized next, or bound again. */
  PyThreadState *ts = bd_ip_enter(&g_rt.main);
  if (ts == NULL) return 0;
  drop_other_tstates(&g_rt.main, ts);
  bd_ip_leave(ts);
  pthread_mutex_lock(&g_rt.lock);
  int clean = g_rt.aside == NULL;
  if (clean) {
    while (g_rt.main.tstates) drop_ref(g_rt.main.tstates);
    g_rt.ready = 0;
  }
  pthread_mutex_unlock(&g_rt.lock);
  return clean;
}
