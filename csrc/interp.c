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
 *
 * Before Python 3.13 the GIL is not fair between interpreters: a thread
 * waiting for it asks the holder to let go by setting a flag on the
 * *waiting* thread's interpreter, which a holder running in another
 * interpreter never reads, so one busy plugin starves every other
 * interpreter (Py_AddPendingCall does not help: pending calls run only on
 * the process's main thread, never a Director job thread).  The only
 * public way to raise that flag on interpreter X is to wait for the GIL
 * with a thread state of X.  So a monitor thread watches for interpreters
 * that may hold the GIL long (a Director call in progress for a while, or
 * plugin threads) and gives each a "nudger" thread that takes and drops the
 * GIL with a thread state of its own in X every few milliseconds while
 * that lasts; each of its waits asks X's holder to switch, as a waiter of
 * X itself would.
 */
#include "bareosdir.h"

#include <signal.h>
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
  bd_interp *entered[16]; /* bd_ip_enter stack of this thread */
  int depth;
};

#if PY_VERSION_HEX < 0x030D0000 && !defined(BD_NO_NUDGE)
#define BD_NUDGE 1
#endif
/* How often a nudger asks, and how long a Director call may hold an
 * interpreter before it is nudged (most events end well before). */
#define NUDGE_PERIOD_S 0.02
#define NUDGE_BUSY_MS 100
/* A GIL wait this long means someone held it (the switch interval is 5 ms). */
#define NUDGE_HELD_S 0.004
/* How often set-aside interpreters are checked for finished threads. */
#define SWEEP_PERIOD_S 0.1

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
  bd_interp *all;            /* every live sub-interpreter */
  atomic_int main_base;      /* main-interpreter threads that are not ours */
  pthread_cond_t monitor_cond;
  pthread_t monitor;
  int monitor_running, monitor_stop;
  int nudgers;               /* nudger threads running */
  int atexit_skipped;        /* atexit callbacks dropped, not run */
} g_rt = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static void monitor_start(void);

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#ifdef BD_NUDGE
/*
 * Entering and leaving an interpreter is the hot path (every event), so
 * the "who is inside, since when" bookkeeping the monitor reads takes no
 * lock: one word per interpreter holds the number of Director calls in
 * progress (low BUSY_BITS bits) and the coarse monotonic time in ms at
 * which that number last went from 0 to 1 (the rest), changed with one
 * compare-and-swap, so the monitor never sees a count with the time of an
 * earlier busy spell.  A coarse clock (a few ms of resolution) is enough
 * against a threshold of NUDGE_BUSY_MS, and costs no more than a read of
 * memory.
 */
#define BUSY_BITS 20
#define BUSY_COUNT(b) ((b) & ((UINT64_C(1) << BUSY_BITS) - 1))

static uint64_t coarse_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void busy_enter(bd_interp *ip) {
  uint64_t old = atomic_load_explicit(&ip->busy, memory_order_relaxed), now;
  do {
    now = BUSY_COUNT(old) == 0 ? (coarse_ms() << BUSY_BITS) | 1 : old + 1;
  } while (!atomic_compare_exchange_weak_explicit(
      &ip->busy, &old, now, memory_order_relaxed, memory_order_relaxed));
}

/* The count is never 0 here, so this never borrows from the time. */
static void busy_leave(bd_interp *ip) {
  atomic_fetch_sub_explicit(&ip->busy, 1, memory_order_relaxed);
}
#endif

/* GIL held in interp. */
static int thread_count(PyInterpreterState *interp) {
  int n = 0;
  for (PyThreadState *t = PyInterpreterState_ThreadHead(interp); t != NULL;
       t = PyThreadState_Next(t))
    n++;
  return n;
}


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

static void make_key(void) {
  pthread_key_create(&g_rt.key, thread_gone);
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&g_rt.monitor_cond, &a);
  pthread_condattr_destroy(&a);
}

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
  ip->ntstates++;
  return r;
}

