/*
 * bareosdir-sim: a Bareos Director in miniature.  It reads a real Director
 * configuration (config.c), loads director plugins the way bareos-dir's
 * LoadPlugins does (Plugin Names or a directory scan, lstat and regular
 * files only, dlopen RTLD_LAZY|RTLD_GLOBAL, loadPlugin, the compatibility
 * checks, unloadPlugin and dlclose after a refused load), runs jobs through
 * them with the director model on the Director's threads (setup thread, job
 * thread, free thread) and prints the messages as the Director logs them.
 * See spec/director-abi.md and `bareosdir-sim --help`.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "catalog.h"
#include "config.h"
#include "director_model.h"
#include "textfmt.h"

#define PLUGIN_SUFFIX "-dir.so"
#define EXIT_FAILED 1
#define EXIT_USAGE 2

typedef struct sim_plugin {
  char *path;
  void *handle;
  bd_unloadPlugin_fn unload;
} sim_plugin;

typedef struct job_result {
  char name[512];
  int created;
  int status;
  int jobend_rc;
  int ran_jobend;
  int options_rejected;
  int plugins_missing; /* options lines for plugins that were not loaded */
  int fatal, errors, warnings; /* counted from the messages as they come */
} job_result;

/* One job as its three threads see it. */
typedef struct job_run {
  dm_job *job;
  job_result *result;
} job_run;

