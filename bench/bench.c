/*
 * bareosdir-bench: measures the plugin host through the real shim, loaded
 * by dlopen as bareos-dir loads it and driven by the director model on
 * Director-like threads.  Prints medians; see bench/run.sh.
 *
 *   bareosdir-bench floors
 *   bareosdir-bench run PLUGIN_DIR MODULE_PATH isolated|main
 *   bareosdir-bench hold PLUGIN_DIR N OPTIONS   (exit 1 on any failure)
 *   bareosdir-bench jobs PLUGIN_DIR N OPTIONS   (N jobs one after the
 *       other and nothing else: for callgrind, e.g. with
 *       --toggle-collect=dm_job_plugin_options)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "director_model.h"
#include "textfmt.h"

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- floors: this process's own Python, no shim ---- */

static int floors(void) {
  Py_InitializeEx(0);
  PyObject *g = PyDict_New();
  PyRun_String("def f(e):\n    return 0\n", Py_file_input, g, g);
  PyObject *f = PyDict_GetItemString(g, "f");
  PyObject *arg = PyLong_FromLong(1);
  PyThreadState *ts = PyEval_SaveThread();
  double s[51];
  for (int r = 0; r < 51; r++) {
    double t0 = now_us();
    for (int i = 0; i < 10000; i++) {
      PyEval_RestoreThread(ts);
      PyObject *res = PyObject_CallOneArg(f, arg);
      Py_XDECREF(res);
      ts = PyEval_SaveThread();
    }
    s[r] = (now_us() - t0) / 10000;
  }
  printf("floor: call a trivial Python function from C, taking and dropping "
         "the GIL: %.3f us median\n", median(s, 51));
  double c[21];
  for (int r = 0; r < 21; r++) {
    PyEval_RestoreThread(ts);
    double t0 = now_us();
    PyThreadState *sub = Py_NewInterpreter();
    Py_EndInterpreter(sub);
    PyThreadState_Swap(ts);
    c[r] = now_us() - t0;
    ts = PyEval_SaveThread();
  }
  printf("floor: create and end one sub-interpreter: %.2f ms median\n",
         median(c, 21) / 1000);
  PyEval_RestoreThread(ts);
  Py_DECREF(arg);
  Py_DECREF(g);
  Py_FinalizeEx();
  return 0;
}

/* ---- through the shim ---- */

typedef struct {
  dm_director *dir;
  void *handle;
  bd_unloadPlugin_fn unload;
} shim_t;

static void quiet_sink(void *arg, const dm_message *m) {
  (void)arg;
  if (m->kind == DM_MSG_JOB && (m->type == M_FATAL || m->type == M_ERROR))
    fprintf(stderr, "bench: JobId %u: %s", m->jobid, m->text);
}

static int load(shim_t *s, const char *plugin_dir) {
  char path[4096], err[256];
  if (bd_fmt_whole(path, sizeof path, "%s/python-dir.so", plugin_dir) != 0) {
    fprintf(stderr, "bench: plugin directory path too long\n");
    return -1;
  }
  s->dir = dm_director_new("bench-dir", plugin_dir);
  dm_director_set_sink(s->dir, quiet_sink, NULL);
  s->handle = dlopen(path, RTLD_LAZY | RTLD_GLOBAL);
  if (s->handle == NULL) {
    fprintf(stderr, "bench: %s\n", dlerror());
    return -1;
  }
  bd_loadPlugin_fn lp = (bd_loadPlugin_fn)dlsym(s->handle, "loadPlugin");
  s->unload = (bd_unloadPlugin_fn)dlsym(s->handle, "unloadPlugin");
  PluginApiDefinition api;
  dm_api_definition(&api);
  PluginInformation *info;
  PluginFunctions *funcs;
  if (lp == NULL || s->unload == NULL ||
      lp(&api, (CoreFunctions *)dm_core_functions(), &info, &funcs) != bRC_OK ||
      dm_director_add_plugin(s->dir, "python", info, funcs, s->unload, err,
                             sizeof err) < 0) {
    fprintf(stderr, "bench: loading %s failed\n", path);
    return -1;
  }
  return 0;
}