/* Under g_rt.lock: unlinks r from both lists and frees it. */
static void drop_ref(bd_tsref *r) {
  if (r->thr == NULL) r->ip->dead--;
  r->ip->ntstates--;
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
  /* GIL held.  Threads of the main interpreter that are not ours when we
   * are bound (the host's) are not plugin threads. */
  if (PyGILState_Check() && PyThreadState_GetInterpreter(PyThreadState_Get()) ==
                                PyInterpreterState_Main()) {
    int n = thread_count(PyInterpreterState_Main());
    pthread_mutex_lock(&g_rt.lock);
    for (bd_tsref *r = g_rt.main.tstates; r != NULL; r = r->ip_next) n--;
    g_rt.main_base = n;
    pthread_mutex_unlock(&g_rt.lock);
    /* The first import of signal in the main interpreter installs
     * CPython's SIGINT handler; done here, where the shim puts the
     * Director's dispositions back right after, no plugin's import of
     * signal, subprocess or asyncio does it later. */
    PyObject *sig = PyImport_ImportModule("signal"); /* new */
    Py_XDECREF(sig);
    PyErr_Clear();
  }
  pthread_mutex_lock(&g_rt.lock);
  monitor_start();
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

static PyThreadState *enter_raw(bd_interp *ip) {
  /* Isolated instances rarely enter the main interpreter, where every
   * Director thread has its first thread state: sweep it from here. */
  if (!ip->is_main &&
      __atomic_load_n(&g_rt.main.dead, __ATOMIC_RELAXED) > 0) {
    PyThreadState *main_ts = enter_raw(&g_rt.main);
    if (main_ts != NULL) PyEval_SaveThread();
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

/* ---- nudging the GIL holder of another interpreter (see the top) ---- */

static void sleep_s(double s) {
  struct timespec d = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&d, NULL);
}

/* Starts a thread with every signal blocked: the Director's signals stay
 * with the Director's own threads. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

#ifdef BD_NUDGE
/* Under g_rt.lock: whether ip may hold the GIL for long now (`now` from
 * coarse_ms). */
static int needs_nudge(bd_interp *ip, uint64_t now) {
  if (ip->nudge_stop) return 0;
  if (atomic_load_explicit(&ip->has_threads, memory_order_relaxed)) return 1;
  uint64_t b = atomic_load_explicit(&ip->busy, memory_order_relaxed);
  uint64_t since = b >> BUSY_BITS;
  return BUSY_COUNT(b) > 0 && now >= since && now - since >= NUDGE_BUSY_MS;
}

static void *nudger_main(void *arg) {
  bd_interp *ip = arg; /* alive while ip->nudger is set */
  /* A thread state of its own, not a cached one: it is deleted here, by
   * this thread, before ip->nudger is cleared. */
  PyThreadState *ts = PyThreadState_New(ip->interp);
  if (ts != NULL) {
    pthread_mutex_lock(&g_rt.lock);
    ip->nudger_ts = ts;
    pthread_mutex_unlock(&g_rt.lock);
    for (;;) {
      /* While this waits, CPython asks ip's GIL holder to switch.  A wait
       * that took a switch interval or more means the GIL was held: ask
       * again soon, as a waiter of ip itself would keep asking. */
      double t0 = now_s();
      PyEval_RestoreThread(ts);
      PyEval_SaveThread();
      sleep_s(now_s() - t0 >= NUDGE_HELD_S ? 0.001 : NUDGE_PERIOD_S);
      pthread_mutex_lock(&g_rt.lock);
      int go = needs_nudge(ip, coarse_ms());
      pthread_mutex_unlock(&g_rt.lock);
      if (!go) break;
    }
    PyEval_RestoreThread(ts);
    PyThreadState_Clear(ts);
    pthread_mutex_lock(&g_rt.lock);
    ip->nudger_ts = NULL;
    pthread_mutex_unlock(&g_rt.lock);
    PyThreadState_DeleteCurrent();
  }
  pthread_mutex_lock(&g_rt.lock);
  ip->nudger = 0;
  g_rt.nudgers--;
  pthread_mutex_unlock(&g_rt.lock);
  return NULL;
}

/* Under g_rt.lock. */
static void nudge_check(bd_interp *ip, uint64_t now) {
  if (ip->nudger || !needs_nudge(ip, now)) return;
  pthread_t t;
  ip->nudger = 1;
  g_rt.nudgers++;
  if (start_thread(&t, nudger_main, ip) != 0) {
    ip->nudger = 0;
    g_rt.nudgers--;
    return;
  }
  pthread_detach(t);
}
#endif

static void sweep_aside(void);

/* The monitor: ends set-aside interpreters once their plugin threads have
 * finished, and (Python < 3.13) starts nudgers where needed. */
static void *monitor_main(void *arg) {
  (void)arg;
  double next_sweep = 0;
  pthread_mutex_lock(&g_rt.lock);
  while (!g_rt.monitor_stop) {
    double now = now_s();
#ifdef BD_NUDGE
    uint64_t ms = coarse_ms();
    if (g_rt.main.interp != NULL) nudge_check(&g_rt.main, ms);
    for (bd_interp *ip = g_rt.all; ip != NULL; ip = ip->all_next)
      nudge_check(ip, ms);
#endif
    if (g_rt.aside != NULL && now >= next_sweep) {
      pthread_mutex_unlock(&g_rt.lock);
      sweep_aside();
      pthread_mutex_lock(&g_rt.lock);
      next_sweep = now_s() + SWEEP_PERIOD_S;
      continue;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += (long)(NUDGE_PERIOD_S * 1e9);
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_rt.monitor_cond, &g_rt.lock, &until);
  }
  pthread_mutex_unlock(&g_rt.lock);
  return NULL;
}

/* Under g_rt.lock. */
static void monitor_start(void) {
  if (g_rt.monitor_running) return;
  g_rt.monitor_stop = 0;
  g_rt.main.nudge_stop = 0;
  if (start_thread(&g_rt.monitor, monitor_main, NULL) == 0)
    g_rt.monitor_running = 1;
}

/* Stops the monitor and asks every nudger to stop; waits up to `wait`
 * seconds for them.  GIL not held.  Returns the nudgers still running. */
static int nudging_stop(double wait) {
  pthread_mutex_lock(&g_rt.lock);
  int joined = g_rt.monitor_running;
  g_rt.monitor_stop = 1;
  g_rt.monitor_running = 0;
  pthread_cond_signal(&g_rt.monitor_cond);
  g_rt.main.nudge_stop = 1;
  for (bd_interp *ip = g_rt.all; ip != NULL; ip = ip->all_next)
    ip->nudge_stop = 1;
  pthread_mutex_unlock(&g_rt.lock);
  /* It only sleeps a period at a time and never touches Python. */
  if (joined) pthread_join(g_rt.monitor, NULL);
  double deadline = now_s() + wait;
  for (;;) {
    pthread_mutex_lock(&g_rt.lock);
    int n = g_rt.nudgers;
    pthread_mutex_unlock(&g_rt.lock);
    if (n == 0 || now_s() >= deadline) return n;
    sleep_s(0.005);
  }
}

/* GIL held in ip: threads in it that are not ours (plugin threads).  No
 * lock: the three counts subtracted are atomics, and the lock never
 * covered the moment a thread state of ours joins or leaves the
 * interpreter's list either (PyThreadState_New, before add_ref), so a
 * caller could always see one passing thread too many for an instant. */
static int plugin_threads(bd_interp *ip) {
  int n = thread_count(ip->interp);
  n -= atomic_load_explicit(&ip->ntstates, memory_order_relaxed);
  if (atomic_load_explicit(&ip->nudger_ts, memory_order_relaxed) != NULL) n--;
  if (ip->is_main) n -= atomic_load_explicit(&g_rt.main_base,
                                             memory_order_relaxed);
  return n;
}

PyThreadState *bd_ip_enter(bd_interp *ip) {
  PyThreadState *ts = enter_raw(ip);
  if (ts == NULL) return NULL;
#ifdef BD_NUDGE
  bd_thread *thr = this_thread();
  if (thr != NULL) {
    if (thr->depth < (int)(sizeof thr->entered / sizeof thr->entered[0]))
      thr->entered[thr->depth] = ip;
    thr->depth++;
  }
  busy_enter(ip);
#endif
  return ts;
}

void bd_ip_leave(PyThreadState *ts) {
  (void)ts;
#ifdef BD_NUDGE
  bd_thread *thr = this_thread();
  bd_interp *ip = NULL;
  if (thr != NULL && thr->depth > 0) {
    thr->depth--;
    if (thr->depth < (int)(sizeof thr->entered / sizeof thr->entered[0]))
      ip = thr->entered[thr->depth];
  }
  if (ip != NULL) {
    /* Plugin threads may hold the GIL at any time: nudge while they live.
     * Counted here, with the GIL held, because only then may the
     * interpreter's thread list be walked.  A new thread state always
     * joins at the head of that list with an id higher than any before
     * it, so while the head's id is the one seen at the last count and
     * that count found none, no plugin thread can have started since and
     * the walk (every thread of the interpreter: in main mode every
     * Director thread that called a plugin) is skipped.  Once plugin
     * threads were seen, every leave counts again, so the nudger stops
     * soon after they end. */
    PyThreadState *head = PyInterpreterState_ThreadHead(ip->interp);
    uint64_t head_id = head ? PyThreadState_GetID(head) : 0;
    if (head_id != ip->counted_head ||
        atomic_load_explicit(&ip->has_threads, memory_order_relaxed)) {
      ip->counted_head = head_id;
      atomic_store_explicit(&ip->has_threads, plugin_threads(ip) > 0,
                            memory_order_relaxed);
    }
    busy_leave(ip);
  }
#endif
  PyEval_SaveThread();
}

void bd_ip_add_site_dirs(const char *dirs) {
  if (dirs == NULL || dirs[0] == '\0') return;
  PyObject *site = PyImport_ImportModule("site"); /* new */
  /* One set of the directories already on sys.path for all calls:
   * without it each addsitedir rebuilds it from the whole sys.path (a
   * stat per entry), quadratic in the number of directories. */
  PyObject *known = site ? PyObject_CallMethod(site, "_init_pathinfo", NULL)
                         : NULL; /* new */
  if (known == NULL) {
    PyErr_Clear();
    known = Py_NewRef(Py_None);
  }
  char *copy = site ? strdup(dirs) : NULL, *save = NULL;
  for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d != NULL;
       d = strtok_r(NULL, ":", &save)) {
    PyObject *x =
        PyObject_CallMethod(site, "addsitedir", "sO", d, known); /* new */
    Py_XDECREF(x);
    PyErr_Clear();
  }
  free(copy);
  Py_XDECREF(known);
  Py_XDECREF(site);
  PyErr_Clear();
}

/* os.fork() in a sub-interpreter: the child dies at once in CPython 3.11
 * ("Fatal Python error: _PyInterpreterState_DeleteExceptMain"), so a
 * multiprocessing Pool with the default start method waits forever for
 * workers that never come.  Refusing it makes that fail at once, with
 * the way out in the message. */
static PyObject *fork_refused(PyObject *self, PyObject *args) {
  (void)self;
  (void)args;
  PyErr_SetString(
      PyExc_RuntimeError,
      "fork() is not available in an isolated plugin interpreter (the "
      "child of a sub-interpreter dies at once); for multiprocessing use "
      "multiprocessing.get_context('spawn') or 'forkserver', or run the "
      "plugin with interpreter=main");
  return NULL;
}

static PyMethodDef fork_refused_def[] = {
    {"fork", fork_refused, METH_NOARGS, "Refused in an isolated interpreter."},
    {"forkpty", fork_refused, METH_NOARGS,
     "Refused in an isolated interpreter."},
    {NULL, NULL, 0, NULL}};

/* GIL held in a new sub-interpreter. */
static int refuse_fork(void) {
  int rc = 0;
  const char *mods[] = {"os", "posix"};
  for (size_t m = 0; m < 2 && rc == 0; m++) {
    PyObject *mod = PyImport_ImportModule(mods[m]); /* new */
    if (mod == NULL) return -1;
    for (PyMethodDef *d = fork_refused_def; d->ml_name && rc == 0; d++) {
      if (!PyObject_HasAttrString(mod, d->ml_name)) continue;
      PyObject *f = PyCFunction_New(d, NULL); /* new */
      rc = f ? PyObject_SetAttrString(mod, d->ml_name, f) : -1;
      Py_XDECREF(f);
    }
    Py_DECREF(mod);
  }
  return rc;
}

/* The import system compiles source with the builtin compile(), whose
 * first step (PyAST_Check) builds the interpreter's ast state: about 120
 * classes, created once per interpreter and kept to its end, 0.2 MB on
 * Python 3.11 and 0.26 MB on 3.13 in every isolated interpreter, for
 * nothing (no AST object is ever involved).  Py_CompileStringObject
 * compiles the same bytes the same way (builtin compile() ends in it too)
 * without that step.  SourceLoader.source_to_code (importlib) looks
 * `compile` up in its module's globals before the builtins, so one put
 * there serves every source import of the interpreter, ours and the
 * plugins'.  It takes exactly the call importlib makes (bytes, a str path,
 * 'exec', dont_inherit, no flags) and hands anything else to the builtin
 * compile() unchanged, errors included. */
static PyObject *import_compile(PyObject *self, PyObject *args,
                                PyObject *kwargs) {
  (void)self;
  char *kwlist[] = {"source", "filename", "mode", "flags",
                    "dont_inherit", "optimize", NULL};
  PyObject *source, *filename, *mode, *flags = NULL, *inherit = NULL,
                                      *optimize = NULL; /* borrowed */
  int fast = PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|OOO:compile",
                                         kwlist, &source, &filename, &mode,
                                         &flags, &inherit, &optimize);
  PyErr_Clear();
  long opt = -1;
  if (fast && optimize != NULL) {
    opt = PyLong_CheckExact(optimize) ? PyLong_AsLong(optimize) : -9;
    PyErr_Clear();
  }
  fast = fast && PyBytes_CheckExact(source) && PyUnicode_CheckExact(filename) &&
         PyUnicode_CheckExact(mode) &&
         PyUnicode_CompareWithASCIIString(mode, "exec") == 0 &&
         (flags == NULL ||
          (PyLong_CheckExact(flags) && PyLong_AsLong(flags) == 0)) &&
         inherit == Py_True && opt >= -1 && opt <= 2 &&
         memchr(PyBytes_AS_STRING(source), '\0',
                (size_t)PyBytes_GET_SIZE(source)) == NULL;
  PyErr_Clear();
  if (fast) {
    /* What builtin compile() passes for bytes with dont_inherit. */
    PyCompilerFlags cf = {PyCF_SOURCE_IS_UTF8, PY_MINOR_VERSION};
    return Py_CompileStringObject(PyBytes_AS_STRING(source), filename,
                                  Py_file_input, &cf, (int)opt); /* new */
  }
  PyObject *builtin =
      PyDict_GetItemString(PyEval_GetBuiltins(), "compile"); /* borrowed */
  if (builtin == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "builtins.compile is missing");
    return NULL;
  }
  return PyObject_Call(builtin, args, kwargs); /* new */
}