static struct {
  const char *prog;
  const char *config_path;
  const char *job_name;
  bd_config *cfg;
  const bd_config_job *job_res;
  dm_director *dir;
  const char *dir_name;
  int debug_level;
  int rtld_local;
  int level;  /* 0: from the configuration */
  int status; /* set before JobEnd */
  /* A finished job's values, set with the status before JobEnd. */
  int64_t files, bytes, errors;
  int has_files, has_bytes, has_errors;
  double run_time; /* seconds between JobRun and JobEnd */
  unsigned long njobs;
  unsigned long concurrent;
  char **options; /* -o lines, replacing the configured ones */
  size_t noptions;
  sim_plugin *plugins;
  size_t nplugins;
  job_result *results;
  unsigned long next_jobid;
  /* Director-level (JobId 0 or unknown JobId) message counts. */
  int dir_fatal, dir_errors;
  int catalog_mode; /* --catalog: replay the catalog's jobs (catalog.c) */
  int simulated_only; /* an option that sets simulated jobs' values */
  cat_filters cat;
  pthread_mutex_t out_lock; /* output lines and the counters above */
  pthread_mutex_t pool_lock;
} sim = {
    .prog = "bareosdir-sim",
    .status = 'T',
    .njobs = 1,
    .concurrent = 1,
    .next_jobid = 1,
    .out_lock = PTHREAD_MUTEX_INITIALIZER,
    .pool_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- output ---- */

static const char *base_name(const char *path)
{
  const char *s = path ? strrchr(path, '/') : NULL;
  return s ? s + 1 : (path ? path : "?");
}

/* Writes `head` and `text` as one piece, with exactly one final newline. */
static void put_locked(FILE *f, const char *head, const char *text)
{
  size_t n = strlen(text);
  fputs(head, f);
  fputs(text, f);
  if (n == 0 || text[n - 1] != '\n') fputc('\n', f);
  fflush(f);
}

static const char *type_prefix(int type)
{
  switch (type) {
    case M_FATAL:
      return "Fatal error: ";
    case M_ERROR:
      return "Error: ";
    case M_WARNING:
      return "Warning: ";
    case M_SECURITY:
      return "Security violation: ";
    default:
      return "";
  }
}

/* The types the real Director ends the process for. */
static const char *ends_director(int type)
{
  switch (type) {
    case M_ABORT:
      return "ABORTING due to ERROR";
    case M_ERROR_TERM:
      return "ERROR TERMINATION";
    case M_CONFIG_ERROR:
      return "CONFIG ERROR";
    default:
      return NULL;
  }
}

static void count_locked(int *fatal, int *errors, int *warnings, int type)
{
  switch (type) {
    case M_FATAL:
    case M_ABORT:
    case M_ERROR_TERM:
    case M_CONFIG_ERROR:
      (*fatal)++;
      break;
    case M_ERROR:
      (*errors)++;
      break;
    case M_WARNING:
      if (warnings) (*warnings)++;
      break;
    default:
      break;
  }
}

/* A Director log line: "<dir> JobId <N>: <prefix><text>", "<dir>: ..." with
 * no job. */
static void log_job_message(uint32_t jobid, int type, const char *text)
{
  char head[600];
  const char *ends = ends_director(type);
  job_result *r = NULL;

  pthread_mutex_lock(&sim.out_lock);
  if (jobid >= 1 && jobid <= sim.njobs && sim.results)
    r = &sim.results[jobid - 1];
  if (r)
    count_locked(&r->fatal, &r->errors, &r->warnings, type);
  else
    count_locked(&sim.dir_fatal, &sim.dir_errors, NULL, type);
  if (ends) {
    bd_fmt(head, sizeof head, "%s %s\n", sim.dir_name, ends);
    fputs(head, stdout);
  }
  if (jobid)
    bd_fmt(head, sizeof head, "%s JobId %u: %s", sim.dir_name,
           (unsigned)jobid, type_prefix(type));
  else
    bd_fmt(head, sizeof head, "%s: %s", sim.dir_name, type_prefix(type));
  put_locked(stdout, head, text);
  if (ends)
    fprintf(stderr,
            "%s: message type %d would end a real bareos-dir here; the "
            "simulator carries on and counts it as fatal\n",
            sim.prog, type);
  pthread_mutex_unlock(&sim.out_lock);
}

/* "<dir> (<level>): <file>:<line>-<JobId> " as bareos-dir writes it, then
 * "<plugin>:instance=<N>: " for a plugin's line, so that the lines of two
 * instances (or plugins) can be told apart. */
static void log_debug(uint32_t jobid, int level, const char *file, int line,
                      const char *plugin, uint32_t instance, const char *text)
{
  char head[600];

  if (level > sim.debug_level) return;
  if (plugin)
    bd_fmt(head, sizeof head, "%s (%d): %s:%d-%u %.64s:instance=%u: ",
           sim.dir_name, level, base_name(file), line, (unsigned)jobid, plugin,
           (unsigned)instance);
  else
    bd_fmt(head, sizeof head, "%s (%d): %s:%d-%u ", sim.dir_name, level,
           base_name(file), line, (unsigned)jobid);
  pthread_mutex_lock(&sim.out_lock);
  put_locked(stderr, head, text);
  pthread_mutex_unlock(&sim.out_lock);
}

static void dir_message(int type, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void dir_message(int type, const char *fmt, ...)
{
  char text[2048];
  va_list ap;
  va_start(ap, fmt);
  bd_vfmt(text, sizeof text, fmt, ap);
  va_end(ap);
  log_job_message(0, type, text);
}

static void sim_debug(int level, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sim_debug(int level, int line, const char *fmt, ...)
{
  char text[2048];
  va_list ap;
  if (level > sim.debug_level) return;
  va_start(ap, fmt);
  bd_vfmt(text, sizeof text, fmt, ap);
  va_end(ap);
  log_debug(0, level, __FILE__, line, NULL, 0, text);
}

#define DEBUG(level, ...) sim_debug((level), __LINE__, __VA_ARGS__)

/* The director model's sink: every message, from any thread. */
static void message_sink(void *arg, const dm_message *m)
{
  const char *text = m->text ? m->text : "";
  char own[32];
  size_t n;

  (void)arg;
  /* What the model itself says about a job starts "JobId N: ". */
  if (!m->plugin && m->jobid) {
    n = bd_fmt(own, sizeof own, "JobId %u: ", (unsigned)m->jobid);
    if (strncmp(text, own, n) == 0) text += n;
  }
  if (m->kind == DM_MSG_DEBUG)
    log_debug(m->jobid, m->type, m->file, m->line, m->plugin, m->instance,
              text);
  else
    log_job_message(m->jobid, m->type, text);
}

/* ---- loading plugins, as bareos-dir's LoadPlugins does ---- */

static void *sym(void *handle, const char *name)
{
  dlerror();
  return dlsym(handle, name);
}

static void load_one(const char *path, const char *file_name)
{
  int flags = sim.rtld_local ? (RTLD_NOW | RTLD_LOCAL)
                             : (RTLD_LAZY | RTLD_GLOBAL);
  union {
    void *p;
    bd_loadPlugin_fn f;
  } load;
  union {
    void *p;
    bd_unloadPlugin_fn f;
  } unload;
  PluginApiDefinition api;
  PluginInformation *info = NULL;
  PluginFunctions *funcs = NULL;
  char short_name[256], err[512];
  const char *suffix = strstr(file_name, PLUGIN_SUFFIX);
  size_t len = suffix ? (size_t)(suffix - file_name) : strlen(file_name);
  void *handle;
  sim_plugin *np;
  const char *e;
  int rc;

  if (len >= sizeof short_name) len = sizeof short_name - 1;
  memcpy(short_name, file_name, len);
  short_name[len] = '\0';

  DEBUG(50, "loading plugin %s (dlopen %s)", path,
        sim.rtld_local ? "RTLD_NOW|RTLD_LOCAL" : "RTLD_LAZY|RTLD_GLOBAL");
  handle = dlopen(path, flags);
  if (!handle) {
    e = dlerror();
    dir_message(M_ERROR, "dlopen plugin %s failed: ERR=%s\n", path,
                e ? e : "unknown");
    return;
  }
  load.p = sym(handle, "loadPlugin");
  if (!load.p) {
    e = dlerror();
    dir_message(M_ERROR, "Lookup of loadPlugin in plugin %s failed: ERR=%s\n",
                path, e ? e : "unknown");
    dlclose(handle);
    return;
  }
  unload.p = sym(handle, "unloadPlugin");
  if (!unload.p) {
    e = dlerror();
    dir_message(M_ERROR,
                "Lookup of unloadPlugin in plugin %s failed: ERR=%s\n", path,
                e ? e : "unknown");
    dlclose(handle);
    return;
  }

  dm_api_definition(&api);
  /* The plugin gets a non-const pointer, as from bareos-dir; it must not
   * write to the table. */
  rc = load.f(&api, (CoreFunctions *)dm_core_functions(), &info, &funcs);
  if (rc != bRC_OK) {
    /* bareos-dir says nothing of its own here (only a debug line): the
     * plugin is expected to have reported why. */
    DEBUG(50, "Got plugin=%s but not accepted (loadPlugin answered %d)",
          file_name, rc);
    unload.f();
    dlclose(handle);
    return;
  }
  if (dm_director_add_plugin(sim.dir, short_name, info, funcs, unload.f, err,
                             sizeof err) < 0) {
    dir_message(M_ERROR, "%s\n", err);
    DEBUG(50, "Got plugin=%s but not accepted", file_name);
    unload.f();
    dlclose(handle);
    return;
  }
  np = realloc(sim.plugins, (sim.nplugins + 1) * sizeof *np);
  if (!np || !(np[sim.nplugins].path = strdup(path))) {
    if (np) sim.plugins = np;
    fprintf(stderr, "%s: out of memory\n", sim.prog);
    exit(EXIT_FAILED);
  }
  sim.plugins = np;
  np[sim.nplugins].handle = handle;
  np[sim.nplugins].unload = unload.f;
  sim.nplugins++;
  DEBUG(50, "loaded plugin %s as \"%s\"", path, short_name);
}

static int is_regular(const char *path)
{
  struct stat st;
  if (lstat(path, &st) != 0) {
    DEBUG(50, "skipping %s: %s", path, strerror(errno));
    return 0;
  }
  if (!S_ISREG(st.st_mode)) {
    DEBUG(50, "skipping %s: not a regular file%s", path,
          S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
    return 0;
  }
  return 1;
}

static char *join_path(const char *dir, const char *name, const char *suffix)
{
  size_t dl = strlen(dir), nl = strlen(name), sl = strlen(suffix);
  int slash = dl > 0 && dir[dl - 1] != '/';
  char *s = malloc(dl + (size_t)slash + nl + sl + 1);
  if (!s) {
    fprintf(stderr, "%s: out of memory\n", sim.prog);
    exit(EXIT_FAILED);
  }
  memcpy(s, dir, dl);
  if (slash) s[dl] = '/';
  memcpy(s + dl + (size_t)slash, name, nl);
  memcpy(s + dl + (size_t)slash + nl, suffix, sl + 1);
  return s;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_plugins(void)
{
  const bd_config *cfg = sim.cfg;
  const char *dir = cfg->plugin_dir;

  if (!dir) {
    DEBUG(10, "the Director has no Plugin Directory: no plugins are loaded");
    return;
  }
  if (cfg->has_plugin_names && cfg->plugin_names_count > 0) {
    for (size_t i = 0; i < cfg->plugin_names_count; i++) {
      char *path = join_path(dir, cfg->plugin_names[i], PLUGIN_SUFFIX);
      if (is_regular(path)) load_one(path, base_name(path));
      free(path);
    }
    return;
  }

  /* The directory scan: readdir order is the file system's, so sort it to
   * make runs repeatable. */
  {
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, suffix_len = strlen(PLUGIN_SUFFIX);
    size_t before = sim.nplugins;

    if (!d) {
      /* bareos-dir: M_ERROR_TERM, i.e. exit. */
      dir_message(M_ERROR_TERM, "Failed to open Plugin directory %s: ERR=%s\n",
                  dir, strerror(errno));
      exit(EXIT_FAILED);
    }
    while ((de = readdir(d)) != NULL) {
      size_t len = strlen(de->d_name);
      char **nn;
      if (len < suffix_len + 1 ||
          strcmp(de->d_name + len - suffix_len, PLUGIN_SUFFIX) != 0)
        continue;
      nn = realloc(names, (n + 1) * sizeof *nn);
      if (!nn || !(nn[n] = strdup(de->d_name))) {
        fprintf(stderr, "%s: out of memory\n", sim.prog);
        exit(EXIT_FAILED);
      }
      names = nn;
      n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
      char *path = join_path(dir, names[i], "");
      if (is_regular(path)) load_one(path, names[i]);
      free(path);
      free(names[i]);
    }
    free(names);
    if (sim.nplugins == before)
      dir_message(M_WARNING, "Failed to find any plugins in %s\n", dir);
  }
}

/* bareos-dir's UnloadPlugins: in load order, unloadPlugin then dlclose. */
static void unload_plugins(void)
{
  for (size_t i = 0; i < sim.nplugins; i++) {
    DEBUG(50, "unloading plugin %s", sim.plugins[i].path);
    sim.plugins[i].unload();
    dlclose(sim.plugins[i].handle);
    free(sim.plugins[i].path);
  }
  free(sim.plugins);
  sim.plugins = NULL;
  sim.nplugins = 0;
}

/* ---- jobs ---- */

static void set_job_values(dm_job *job)
{
  const bd_config_job *j = sim.job_res;
  int type = j->type ? j->type : 'B';
  int level = sim.level ? sim.level : j->level;

  /* bareos-dir (SetJcrDefaults): Admin and Restore jobs have no level. */
  if (!sim.level && (type == 'D' || type == 'R')) level = ' ';
  if (j->type) dm_job_set_int(job, bDirVarType, j->type);
  if (level) dm_job_set_int(job, bDirVarLevel, level);
  if (j->has_priority) dm_job_set_int(job, bDirVarPriority, j->priority);
  if (j->client) dm_job_set_str(job, bDirVarClient, j->client);
  if (j->pool) dm_job_set_str(job, bDirVarPool, j->pool);
  if (j->storage) {
    /* Restores and verifies read from their storage, the rest write. */
    int var = (type == 'R' || type == 'V') ? bDirVarReadStorage
                                           : bDirVarWriteStorage;
    dm_job_set_str(job, var, j->storage);
  }
}

/* The job "runs" for its --run-time: plugins measure it with their own
 * clocks, as with bareos-dir. */
static void sleep_seconds(double seconds)
{
  struct timespec t;

  if (!(seconds > 0)) return;
  t.tv_sec = (time_t)seconds;
  t.tv_nsec = (long)((seconds - (double)t.tv_sec) * 1e9);
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

/* What a finished job has: files and bytes written (the FD's and the SD's
 * counts alike) and errors, through the director model like every value. */
static void set_end_values(dm_job *job)
{
  if (sim.has_files) {
    dm_job_set_int(job, bDirVarJobFiles, sim.files);
    dm_job_set_int(job, bDirVarSDJobFiles, sim.files);
  }
  if (sim.has_bytes) {
    dm_job_set_int(job, bDirVarJobBytes, sim.bytes);
    dm_job_set_int(job, bDirVarReadBytes, sim.bytes);
  }
  if (sim.has_errors) dm_job_set_int(job, bDirVarJobErrors, sim.errors);
}

static int job_failed(dm_job *job)
{
  int64_t status = 0;
  dm_job_get_int(job, bDirVarJobStatus, &status);
  return status == 'f' || status == 'A';
}

/* The job's own thread: JobRun, the final status, JobEnd.  A fatal message
 * has made the job 'f' (a cancel 'A'): that stays. */
static void *job_thread(void *arg)
{
  job_run *run = arg;
  int64_t status = 0;

  if (!job_failed(run->job)) dm_job_set_int(run->job, bDirVarJobStatus, 'R');
  dm_job_event(run->job, bDirEventJobRun, NULL);
  sleep_seconds(sim.run_time);
  if (!job_failed(run->job))
    dm_job_set_int(run->job, bDirVarJobStatus, sim.status);
  set_end_values(run->job);
  dm_job_get_int(run->job, bDirVarJobStatus, &status);
  run->result->status = (int)status;
  run->result->jobend_rc = dm_job_event(run->job, bDirEventJobEnd, NULL);
  run->result->ran_jobend = 1;
  return NULL;
}

/* Whichever thread frees the job: here a third one. */
static void *free_thread(void *arg)
{
  job_run *run = arg;
  dm_job_free_plugins(run->job);
  dm_job_free(run->job);
  run->job = NULL;
  return NULL;
}

static void on_thread(void *(*fn)(void *), job_run *run, const char *what)
{
  pthread_t t;
  int rc = pthread_create(&t, NULL, fn, run);
  if (rc != 0) {
    fprintf(stderr, "%s: cannot start a %s thread (%s); running it here\n",
            sim.prog, what, strerror(rc));
    fn(run);
    return;
  }
  pthread_join(t, NULL);
}

/* Why plugin `name` (`len` bytes) was not loaded, for the message below. */
static void why_not_loaded(const char *name, size_t len, char *why,
                           size_t whylen)
{
  const bd_config *cfg = sim.cfg;
  struct stat st;

  if (!cfg->plugin_dir) {
    bd_fmt(why, whylen, "the Director has no Plugin Directory");
    return;
  }
  if (stat(cfg->plugin_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    bd_fmt(why, whylen, "the Plugin Directory \"%s\" does not exist",
           cfg->plugin_dir);
    return;
  }
  if (cfg->has_plugin_names && cfg->plugin_names_count > 0) {
    int listed = 0;
    for (size_t i = 0; i < cfg->plugin_names_count; i++)
      if (strlen(cfg->plugin_names[i]) == len &&
          strncmp(cfg->plugin_names[i], name, len) == 0)
        listed = 1;
    if (!listed) {
      bd_fmt(why, whylen, "Plugin Names does not list it");
      return;
    }
  }
  bd_fmt(why, whylen, "no %.*s%s could be loaded from \"%s\" (see -d 50)",
         (int)(len > 200 ? 200 : len), name, PLUGIN_SUFFIX, cfg->plugin_dir);
}

/* 1 when options line `line` names a plugin that was not loaded, with
 * what to tell the administrator in msg; 0 otherwise (a line without ':'
 * is the model's error to report). */
static int plugin_not_loaded(const char *line, char *msg, size_t msglen)
{
  const char *colon = strchr(line, ':');
  size_t len = colon ? (size_t)(colon - line) : strlen(line);
  char why[600];

  if (!colon) return 0;
  for (int k = 0; k < dm_director_plugin_count(sim.dir); k++) {
    const char *name = dm_director_plugin_name(sim.dir, k);
    if (name && strlen(name) == len && strncasecmp(name, line, len) == 0)
      return 0;
  }
  why_not_loaded(line, len, why, sizeof why);
  bd_fmt(msg, msglen,
         "Dir Plugin Options for plugin \"%.*s\", which is not loaded: %s",
         (int)(len > 200 ? 200 : len), line, why);
  return 1;
}

/* bareos-dir passes an options line for a plugin it has not loaded to no
 * one, silently; the simulator, a checking tool, fails the job instead. */
static void check_plugins_loaded(uint32_t jobid, job_result *r,
                                 char *const *lines, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    char msg[1024];
    if (!plugin_not_loaded(lines[i], msg, sizeof msg)) continue;
    r->plugins_missing++;
    pthread_mutex_lock(&sim.out_lock);
    printf("%s: JobId %u: %s\n", sim.prog, (unsigned)jobid, msg);
    fflush(stdout);
    pthread_mutex_unlock(&sim.out_lock);
  }
}

/* Runs on a pool thread, which is the job's setup thread. */
static void run_job(uint32_t jobid)
{
  job_result *r = &sim.results[jobid - 1];
  job_run run = {NULL, r};
  char *const *lines = sim.noptions ? sim.options : sim.job_res->plugin_options;
  size_t nlines =
      sim.noptions ? sim.noptions : sim.job_res->plugin_options_count;

  run.job = dm_job_new(sim.dir, sim.job_res->name, jobid);
  if (!run.job) {
    fprintf(stderr, "%s: JobId %u: cannot create the job\n", sim.prog,
            (unsigned)jobid);
    return;
  }
  r->created = 1;
  if (dm_job_get_str(run.job, bDirVarJobName, r->name, sizeof r->name) != 0)
    bd_fmt(r->name, sizeof r->name, "%s", sim.job_res->name);
  set_job_values(run.job);

  dm_job_new_plugins(run.job);
  check_plugins_loaded(jobid, r, lines, nlines);
  for (size_t i = 0; i < nlines; i++)
    if (dm_job_plugin_options(run.job, lines[i]) < 0) r->options_rejected++;
  dm_job_event(run.job, bDirEventJobStart, NULL);
  dm_job_event(run.job, bDirEventJobInit, NULL);

  on_thread(job_thread, &run, "job");
  on_thread(free_thread, &run, "free");
}

static void *pool_worker(void *arg)
{
  (void)arg;
  for (;;) {
    unsigned long id;
    pthread_mutex_lock(&sim.pool_lock);
    id = sim.next_jobid++;
    pthread_mutex_unlock(&sim.pool_lock);
    if (id > sim.njobs) return NULL;
    run_job((uint32_t)id);
  }
}

static void run_jobs(void)
{
  unsigned long nthreads = sim.concurrent < sim.njobs ? sim.concurrent
                                                      : sim.njobs;
  pthread_t *threads = calloc(nthreads, sizeof *threads);
  unsigned long started = 0;

  if (!threads) {
    fprintf(stderr, "%s: out of memory\n", sim.prog);
    exit(EXIT_FAILED);
  }
  for (unsigned long i = 0; i < nthreads; i++) {
    int rc = pthread_create(&threads[i], NULL, pool_worker, NULL);
    if (rc != 0) {
      fprintf(stderr, "%s: cannot start a pool thread: %s\n", sim.prog,
              strerror(rc));
      break;
    }
    started++;
  }
  if (started == 0) pool_worker(NULL);
  for (unsigned long i = 0; i < started; i++) pthread_join(threads[i], NULL);
  free(threads);
}

static const char *rc_name(int rc)
{
  static const char *const names[] = {"bRC_OK",   "bRC_Stop", "bRC_Error",
                                      "bRC_More", "bRC_Term", "bRC_Seen",
                                      "bRC_Core", "bRC_Skip", "bRC_Cancel"};
  return rc >= 0 && rc <= 8 ? names[rc] : "bRC_?";
}

/* One line per job; returns the number of jobs that did not end well. */
static unsigned long summarize(void)
{
  unsigned long bad = 0;

  for (unsigned long i = 0; i < sim.njobs; i++) {
    job_result *r = &sim.results[i];
    int ok = r->created && r->ran_jobend && r->jobend_rc == bRC_OK &&
             r->fatal == 0 && r->errors == 0 && r->options_rejected == 0 &&
             r->plugins_missing == 0;
    char why[256] = "";
    if (!ok) {
      bad++;
      if (!r->created) {
        bd_fmt(why, sizeof why, " (not created)");
      } else {
        const char *reasons[5];
        size_t n = 0, len = 0;
        if (!r->ran_jobend || r->jobend_rc != bRC_OK)
          reasons[n++] = "JobEnd not bRC_OK";
        if (r->fatal) reasons[n++] = "fatal error messages";
        if (r->errors) reasons[n++] = "error messages";
        if (r->options_rejected) reasons[n++] = "plugin options rejected";
        if (r->plugins_missing) reasons[n++] = "plugins not loaded";
        for (size_t k = 0; k < n; k++)
          bd_fmt_at(why, sizeof why, &len, "%s%s%s", k ? ", " : " (",
                    reasons[k], k + 1 == n ? ")" : "");
      }
    }
    printf("%s: JobId %lu (%s): %s%s, status %c, JobEnd %s, %d fatal, %d "
           "error, %d warning messages\n",
           sim.prog, i + 1, r->name[0] ? r->name : sim.job_name,
           ok ? "OK" : "FAILED", why, r->status ? r->status : '-',
           r->ran_jobend ? rc_name(r->jobend_rc) : "not run", r->fatal,
           r->errors, r->warnings);
  }
  if (sim.dir_fatal || sim.dir_errors)
    printf("%s: the Director logged %d fatal and %d error messages outside "
           "of jobs\n",
           sim.prog, sim.dir_fatal, sim.dir_errors);
  printf("%s: %lu of %lu jobs OK\n", sim.prog, sim.njobs - bad, sim.njobs);
  fflush(stdout);
  return bad;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
  fprintf(f,
          "usage: %s -c CONFIG -j JOBNAME [options]\n"
          "       %s -c CONFIG --catalog[=NAME] [filters] [options]\n"
          "\n"
          "Loads the director plugins of a Bareos Director configuration as\n"
          "bareos-dir does and runs jobs of one Job resource through them.\n"
          "\n"
          "  -c, --config CONFIG   bareos-dir.conf, or a directory holding\n"
          "                        bareos-dir.conf or bareos-dir.d/\n"
          "  -j, --job JOBNAME     the Job resource to run\n"
          "  -o, --options TEXT    a Dir Plugin Options line; repeat for more;\n"
          "                        replaces the Job's configured lines\n"
          "      --level LEVEL     F, I, D, Full, Incremental, Differential, ...\n"
          "      --status C        job status set before JobEnd (default T)\n"
          "      --files N         files the finished job saved (JobFiles)\n"
          "      --bytes N         bytes it saved (JobBytes)\n"
          "      --errors N        its error count (JobErrors)\n"
          "      --run-time SECONDS  time between JobRun and JobEnd (the\n"
          "                        simulator waits it; at most 3600)\n"
          "      --jobs N          run N jobs, JobIds 1..N (default 1)\n"
          "      --concurrent N    run up to N jobs at once (default 1)\n"
          "  -d, --debug LEVEL     print debug messages up to LEVEL on stderr\n"
          "      --dlopen-local    open plugins RTLD_NOW|RTLD_LOCAL instead of\n"
          "                        RTLD_LAZY|RTLD_GLOBAL (also: environment\n"
          "                        BAREOSDIR_SIM_RTLD_LOCAL=1)\n"
          "  -h, --help            this text\n"
          "\n"
          "Replaying the jobs of the catalog (the first Catalog resource, or\n"
          "NAME) in JobId order, each with its Job's Dir Plugin Options now:\n"
          "      --catalog[=NAME]  read the jobs from the catalog, read-only\n"
          "      --since WHEN      StartTime from WHEN on: an age (24h, 30m,\n"
          "                        7d, 2w) or a date YYYY-MM-DD [HH:MM[:SS]]\n"
          "  -j, --job NAME        only jobs of this name\n"
          "      --jobid N|A-B     only these JobIds (A-, -B: open ranges)\n"
          "      --job-status LETTERS  only jobs with these JobStatus letters\n"
          "      --limit N         at most N jobs\n"
          "      --json            the job log and summary as one JSON document\n"
          "      --connect-timeout S, --query-timeout S  (default 10, 60)\n"
          "  -o lines apply to every job, also to those whose Job resource is\n"
          "  gone (skipped without -o).\n"
          "\n"
          "The simulator is a checking tool and deliberately stricter than\n"
          "bareos-dir: it refuses directives and resource types bareos-dir\n"
          "does not know (Bareos 20 to 25 and its development branch), a\n"
          "quoted string left open at the end of its line, and a job whose\n"
          "Dir Plugin Options name a plugin that was not loaded (bareos-dir\n"
          "only logs a missing Plugin Directory and runs the job without it).\n"
          "\n"
          "Exit status: 0 when every job ended without fatal or error\n"
          "messages, every JobEnd answered bRC_OK and every plugin its\n"
          "options name was loaded (and the Director logged no errors of its\n"
          "own), 1 otherwise, 2 for usage or\n"
          "configuration errors (and, with --catalog, when the catalog cannot\n"
          "be read).\n",
          sim.prog, sim.prog);
}

static int parse_count(const char *opt, const char *text, unsigned long min,
                       unsigned long max, unsigned long *out)
{
  char *end;
  unsigned long v;
  errno = 0;
  v = strtoul(text, &end, 10);
  if (!*text || *end || errno || text[0] == '-' || v < min || v > max) {
    fprintf(stderr, "%s: %s wants a number from %lu to %lu, not \"%s\"\n",
            sim.prog, opt, min, max, text);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv)
{
  enum { OPT_LEVEL = 256, OPT_STATUS, OPT_JOBS, OPT_CONCURRENT, OPT_LOCAL,
         OPT_CATALOG, OPT_CAT_FILTER, OPT_JSON, OPT_FILES, OPT_BYTES,
         OPT_ERRORS, OPT_RUN_TIME };
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'},
      {"job", required_argument, NULL, 'j'},
      {"options", required_argument, NULL, 'o'},
      {"debug", required_argument, NULL, 'd'},
      {"help", no_argument, NULL, 'h'},
      {"level", required_argument, NULL, OPT_LEVEL},
      {"status", required_argument, NULL, OPT_STATUS},
      {"jobs", required_argument, NULL, OPT_JOBS},
      {"concurrent", required_argument, NULL, OPT_CONCURRENT},
      {"dlopen-local", no_argument, NULL, OPT_LOCAL},
      {"files", required_argument, NULL, OPT_FILES},
      {"bytes", required_argument, NULL, OPT_BYTES},
      {"errors", required_argument, NULL, OPT_ERRORS},
      {"run-time", required_argument, NULL, OPT_RUN_TIME},
      {"catalog", optional_argument, NULL, OPT_CATALOG},
      {"json", no_argument, NULL, OPT_JSON},
      /* catalog.c reads these by name */
      {"since", required_argument, NULL, OPT_CAT_FILTER},
      {"jobid", required_argument, NULL, OPT_CAT_FILTER},
      {"job-status", required_argument, NULL, OPT_CAT_FILTER},
      {"limit", required_argument, NULL, OPT_CAT_FILTER},
      {"connect-timeout", required_argument, NULL, OPT_CAT_FILTER},
      {"query-timeout", required_argument, NULL, OPT_CAT_FILTER},
      {NULL, 0, NULL, 0}};
  char err[512];
  int idx = 0;
  const char *env = getenv("BAREOSDIR_SIM_RTLD_LOCAL");
  unsigned long v;
  int c;

  if (env && *env && strcmp(env, "0") != 0) sim.rtld_local = 1;
  while ((c = getopt_long(argc, argv, "c:j:o:d:h", longopts, &idx)) != -1) {
    if (c == OPT_LEVEL || c == OPT_STATUS || c == OPT_JOBS ||
        c == OPT_CONCURRENT || c == OPT_FILES || c == OPT_BYTES ||
        c == OPT_ERRORS || c == OPT_RUN_TIME)
      sim.simulated_only = 1;
    switch (c) {
      case 'c':
        sim.config_path = optarg;
        break;
      case 'j':
        sim.job_name = optarg;
        break;
      case 'o': {
        char **n = realloc(sim.options, (sim.noptions + 1) * sizeof *n);
        if (!n) return -1;
        sim.options = n;
        sim.options[sim.noptions++] = optarg;
        break;
      }
      case 'd':
        if (parse_count("-d", optarg, 0, INT_MAX, &v)) return -1;
        sim.debug_level = (int)v;
        break;
      case 'h':
        usage(stdout);
        exit(0);
      case OPT_LEVEL:
        sim.level = bd_config_level_code(optarg);
        if (!sim.level) {
          fprintf(stderr,
                  "%s: unknown level \"%s\" (F, I, D, Full, Incremental, "
                  "Differential, VirtualFull, Base, Since, ...)\n",
                  sim.prog, optarg);
          return -1;
        }
        break;
      case OPT_STATUS:
        if (!((optarg[0] | 32) >= 'a' && (optarg[0] | 32) <= 'z') ||
            optarg[1]) {
          fprintf(stderr,
                  "%s: --status wants one job status letter (T, E, f, A, W, "
                  "...), not \"%s\"\n",
                  sim.prog, optarg);
          return -1;
        }
        sim.status = optarg[0];
        break;
      case OPT_JOBS:
        if (parse_count("--jobs", optarg, 1, 1000000, &sim.njobs)) return -1;
        break;
      case OPT_CONCURRENT:
        if (parse_count("--concurrent", optarg, 1, 1024, &sim.concurrent))
          return -1;
        break;
      case OPT_LOCAL:
        sim.rtld_local = 1;
        break;
      case OPT_FILES:
        if (parse_count("--files", optarg, 0, INT64_MAX, &v)) return -1;
        sim.files = (int64_t)v;
        sim.has_files = 1;
        break;
      case OPT_BYTES:
        if (parse_count("--bytes", optarg, 0, INT64_MAX, &v)) return -1;
        sim.bytes = (int64_t)v;
        sim.has_bytes = 1;
        break;
      case OPT_ERRORS:
        if (parse_count("--errors", optarg, 0, INT32_MAX, &v)) return -1;
        sim.errors = (int64_t)v;
        sim.has_errors = 1;
        break;
      case OPT_RUN_TIME: {
        char *end;
        double d;
        errno = 0;
        d = strtod(optarg, &end);
        if (!*optarg || *end || errno || !(d >= 0 && d <= 3600)) {
          fprintf(stderr,
                  "%s: --run-time wants seconds from 0 to 3600, not \"%s\"\n",
                  sim.prog, optarg);
          return -1;
        }
        sim.run_time = d;
        break;
      }
      case OPT_CATALOG:
        sim.catalog_mode = 1;
        sim.cat.catalog = optarg;
        break;
      case OPT_JSON:
        sim.cat.json = 1;
        break;
      case OPT_CAT_FILTER:
        if (cat_option(&sim.cat, longopts[idx].name, optarg, err,
                       sizeof err)) {
          fprintf(stderr, "%s: %s\n", sim.prog, err);
          return -1;
        }
        sim.catalog_mode |= 2; /* refused below without --catalog */
        break;
      default:
        usage(stderr);
        return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "%s: unexpected argument \"%s\"\n", sim.prog, argv[optind]);
    return -1;
  }
  if (sim.catalog_mode || sim.cat.json) {
    if (!(sim.catalog_mode & 1)) { /* a filter or --json alone */
      fprintf(stderr, "%s: --since, --jobid, --job-status, --limit, --json "
                      "and the timeouts go with --catalog\n", sim.prog);
      return -1;
    }
    if (sim.simulated_only) {
      fprintf(stderr, "%s: --level, --status, --files, --bytes, --errors, "
                      "--run-time, --jobs and --concurrent set "
                      "simulated jobs' values; --catalog replays the "
                      "catalog's (select with --job-status, --limit)\n",
              sim.prog);
      return -1;
    }
    sim.cat.job_name = sim.job_name;
    if (!sim.config_path) {
      fprintf(stderr, "%s: -c CONFIG is required (see --help)\n", sim.prog);
      return -1;
    }
    return 0;
  }
  if (!sim.config_path || !sim.job_name) {
    fprintf(stderr, "%s: -c CONFIG and -j JOBNAME are required (see --help)\n",
            sim.prog);
    return -1;
  }
  return 0;
}

static void list_jobs(FILE *f)
{
  for (size_t i = 0; i < sim.cfg->jobs_count; i++)
    fprintf(f, "%s\"%s\"", i ? ", " : "", sim.cfg->jobs[i].name);
}

/* --catalog: connect first (a bad catalog fails before Python starts). */
static int replay_catalog(void)
{
  char err[1024];
  cat_host host;
  cat_session *s = cat_open(sim.cfg, &sim.cat, err, sizeof err);
  int rc;

  if (!s) {
    fprintf(stderr, "%s: %s\n", sim.prog, err);
    bd_config_free(sim.cfg);
    return EXIT_USAGE;
  }
  sim.dir = dm_director_new(sim.cfg->director_name, sim.cfg->plugin_dir);
  if (!sim.dir) {
    fprintf(stderr, "%s: out of memory\n", sim.prog);
    return EXIT_FAILED;
  }
  sim.dir_name = dm_director_name(sim.dir);
  host = (cat_host){sim.prog,     sim.cfg,      sim.dir,
                    sim.options,  sim.noptions, message_sink,
                    NULL,         plugin_not_loaded};
  cat_attach(s, &host);
  load_plugins();
  rc = cat_replay(s);
  unload_plugins();
  dm_director_free(sim.dir);
  cat_close(s);
  bd_config_free(sim.cfg);
  free(sim.options);
  return rc;
}

int main(int argc, char **argv)
{
  char err[1024];
  unsigned long bad;

  if (parse_args(argc, argv)) return EXIT_USAGE;

  sim.cfg = bd_config_load(sim.config_path, err, sizeof err);
  if (!sim.cfg) {
    fprintf(stderr, "%s: %s\n", sim.prog, err);
    return EXIT_USAGE;
  }
  for (size_t i = 0; i < sim.cfg->warnings_count; i++)
    fprintf(stderr, "%s: warning: %s\n", sim.prog, sim.cfg->warnings[i]);
  if (!sim.cfg->has_director) {
    fprintf(stderr, "%s: %s: no Director resource\n", sim.prog,
            sim.config_path);
    bd_config_free(sim.cfg);
    return EXIT_USAGE;
  }
  if (sim.catalog_mode & 1) return replay_catalog();
  sim.job_res = bd_config_find_job(sim.cfg, sim.job_name);
  if (!sim.job_res) {
    fprintf(stderr, "%s: %s: no Job resource named \"%s\" (Jobs: ", sim.prog,
            sim.config_path, sim.job_name);
    list_jobs(stderr);
    fprintf(stderr, ")\n");
    bd_config_free(sim.cfg);
    return EXIT_USAGE;
  }
  sim.results = calloc(sim.njobs, sizeof *sim.results);
  sim.dir = dm_director_new(sim.cfg->director_name, sim.cfg->plugin_dir);
  if (!sim.results || !sim.dir) {
    fprintf(stderr, "%s: out of memory\n", sim.prog);
    return EXIT_FAILED;
  }
  sim.dir_name = dm_director_name(sim.dir);
  dm_director_set_sink(sim.dir, message_sink, NULL);

  load_plugins();
  run_jobs();
  unload_plugins();

  bad = summarize();
  dm_director_free(sim.dir);
  bd_config_free(sim.cfg);
  free(sim.results);
  free(sim.options);
  return (bad || sim.dir_fatal || sim.dir_errors) ? EXIT_FAILED : 0;
}