static uint32_t g_jobid;
static pthread_mutex_t g_id_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t next_id(void) {
  pthread_mutex_lock(&g_id_lock);
  uint32_t id = ++g_jobid;
  pthread_mutex_unlock(&g_id_lock);
  return id;
}

typedef struct {
  double t_new, t_opts, t_events, t_free;
} phases;

static void one_job(shim_t *s, const char *opts, int extra, phases *p) {
  dm_job *j = dm_job_new(s->dir, "BenchJob", next_id());
  double t0 = now_us();
  dm_job_new_plugins(j);
  double t1 = now_us();
  dm_job_plugin_options(j, opts);
  double t2 = now_us();
  dm_job_event(j, bDirEventJobStart, NULL);
  dm_job_event(j, bDirEventJobInit, NULL);
  dm_job_event(j, bDirEventJobRun, NULL);
  for (int i = 0; i < extra; i++) dm_job_event(j, bDirEventJobRun, NULL);
  dm_job_set_int(j, bDirVarJobStatus, 'T');
  dm_job_event(j, bDirEventJobEnd, NULL);
  double t3 = now_us();
  dm_job_free_plugins(j);
  double t4 = now_us();
  dm_job_free(j);
  if (p) *p = (phases){t1 - t0, t2 - t1, t3 - t2, t4 - t3};
}

static void per_job(shim_t *s, const char *label, const char *opts) {
  enum { N = 201 };
  static double a[N], b[N], c[N], d[N], tot[N];
  for (int i = 0; i < 20; i++) one_job(s, opts, 0, NULL); /* warm-up */
  for (int i = 0; i < N; i++) {
    phases p;
    one_job(s, opts, 0, &p);
    a[i] = p.t_new;
    b[i] = p.t_opts;
    c[i] = p.t_events;
    d[i] = p.t_free;
    tot[i] = p.t_new + p.t_opts + p.t_events + p.t_free;
  }
  printf("  per job (%s): %.3f ms median (new %.3f, options+load %.3f, "
         "4 events %.3f, free %.3f)\n",
         label, median(tot, N) / 1000, median(a, N) / 1000,
         median(b, N) / 1000, median(c, N) / 1000, median(d, N) / 1000);
}

static void event_round_trip(shim_t *s, const char *opts) {
  dm_job *j = dm_job_new(s->dir, "BenchJob", next_id());
  dm_job_new_plugins(j);
  dm_job_plugin_options(j, opts);
  for (int i = 0; i < 1000; i++) dm_job_event(j, bDirEventJobRun, NULL);
  enum { R = 101 };
  double v[R];
  for (int r = 0; r < R; r++) {
    double t0 = now_us();
    for (int i = 0; i < 1000; i++) dm_job_event(j, bDirEventJobRun, NULL);
    v[r] = (now_us() - t0) / 1000;
  }
  dm_job_free_plugins(j);
  dm_job_free(j);
  printf("  event round trip: %.3f us median (of %d batches of 1000)\n",
         median(v, R), R);
}

typedef struct {
  shim_t *s;
  const char *opts;
  int jobs, extra;
  int *next;
  pthread_mutex_t *lock;
} worker_arg;

static void *worker(void *p) {
  worker_arg *w = p;
  for (;;) {
    pthread_mutex_lock(w->lock);
    int mine = (*w->next)++;
    pthread_mutex_unlock(w->lock);
    if (mine >= w->jobs) return NULL;
    one_job(w->s, w->opts, w->extra, NULL);
  }
}

static double concurrent(shim_t *s, const char *opts, int jobs, int at_once,
                         int extra) {
  pthread_t th[64];
  int next = 0;
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  worker_arg w = {s, opts, jobs, extra, &next, &lock};
  double t0 = now_us();
  for (int i = 0; i < at_once; i++) pthread_create(&th[i], NULL, worker, &w);
  for (int i = 0; i < at_once; i++) pthread_join(th[i], NULL);
  return (now_us() - t0) / 1e6;
}

/* Holds n instances at once (NewPlugins, options, JobStart), then ends
 * them all; prints the RSS growth.  Returns the number of failures. */