static PyMethodDef import_compile_def = {
    "compile", (PyCFunction)(void (*)(void))import_compile,
    METH_VARARGS | METH_KEYWORDS,
    "compile() for the import system, without the ast state."};

/* GIL held in a new sub-interpreter: see import_compile.  Without
 * importlib's module (never the case) the builtin simply stays in use. */
static int use_import_compile(void) {
  PyObject *ext = PyDict_GetItemString(PyImport_GetModuleDict(),
                                       "_frozen_importlib_external"); /* borrowed */
  if (ext == NULL) return 0;
  PyObject *f = PyCFunction_New(&import_compile_def, NULL); /* new */
  int rc = f ? PyObject_SetAttrString(ext, "compile", f) : -1;
  Py_XDECREF(f);
  return rc;
}

/* In the new interpreter, GIL held: make `bareosdir` importable, import the
 * API module and route stdout/stderr/logging/warnings to the Director. */
static int setup_interp(bd_interp *ip) {
  int rc = -1;
  PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
  PyObject *p1 = NULL, *p2 = NULL, *hostio = NULL, *r = NULL;
  PyObject *isolation = NULL;
  if (sys_path == NULL || use_import_compile() < 0) goto done;
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
    /* A set for the membership test: linear in the number of entries. */
    PyObject *seen = PySet_New(sys_path); /* new */
    char *copy = seen ? strdup(g_rt.cfg.main_path) : NULL, *save = NULL;
    for (char *d = copy ? strtok_r(copy, "\n", &save) : NULL; d != NULL;
         d = strtok_r(NULL, "\n", &save)) {
      PyObject *p = PyUnicode_DecodeFSDefault(d); /* new */
      int has = p ? PySet_Contains(seen, p) : -1;
      if (has == 0 && (PyList_Append(sys_path, p) < 0 ||
                       PySet_Add(seen, p) < 0))
        has = -1;
      Py_XDECREF(p);
      if (has < 0) break;
    }
    free(copy);
    Py_XDECREF(seen);
    if (PyErr_Occurred()) goto done;
  }
  bd_ip_add_site_dirs(g_rt.cfg.extra_path);
  if (refuse_fork() < 0) goto done;
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
  char exc[1024];
  bd_exc_format(exc, sizeof exc);
  bd_fmt(err, errlen, "%s: %s", what, exc);
}

static bd_interp *create_interp(char *err, size_t errlen);

static int aside_max(void) {
  const char *s = getenv("BAREOSDIR_ASIDE_MAX");
  int v = s ? atoi(s) : 32;
  return v >= 0 ? v : 32;
}

bd_interp *bd_ip_acquire(const char *module, char *err, size_t errlen) {
  pthread_mutex_lock(&g_rt.lock);
  int held = 0, limit = aside_max();
  if (g_rt.aside_count >= limit)
    for (bd_interp *a = g_rt.aside; a != NULL; a = a->next)
      if (a->holder != NULL && module != NULL && strcmp(a->holder, module) == 0)
        held++;
  if (held > 0) {
    int total = g_rt.aside_count;
    pthread_mutex_unlock(&g_rt.lock);
    bd_fmt(err, errlen,
             "%d interpreters are set aside waiting for threads that plugins "
             "left running (BAREOSDIR_ASIDE_MAX=%d), %d of them for plugin "
             "module '%s'; no new instance of it starts until they end",
             total, limit, held, module);
    return NULL;
  }
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
  PyThreadState *main_ts = enter_raw(&g_rt.main);
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
    PyEval_SaveThread();
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
    PyEval_SaveThread();
    free(ip);
    return NULL;
  }
  pthread_mutex_lock(&g_rt.lock);
  ip->all_next = g_rt.all;
  g_rt.all = ip;
  pthread_mutex_unlock(&g_rt.lock);
  PyEval_SaveThread();
  return ip;
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