static int memory(shim_t *s, const char *opts, int n) {
  dm_job **jobs = calloc((size_t)n, sizeof *jobs);
  one_job(s, opts, 0, NULL);
  long before = rss_kb();
  for (int i = 0; i < n; i++) {
    jobs[i] = dm_job_new(s->dir, "BenchJob", next_id());
    dm_job_new_plugins(jobs[i]);
    dm_job_plugin_options(jobs[i], opts);
    dm_job_event(jobs[i], bDirEventJobStart, NULL);
  }
  long after = rss_kb();
  int bad = 0;
  for (int i = 0; i < n; i++) {
    dm_job_set_int(jobs[i], bDirVarJobStatus, 'T');
    if (dm_job_event(jobs[i], bDirEventJobEnd, NULL) != bRC_OK) bad++;
    dm_job_free_plugins(jobs[i]);
    bad += dm_job_fatal_count(jobs[i]) + dm_job_error_count(jobs[i]);
    dm_job_free(jobs[i]);
  }
  free(jobs);
  printf("  memory: %d instances held at once: %.3f MB each (RSS +%.1f MB)%s\n",
         n, (double)(after - before) / 1024 / n, (double)(after - before) / 1024,
         bad ? ", FAILURES" : ", no failure");
  return bad;
}

static int run(const char *plugin_dir, const char *module_path,
               const char *mode) {
  shim_t s;
  if (load(&s, plugin_dir) < 0) return 1;
  const char *modes[] = {mode};
  int is_main = strcmp(mode, "main") == 0;
  for (int m = 0; m < 1; m++) {
    char trivial[4096], klass[4096];
    bd_fmt(trivial, sizeof trivial,
           "python:module_path=%s:module_name=bench-trivial:interpreter=%s",
           module_path, modes[m]);
    bd_fmt(klass, sizeof klass,
           "python:module_name=bareos-dir-class-plugin:interpreter=%s",
           modes[m]);
    printf("interpreter=%s\n", modes[m]);
    event_round_trip(&s, trivial);
    per_job(&s, "trivial plugin", trivial);
    per_job(&s, "class-based plugin", klass);
    int levels[] = {1, 2, 8, 64};
    for (int l = 0; l < 4; l++) {
      double v[5];
      for (int r = 0; r < 5; r++)
        v[r] = concurrent(&s, trivial, 64, levels[l], 500);
      printf("  64 jobs, %d at once, 500 extra events each: %.3f s median of "
             "5 (%.2f us per event)\n",
             levels[l], median(v, 5), median(v, 5) * 1e6 / (64 * 504));
    }
    (void)klass;
    (void)is_main; /* memory: `hold`, in a fresh process (no pooled
                      interpreters from the phases above) */
  }
  dm_director_unload_plugins(s.dir);
  dlclose(s.handle);
  dm_director_free(s.dir);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "floors") == 0) return floors();
  if (argc >= 5 && strcmp(argv[1], "hold") == 0) {
    shim_t s;
    if (load(&s, argv[2]) < 0) return 1;
    int bad = memory(&s, argv[4], atoi(argv[3]));
    dm_director_unload_plugins(s.dir);
    dlclose(s.handle);
    dm_director_free(s.dir);
    return bad ? 1 : 0;
  }
  if (argc >= 5 && strcmp(argv[1], "jobs") == 0) {
    shim_t s;
    if (load(&s, argv[2]) < 0) return 1;
    for (int i = atoi(argv[3]); i > 0; i--) one_job(&s, argv[4], 0, NULL);
    dm_director_unload_plugins(s.dir);
    dlclose(s.handle);
    dm_director_free(s.dir);
    return 0;
  }
  if (argc >= 5 && strcmp(argv[1], "run") == 0)
    return run(argv[2], argv[3], argv[4]);
  fprintf(stderr, "usage: bareosdir-bench floors | run PLUGIN_DIR "
                  "MODULE_PATH isolated|main | hold|jobs PLUGIN_DIR N "
                  "OPTIONS\n");
  return 2;
}