/* Threads of ip other than ts and its nudger, after deleting our cached
 * thread states. */
static int others_left(bd_interp *ip, PyThreadState *ts) {
  drop_other_tstates(ip, ts);
  pthread_mutex_lock(&g_rt.lock);
  int n = thread_count(ip->interp) - (ip->nudger_ts != NULL);
  pthread_mutex_unlock(&g_rt.lock);
  return n > 1;
}

static int foreign_threads(bd_interp *ip, PyThreadState *cur);

static int foreign_left(bd_interp *ip, PyThreadState *ts) {
  return foreign_threads(ip, ts) > 0;
}

static int nudger_left(bd_interp *ip, PyThreadState *ts) {
  (void)ts;
  pthread_mutex_lock(&g_rt.lock);
  int n = ip->nudger;
  pthread_mutex_unlock(&g_rt.lock);
  return n;
}

static void set_nudge_stop(bd_interp *ip, int stop) {
  pthread_mutex_lock(&g_rt.lock);
  ip->nudge_stop = stop;
  pthread_mutex_unlock(&g_rt.lock);
}

/* GIL held in ip: stops its nudger, which ends within a period or so once
 * it gets the GIL (dropped while waiting).  0 when none is left. */
static int stop_nudger(bd_interp *ip, PyThreadState *ts) {
  set_nudge_stop(ip, 1);
  return wait_until_idle(ip, ts, 0.3, nudger_left);
}

/* GIL held: drops the current interpreter's atexit callbacks unrun and
 * returns how many there were.  Ending an interpreter (or finalizing)
 * would run them on a Director thread, where one that blocks hangs the
 * Director (Bareos's own plugin has the same trap). */
static int clear_atexit(void) {
  PyObject *m = PyImport_ImportModule("atexit"); /* new */
  PyObject *n = m ? PyObject_CallMethod(m, "_ncallbacks", NULL) : NULL;
  PyObject *r = m ? PyObject_CallMethod(m, "_clear", NULL) : NULL;
  long count = n ? PyLong_AsLong(n) : 0;
  Py_XDECREF(r);
  Py_XDECREF(n);
  Py_XDECREF(m);
  PyErr_Clear();
  return count > 0 ? (int)count : 0;
}

/* Ends ip if no plugin thread is left in it, waiting up to `wait` seconds
 * for them.  GIL not held.  Returns 0 when ended, 1 when threads are still
 * running (ip untouched otherwise). */
static int try_end(bd_interp *ip, double wait) {
  PyThreadState *ts = enter_raw(ip);
  if (ts == NULL) return 1;
  if (wait_until_idle(ip, ts, wait, others_left) != 0 ||
      stop_nudger(ip, ts) != 0 || others_left(ip, ts)) {
    set_nudge_stop(ip, 0);
    PyEval_SaveThread();
    return 1;
  }
  int skipped = clear_atexit();
  Py_CLEAR(ip->api_module);
  Py_CLEAR(ip->baseline);
  pthread_mutex_lock(&g_rt.lock);
  g_rt.atexit_skipped += skipped;
  while (ip->tstates) drop_ref(ip->tstates);
  for (bd_interp **pp = &g_rt.all; *pp; pp = &(*pp)->all_next)
    if (*pp == ip) {
      *pp = ip->all_next;
      break;
    }
  pthread_mutex_unlock(&g_rt.lock);
  Py_EndInterpreter(ts); /* GIL still held, no thread state current */
  PyThreadState *main_ts = thread_state_for(&g_rt.main);
  PyThreadState_Swap(main_ts);
  PyEval_SaveThread();
  free(ip->holder);
  free(ip);
  return 0;
}

static void set_aside(bd_interp *ip, const char *module);

/* Ends the set-aside interpreters whose plugin threads have finished; the
 * others go back.  They stay counted meanwhile. */
static void sweep_aside(void) {
  pthread_mutex_lock(&g_rt.lock);
  bd_interp *list = g_rt.aside;
  g_rt.aside = NULL;
  pthread_mutex_unlock(&g_rt.lock);
  while (list != NULL) {
    bd_interp *ip = list;
    list = ip->next;
    int ended = try_end(ip, 0) == 0;
    pthread_mutex_lock(&g_rt.lock);
    if (ended) {
      g_rt.aside_count--;
    } else {
      ip->next = g_rt.aside;
      g_rt.aside = ip;
    }
    pthread_mutex_unlock(&g_rt.lock);
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
  return plugin_threads(ip);
}

/* ip's plugin threads outlived its instance: the monitor ends it once they
 * have finished (nudging them meanwhile, like any plugin thread). */
static void set_aside(bd_interp *ip, const char *module) {
  char *holder = strdup(module ? module : "?");
  pthread_mutex_lock(&g_rt.lock);
  free(ip->holder);
  ip->holder = holder;
  ip->has_threads = 1;
  ip->nudge_stop = 0;
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
  PyThreadState *ts = enter_raw(ip);
  if (ts == NULL) return -1;
  if (wait_until_idle(ip, ts, thread_wait_s(), foreign_left) != 0 ||
      stop_nudger(ip, ts) != 0) {
    set_nudge_stop(ip, 0);
    PyEval_SaveThread();
    return 1;
  }
  PyObject *r = PyObject_CallMethod(ip->baseline, "reset", NULL); /* new */
  int ok = r != NULL;
  Py_XDECREF(r);
  PyErr_Clear();
  PyEval_SaveThread();
  if (!ok) return -1;
  pthread_mutex_lock(&g_rt.lock);
  ip->has_threads = 0;
  ip->nudge_stop = 0;
  ip->next = g_rt.idle;
  g_rt.idle = ip;
  g_rt.idle_count++;
  pthread_mutex_unlock(&g_rt.lock);
  return 0;
}

int bd_ip_release(bd_interp *ip, const char *module) {
  pthread_mutex_lock(&g_rt.lock);
  int keep = g_rt.idle_count < pool_max();
  pthread_mutex_unlock(&g_rt.lock);
  if (keep) {
    int rc = reset_for_reuse(ip);
    if (rc == 0) return 0;
    if (rc == 1) {
      /* A plugin left threads running: ending the interpreter now would
       * abort the process, waiting longer would stall the Director. */
      set_aside(ip, module);
      return 1;
    }
  }
  if (try_end(ip, thread_wait_s()) == 0) return 0;
  set_aside(ip, module);
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

int bd_ip_fini(bd_ip_leftovers *left, double deadline) {
  memset(left, 0, sizeof *left);
  /* Nudgers keep running meanwhile: a plugin thread spinning in any
   * interpreter would otherwise keep every step below from the GIL. */
  for (;;) {
    pthread_mutex_lock(&g_rt.lock);
    bd_interp *ip = g_rt.idle;
    if (ip != NULL) {
      g_rt.idle = ip->next;
      g_rt.idle_count--;
    }
    pthread_mutex_unlock(&g_rt.lock);
    if (ip == NULL) break;
    if (try_end(ip, 0) != 0) set_aside(ip, ip->holder);
  }
  /* Plugin threads that end soon (a last send, a join) still may: until
   * the deadline.  Python's finalization would join the main
   * interpreter's non-daemon threads and wait for the GIL behind daemon
   * ones that never let go: count what is left. */
  for (;;) {
    sweep_aside();
    PyThreadState *ts = enter_raw(&g_rt.main);
    if (ts == NULL) return 0;
    left->main_threads = plugin_threads(&g_rt.main);
    PyEval_SaveThread();
    pthread_mutex_lock(&g_rt.lock);
    int aside = g_rt.aside_count;
    pthread_mutex_unlock(&g_rt.lock);
    if ((aside == 0 && left->main_threads <= 0) || now_s() >= deadline)
      break;
    sleep_s(0.02);
  }
  int nudgers = nudging_stop(0.3);
  pthread_mutex_lock(&g_rt.lock);
  left->aside = g_rt.aside_count;
  size_t len = 0;
  for (bd_interp *ip = g_rt.aside; ip != NULL; ip = ip->next) {
    const char *h = ip->holder ? ip->holder : "?";
    int dup = 0;
    for (bd_interp *o = g_rt.aside; o != ip && !dup; o = o->next)
      dup = strcmp(o->holder ? o->holder : "?", h) == 0;
    if (dup) continue;
    if (bd_fmt_at(left->holders, sizeof left->holders, &len, "%s%s",
                  len ? ", " : "", h) != 0)
      break;
  }
  left->atexit_skipped = g_rt.atexit_skipped;
  g_rt.atexit_skipped = 0;
  int clean = left->aside == 0 && left->main_threads <= 0 && nudgers == 0;
  pthread_mutex_unlock(&g_rt.lock);
  if (!clean) return 0;
  /* Nothing of the plugins runs any more.  Delete the main interpreter's
   * cached thread states but the current one, which stays with this
   * thread (CPython remembers it as the thread's own); the runtime may be
   * finalized next, or bound again. */
  PyThreadState *ts = enter_raw(&g_rt.main);
  if (ts == NULL) return 0;
  drop_other_tstates(&g_rt.main, ts);
  left->atexit_skipped += clear_atexit();
  PyEval_SaveThread();
  pthread_mutex_lock(&g_rt.lock);
  while (g_rt.main.tstates) drop_ref(g_rt.main.tstates);
  g_rt.ready = 0;
  pthread_mutex_unlock(&g_rt.lock);
  return 1;
}
