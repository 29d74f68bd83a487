/*
 * The Director's side of the plugin interface, modelled on bareos-dir's
 * dir_plugins.cc (see spec/director-abi.md): the CoreFunctions callbacks a
 * plugin calls, the per-context event bitmasks, the instance matching of
 * `Dir Plugin Options`, the return-code rules of event delivery, the job
 * values plugins read and write, and a record of every message and every
 * plugin call so tests can look at what happened.  Which thread runs which
 * step of a job is the caller's business.
 *
 * Locking: each director and each job has one mutex.  A job's lock is never
 * held while taking a director's lock; the only nesting is director then job
 * (getInstanceCount walks the director's jobs).  No lock is held while a
 * plugin function or the message sink runs, so both may call back in.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "director_model.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "options.h"
#include "textfmt.h"

/* Tells our contexts from whatever else a plugin might hand back. */
#define DM_CTX_MAGIC 0x646d6378u
#define DM_EVENT_BITS 64
#define DM_WVAR_MAX 4
/* A message longer than this (16 MB) is stored cut, ending in "...". */
#define DM_TEXT_MAX ((size_t)16 << 20)

typedef struct msg_list {
  dm_message *v;
  size_t n, cap;
} msg_list;

typedef struct dm_plugin {
  char *name; /* short name, "python" */
  char *file; /* "python-dir.so", what Plugin.file points to */
  Plugin plugin;
  PluginFunctions *funcs;
  bRC (*unload)(void);
  int unloaded;
} dm_plugin;

struct dm_director {
  pthread_mutex_t lock; /* plugins, msgs, jobs, sink */
  char *name;
  char *plugin_dir;
  dm_plugin **plugins;
  int nplugins, capplugins;
  msg_list msgs;
  dm_job *jobs;
  dm_message_sink sink;
  void *sink_arg;
  unsigned job_message_delay_ms; /* each JobMessage callback takes this long */
  /* process registry, guarded by registry_lock */
  dm_director *older;
  int users;
};

typedef struct dm_ctx {
  PluginContext pc; /* what the plugin sees; pc.core_private_context = us */
  uint32_t magic;
  dm_job *job;
  int plugin_index; /* -1 for a bare context without plugin */
  const char *plugin_name;
  uint64_t events;
  int disabled; /* newPlugin failed, or the plugin answered bRC_Term */
} dm_ctx;

typedef struct ptr_list {
  void **v;
  size_t n, cap;
} ptr_list;

struct dm_job {
  pthread_mutex_t lock;
  dm_director *dir;
  dm_job *next; /* in dir->jobs */
  char *str[BD_DIR_VAR_MAX + 1];
  int64_t num[BD_DIR_VAR_MAX + 1];
  /* Replaced strings stay allocated until the job ends: a plugin thread may
   * still hold the char* that getBareosValue handed out. */
  ptr_list old_strings;
  int set_counts[DM_WVAR_MAX + 1];
  ptr_list ctxs;  /* dm_ctx*, in creation (= delivery) order */
  ptr_list freed; /* dm_ctx* after freePlugin, kept for late callbacks */
  int callbacks;  /* JobMessage callbacks inside the model now */
  pthread_cond_t idle; /* callbacks reached 0 */
  ptr_list bare;  /* dm_ctx* made by dm_job_bare_context */
  unsigned char *terminated; /* by plugin index: answered bRC_Term */
  size_t nterminated;
  int plugins_created;
  int canceled;
  msg_list msgs;
  dm_call *calls;
  size_t ncalls, capcalls;
  int fatal, errors, warnings;
};

/*
 * The one piece of process-wide state.  A plugin may call JobMessage,
 * DebugMessage or getBareosValue(bDirVarPluginDir) with a NULL context
 * (before any job exists), and nothing in such a call says which director
 * it is for.  The real Director is a process singleton; the model answers
 * such calls from the newest director still alive, which is the only one in
 * the simulator and the current one in a test.  `users` keeps a director
 * alive while such a call is inside it.
 */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t registry_idle = PTHREAD_COND_INITIALIZER;
static dm_director *registry_newest;

static dm_director *registry_acquire(void) {
  dm_director *dir;
  pthread_mutex_lock(&registry_lock);
  dir = registry_newest;
  if (dir != NULL) dir->users++;
  pthread_mutex_unlock(&registry_lock);
  return dir;
}

static void registry_release(dm_director *dir) {
  pthread_mutex_lock(&registry_lock);
  if (--dir->users == 0) pthread_cond_broadcast(&registry_idle);
  pthread_mutex_unlock(&registry_lock);
}

static void registry_add(dm_director *dir) {
  pthread_mutex_lock(&registry_lock);
  dir->older = registry_newest;
  registry_newest = dir;
  pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(dm_director *dir) {
  dm_director **pp;
  pthread_mutex_lock(&registry_lock);
  for (pp = &registry_newest; *pp != NULL; pp = &(*pp)->older) {
    if (*pp == dir) {
      *pp = dir->older;
      break;
    }
  }
  while (dir->users > 0) pthread_cond_wait(&registry_idle, &registry_lock);
  pthread_mutex_unlock(&registry_lock);
}

/* Small helpers. */

static char *dup_str(const char *s) {
  size_t n;
  char *d;
  if (s == NULL) return NULL;
  n = strlen(s);
  d = malloc(n + 1);
  if (d != NULL) memcpy(d, s, n + 1);
  return d;
}

static int ascii_lower(int c) {
  return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int ascii_ncaseeq(const char *a, const char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
      return 0;
    if (a[i] == '\0') return 1;
  }
  return 1;
}

/* Grows the array whose pointer is at `arrp` (elements of `size` bytes) to
 * hold at least `need`.  The pointer is read and written with memcpy so any
 * element pointer type can be passed. */
static int grow(void *arrp, size_t *cap, size_t need, size_t size) {
  size_t ncap;
  void *old, *nv;
  if (need <= *cap) return 0;
  ncap = *cap ? *cap : 8;
  while (ncap < need) {
    if (ncap > ((size_t)-1) / 2 / size) return -1;
    ncap *= 2;
  }
  memcpy(&old, arrp, sizeof old);
  nv = realloc(old, ncap * size);
  if (nv == NULL) return -1;
  memcpy(arrp, &nv, sizeof nv);
  *cap = ncap;
  return 0;
}

static int ptr_push(ptr_list *l, void *p) {
  if (grow(&l->v, &l->cap, l->n + 1, sizeof *l->v) != 0) return -1;
  l->v[l->n++] = p;
  return 0;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 0)))
#endif
static char *
vformat(const char *fmt, va_list ap) {
  return bd_vafmt(DM_TEXT_MAX, NULL, fmt, ap);
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
static char *
format(const char *fmt, ...) {
  va_list ap;
  char *s;
  va_start(ap, fmt);
  s = vformat(fmt, ap);
  va_end(ap);
  return s;
}

/* Takes ownership of m->text and m->file (as non-const copies). */
static int msg_push(msg_list *l, const dm_message *m) {
  if (grow(&l->v, &l->cap, l->n + 1, sizeof *l->v) != 0) return -1;
  l->v[l->n++] = *m;
  return 0;
}

static void msg_free_all(msg_list *l) {
  size_t i;
  for (i = 0; i < l->n; i++) {
    free((char *)l->v[i].text);
    free((char *)l->v[i].file);
  }
  free(l->v);
  memset(l, 0, sizeof *l);
}

static dm_ctx *ctx_of(const PluginContext *ctx) {
  dm_ctx *c;
  if (ctx == NULL || ctx->core_private_context == NULL) return NULL;
  c = (dm_ctx *)ctx->core_private_context;
  return c->magic == DM_CTX_MAGIC ? c : NULL;
}

static dm_plugin *plugin_at(dm_director *dir, int index) {
  dm_plugin *p = NULL;
  pthread_mutex_lock(&dir->lock);
  if (index >= 0 && index < dir->nplugins) p = dir->plugins[index];
  pthread_mutex_unlock(&dir->lock);
  return p;
}

static void deliver_to_sink(dm_director *dir, const dm_message *m) {
  dm_message_sink sink;
  void *arg;
  pthread_mutex_lock(&dir->lock);
  sink = dir->sink;
  arg = dir->sink_arg;
  pthread_mutex_unlock(&dir->lock);
  if (sink != NULL) sink(arg, m);
}

/*
 * Stores a message in the director's own list (the daemon log) and passes it
 * to the sink.  Takes ownership of `text`.  Used for NULL-context messages
 * and for what the director itself has to say about a job.
 */
static int director_store(dm_director *dir, dm_msg_kind kind, int type,
                          uint32_t jobid, const char *plugin, uint32_t instance,
                          const char *file, int line, char *text) {
  dm_message m;
  char *file_copy = NULL;
  int rc;
  if (text == NULL) return -1;
  if (file != NULL && (file_copy = dup_str(file)) == NULL) {
    free(text);
    return -1;
  }
  m.kind = kind;
  m.type = type;
  m.jobid = jobid;
  m.plugin = plugin;
  m.instance = instance;
  m.file = file_copy;
  m.line = line;
  m.text = text;
  pthread_mutex_lock(&dir->lock);
  rc = msg_push(&dir->msgs, &m);
  pthread_mutex_unlock(&dir->lock);
  if (rc != 0) {
    free(text);
    free(file_copy);
    return -1;
  }
  deliver_to_sink(dir, &m);
  return 0;
}

/* One line for the log: control characters of user text become '?'. */
static void one_line(char *s) {
  for (; s != NULL && *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f) *s = '?';
  }
}

/* The director. */

dm_director *dm_director_new(const char *name, const char *plugin_dir) {
  dm_director *dir = calloc(1, sizeof *dir);
  if (dir == NULL) return NULL;
  if (pthread_mutex_init(&dir->lock, NULL) != 0) {
    free(dir);
    return NULL;
  }
  dir->name = dup_str(name != NULL ? name : "bareos-dir");
  dir->plugin_dir = dup_str(plugin_dir);
  if (dir->name == NULL || (plugin_dir != NULL && dir->plugin_dir == NULL)) {
    free(dir->name);
    free(dir->plugin_dir);
    pthread_mutex_destroy(&dir->lock);
    free(dir);
    return NULL;
  }
  registry_add(dir);
  return dir;
}

/*
 * Jobs still alive are freed too (without calling their plugins): they
 * point at this director.  The caller must not use them afterwards.
 */
void dm_director_free(dm_director *dir) {
  int i;
  if (dir == NULL) return;
  registry_remove(dir);
  for (;;) {
    dm_job *job;
    pthread_mutex_lock(&dir->lock);
    job = dir->jobs;
    pthread_mutex_unlock(&dir->lock);
    if (job == NULL) break;
    dm_job_free(job);
  }
  for (i = 0; i < dir->nplugins; i++) {
    free(dir->plugins[i]->name);
    free(dir->plugins[i]->file);
    free(dir->plugins[i]);
  }
  free(dir->plugins);
  msg_free_all(&dir->msgs);
  free(dir->name);
  free(dir->plugin_dir);
  pthread_mutex_destroy(&dir->lock);
  free(dir);
}

void dm_director_set_job_message_delay(dm_director *dir, unsigned ms) {
  pthread_mutex_lock(&dir->lock);
  dir->job_message_delay_ms = ms;
  pthread_mutex_unlock(&dir->lock);
}

const char *dm_director_name(const dm_director *dir) {
  return dir != NULL ? dir->name : NULL;
}

void dm_director_set_sink(dm_director *dir, dm_message_sink sink, void *arg) {
  if (dir == NULL) return;
  pthread_mutex_lock(&dir->lock);
  dir->sink = sink;
  dir->sink_arg = arg;
  pthread_mutex_unlock(&dir->lock);
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void
set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errlen == 0) return;
  va_start(ap, fmt);
  bd_vfmt(err, errlen, fmt, ap);
  va_end(ap);
}

static const char *or_null(const char *s) { return s != NULL ? s : "(null)"; }

/* The checks of bareos-dir's IsPluginCompatible, plus what would crash it. */
static int check_plugin_info(const char *name, const PluginInformation *info,
                             const PluginFunctions *funcs, char *err,
                             size_t errlen) {
  if (info == NULL) {
    set_err(err, errlen, "plugin %s: no PluginInformation (NULL)", name);
    return -1;
  }
  if (info->size != sizeof(PluginInformation)) {
    set_err(err, errlen,
            "plugin %s: PluginInformation size is %u, the director wants %u",
            name, (unsigned)info->size, (unsigned)sizeof(PluginInformation));
    return -1;
  }
  if (info->version != BD_DIR_PLUGIN_INTERFACE_VERSION) {
    set_err(err, errlen,
            "plugin %s: interface version is %u, the director wants %d", name,
            (unsigned)info->version, BD_DIR_PLUGIN_INTERFACE_VERSION);
    return -1;
  }
  if (info->plugin_magic == NULL ||
      strcmp(info->plugin_magic, BD_DIR_PLUGIN_MAGIC) != 0) {
    set_err(err, errlen,
            "plugin %s: magic is \"%s\", the director wants \"%s\"", name,
            or_null(info->plugin_magic), BD_DIR_PLUGIN_MAGIC);
    return -1;
  }
  if (info->plugin_license == NULL ||
      !((strlen(info->plugin_license) == 13 &&
         ascii_ncaseeq(info->plugin_license, "Bareos AGPLv3", 13)) ||
        (strlen(info->plugin_license) == 6 &&
         ascii_ncaseeq(info->plugin_license, "AGPLv3", 6)))) {
    set_err(err, errlen,
            "plugin %s: license \"%s\" is incompatible (the director wants "
            "\"Bareos AGPLv3\" or \"AGPLv3\")",
            name, or_null(info->plugin_license));
    return -1;
  }
  if (funcs == NULL || funcs->newPlugin == NULL || funcs->freePlugin == NULL ||
      funcs->handlePluginEvent == NULL) {
    set_err(err, errlen,
            "plugin %s: PluginFunctions %s (newPlugin, freePlugin and "
            "handlePluginEvent are called for every job)",
            name, funcs == NULL ? "missing" : "has a NULL entry");
    return -1;
  }
  return 0;
}

int dm_director_add_plugin(dm_director *dir, const char *name,
                           const PluginInformation *info,
                           PluginFunctions *funcs, bRC (*unload)(void),
                           char *err, size_t errlen) {
  dm_plugin *p;
  size_t len;
  int i, index;

  if (err != NULL && errlen > 0) err[0] = '\0';
  if (dir == NULL || name == NULL || name[0] == '\0') {
    set_err(err, errlen, "a plugin needs a director and a short name");
    return -1;
  }
  if (check_plugin_info(name, info, funcs, err, errlen) != 0) return -1;

  len = strlen(name);
  p = calloc(1, sizeof *p);
  if (p == NULL) goto nomem;
  p->name = dup_str(name);
  p->file = format("%s-dir.so", name);
  if (p->name == NULL || p->file == NULL) goto nomem;
  p->plugin.file = p->file;
  p->plugin.file_len = (int32_t)len;
  p->plugin.unloadPlugin = unload;
  p->plugin.plugin_information = (void *)info;
  p->plugin.plugin_functions = funcs;
  p->plugin.plugin_handle = NULL;
  p->funcs = funcs;
  p->unload = unload;

  pthread_mutex_lock(&dir->lock);
  for (i = 0; i < dir->nplugins; i++) {
    if (strlen(dir->plugins[i]->name) == len &&
        ascii_ncaseeq(dir->plugins[i]->name, name, len)) {
      pthread_mutex_unlock(&dir->lock);
      set_err(err, errlen, "plugin %s: a plugin of that name is loaded", name);
      free(p->name);
      free(p->file);
      free(p);
      return -1;
    }
  }
  {
    size_t cap = (size_t)dir->capplugins;
    if (grow(&dir->plugins, &cap, (size_t)dir->nplugins + 1,
             sizeof *dir->plugins) != 0) {
      pthread_mutex_unlock(&dir->lock);
      goto nomem;
    }
    dir->capplugins = (int)cap;
  }
  index = dir->nplugins;
  dir->plugins[dir->nplugins++] = p;
  pthread_mutex_unlock(&dir->lock);
  return index;

nomem:
  if (p != NULL) {
    free(p->name);
    free(p->file);
    free(p);
  }
  set_err(err, errlen, "plugin %s: out of memory", name);
  return -1;
}

int dm_director_plugin_count(const dm_director *dir) {
  int n;
  dm_director *d = (dm_director *)dir; /* the lock is ours to take */
  if (d == NULL) return 0;
  pthread_mutex_lock(&d->lock);
  n = d->nplugins;
  pthread_mutex_unlock(&d->lock);
  return n;
}

const char *dm_director_plugin_name(const dm_director *dir, int index) {
  dm_plugin *p;
  if (dir == NULL) return NULL;
  p = plugin_at((dm_director *)dir, index);
  return p != NULL ? p->name : NULL;
}

void dm_director_unload_plugins(dm_director *dir) {
  int i;
  if (dir == NULL) return;
  for (i = dm_director_plugin_count(dir) - 1; i >= 0; i--) {
    dm_plugin *p = plugin_at(dir, i);
    bRC (*unload)(void) = NULL;
    pthread_mutex_lock(&dir->lock);
    if (!p->unloaded) {
      p->unloaded = 1;
      unload = p->unload;
    }
    pthread_mutex_unlock(&dir->lock);
    if (unload != NULL) unload();
  }
}

size_t dm_director_message_count(dm_director *dir) {
  size_t n;
  if (dir == NULL) return 0;
  pthread_mutex_lock(&dir->lock);
  n = dir->msgs.n;
  pthread_mutex_unlock(&dir->lock);
  return n;
}

int dm_director_message(dm_director *dir, size_t i, dm_message *out) {
  int rc = -1;
  if (dir == NULL || out == NULL) return -1;
  pthread_mutex_lock(&dir->lock);
  if (i < dir->msgs.n) {
    *out = dir->msgs.v[i];
    rc = 0;
  }
  pthread_mutex_unlock(&dir->lock);
  return rc;
}

/* Jobs: values. */

enum { KIND_NONE = 0, KIND_STR = 1, KIND_INT = 2 };

static int var_kind(int var) {
  switch (var) {
    case bDirVarJob:
    case bDirVarClient:
    case bDirVarPool:
    case bDirVarStorage:
    case bDirVarWriteStorage:
    case bDirVarReadStorage:
    case bDirVarCatalog:
    case bDirVarMediaType:
    case bDirVarJobName:
    case bDirVarVolumeName:
      return KIND_STR;
    case bDirVarLevel:
    case bDirVarType:
    case bDirVarJobId:
    case bDirVarNumVols:
    case bDirVarJobStatus:
    case bDirVarPriority:
    case bDirVarJobErrors:
    case bDirVarJobFiles:
    case bDirVarSDJobFiles:
    case bDirVarSDErrors:
    case bDirVarFDJobStatus:
    case bDirVarSDJobStatus:
    case bDirVarLastRate:
    case bDirVarJobBytes:
    case bDirVarReadBytes:
      return KIND_INT;
    default:
      return KIND_NONE;
  }
}

/* bDirVarStorage is the write storage when set; reading it falls back to
 * the read storage. Called with the job locked. */
static const char *job_str_locked(dm_job *job, int var) {
  if (var == bDirVarStorage) {
    return job->str[bDirVarWriteStorage] != NULL ? job->str[bDirVarWriteStorage]
                                                 : job->str[bDirVarReadStorage];
  }
  return job->str[var];
}

/* Called with the job locked. */
static int job_set_str_locked(dm_job *job, int var, const char *value) {
  char *copy = NULL;
  if (var == bDirVarStorage) var = bDirVarWriteStorage;
  if (value != NULL && (copy = dup_str(value)) == NULL) return -1;
  if (job->str[var] != NULL &&
      ptr_push(&job->old_strings, job->str[var]) != 0) {
    free(copy);
    return -1;
  }
  job->str[var] = copy;
  return 0;
}

static uint32_t job_id_locked(const dm_job *job) {
  return (uint32_t)job->num[bDirVarJobId];
}

dm_job *dm_job_new(dm_director *dir, const char *job_name, uint32_t jobid) {
  dm_job *job;
  struct tm tm;
  time_t now = time(NULL);
  char *unique;

  if (dir == NULL) return NULL;
  if (job_name == NULL) job_name = "";
  job = calloc(1, sizeof *job);
  if (job == NULL) return NULL;
  if (pthread_mutex_init(&job->lock, NULL) != 0) {
    free(job);
    return NULL;
  }
  if (pthread_cond_init(&job->idle, NULL) != 0) {
    pthread_mutex_destroy(&job->lock);
    free(job);
    return NULL;
  }
  job->dir = dir;
  /* The Director's unique job name: NAME.YYYY-MM-DD_HH.MM.SS_NN, local
   * time; the Director's NN is a sequence number, ours JobId % 100. */
  memset(&tm, 0, sizeof tm);
  localtime_r(&now, &tm);
  unique = format("%s.%04d-%02d-%02d_%02d.%02d.%02d_%02u", job_name,
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, (unsigned)(jobid % 100));
  job->str[bDirVarJob] = dup_str(job_name);
  job->str[bDirVarJobName] = unique;
  if (job->str[bDirVarJob] == NULL || unique == NULL) {
    free(job->str[bDirVarJob]);
    free(unique);
    pthread_cond_destroy(&job->idle);
    pthread_mutex_destroy(&job->lock);
    free(job);
    return NULL;
  }
  job->num[bDirVarLevel] = 'F';
  job->num[bDirVarType] = 'B';
  job->num[bDirVarJobStatus] = 'C';
  job->num[bDirVarPriority] = 10;
  job->num[bDirVarJobId] = jobid;

  pthread_mutex_lock(&dir->lock);
  job->next = dir->jobs;
  dir->jobs = job;
  pthread_mutex_unlock(&dir->lock);
  return job;
}

static void free_ctx_list(ptr_list *l) {
  size_t i;
  for (i = 0; i < l->n; i++) {
    dm_ctx *c = l->v[i];
    c->magic = 0;
    free(c);
  }
  free(l->v);
}

void dm_job_free(dm_job *job) {
  dm_job **pp;
  size_t i;
  int v;
  if (job == NULL) return;
  pthread_mutex_lock(&job->dir->lock);
  for (pp = &job->dir->jobs; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == job) {
      *pp = job->next;
      break;
    }
  }
  pthread_mutex_unlock(&job->dir->lock);

  /* A plugin thread may still be inside a (delayed) JobMessage callback. */
  pthread_mutex_lock(&job->lock);
  while (job->callbacks > 0) pthread_cond_wait(&job->idle, &job->lock);
  pthread_mutex_unlock(&job->lock);
  pthread_cond_destroy(&job->idle);
  free_ctx_list(&job->ctxs);
  free_ctx_list(&job->freed);
  free_ctx_list(&job->bare);
  for (v = 0; v <= BD_DIR_VAR_MAX; v++) free(job->str[v]);
  for (i = 0; i < job->old_strings.n; i++) free(job->old_strings.v[i]);
  free(job->old_strings.v);
  free(job->terminated);
  msg_free_all(&job->msgs);
  free(job->calls);
  pthread_mutex_destroy(&job->lock);
  free(job);
}

uint32_t dm_job_id(const dm_job *job) {
  uint32_t id;
  dm_job *j = (dm_job *)job;
  if (j == NULL) return 0;
  pthread_mutex_lock(&j->lock);
  id = job_id_locked(j);
  pthread_mutex_unlock(&j->lock);
  return id;
}

int dm_job_set_str(dm_job *job, int var, const char *value) {
  int rc;
  if (job == NULL || var_kind(var) != KIND_STR) return -1;
  pthread_mutex_lock(&job->lock);
  rc = job_set_str_locked(job, var, value);
  pthread_mutex_unlock(&job->lock);
  return rc;
}

int dm_job_set_int(dm_job *job, int var, int64_t value) {
  if (job == NULL || var_kind(var) != KIND_INT) return -1;
  pthread_mutex_lock(&job->lock);
  job->num[var] = value;
  pthread_mutex_unlock(&job->lock);
  return 0;
}

/* -1 when unset, or when `buf` is too small for the whole value. */
int dm_job_get_str(dm_job *job, int var, char *buf, size_t buflen) {
  const char *s;
  int rc = -1;
  if (job == NULL || buf == NULL || var_kind(var) != KIND_STR) return -1;
  pthread_mutex_lock(&job->lock);
  s = job_str_locked(job, var);
  if (s != NULL && strlen(s) < buflen) {
    memcpy(buf, s, strlen(s) + 1);
    rc = 0;
  }
  pthread_mutex_unlock(&job->lock);
  return rc;
}

char *dm_job_dup_str(dm_job *job, int var) {
  char *copy = NULL;
  if (job == NULL || var_kind(var) != KIND_STR) return NULL;
  pthread_mutex_lock(&job->lock);
  copy = dup_str(job_str_locked(job, var));
  pthread_mutex_unlock(&job->lock);
  return copy;
}

int dm_job_get_int(dm_job *job, int var, int64_t *value) {
  if (job == NULL || value == NULL || var_kind(var) != KIND_INT) return -1;
  pthread_mutex_lock(&job->lock);
  *value = job->num[var];
  pthread_mutex_unlock(&job->lock);
  return 0;
}

int dm_job_set_count(dm_job *job, int wvar) {
  int n;
  if (job == NULL || wvar < 1 || wvar > DM_WVAR_MAX) return -1;
  pthread_mutex_lock(&job->lock);
  n = job->set_counts[wvar];
  pthread_mutex_unlock(&job->lock);
  return n;
}

/* Jobs: contexts and plugin calls. */

static void record_call(dm_job *job, const char *plugin, uint32_t instance,
                        int event, int rc) {
  pthread_mutex_lock(&job->lock);
  if (grow(&job->calls, &job->capcalls, job->ncalls + 1, sizeof *job->calls) ==
      0) {
    dm_call *c = &job->calls[job->ncalls++];
    c->plugin = plugin;
    c->instance = instance;
    c->event = event;
    c->rc = rc;
  }
  pthread_mutex_unlock(&job->lock);
}

static dm_ctx *ctx_new(dm_job *job, dm_plugin *p, int plugin_index,
                       uint32_t instance) {
  dm_ctx *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->magic = DM_CTX_MAGIC;
  c->job = job;
  c->plugin_index = plugin_index;
  c->plugin_name = p != NULL ? p->name : NULL;
  c->pc.instance = instance;
  c->pc.plugin = p != NULL ? &p->plugin : NULL;
  c->pc.core_private_context = c;
  c->pc.plugin_private_context = NULL;
  return c;
}

/*
 * bareos-dir's instantiate_plugin: the context joins the job's list before
 * newPlugin runs, and a failed newPlugin disables that context (it stays in
 * the list and still gets freePlugin).
 */
static dm_ctx *instantiate(dm_job *job, int plugin_index, uint32_t instance) {
  dm_plugin *p = plugin_at(job->dir, plugin_index);
  dm_ctx *c;
  int rc;
  if (p == NULL) return NULL;
  c = ctx_new(job, p, plugin_index, instance);
  if (c == NULL) return NULL;
  pthread_mutex_lock(&job->lock);
  rc = ptr_push(&job->ctxs, c);
  pthread_mutex_unlock(&job->lock);
  if (rc != 0) {
    free(c);
    return NULL;
  }
  rc = p->funcs->newPlugin(&c->pc);
  record_call(job, p->name, instance, 0, rc);
  if (rc != bRC_OK) {
    pthread_mutex_lock(&job->lock);
    c->disabled = 1;
    pthread_mutex_unlock(&job->lock);
  }
  return c;
}

static int plugin_terminated_locked(dm_job *job, int plugin_index) {
  return plugin_index >= 0 && (size_t)plugin_index < job->nterminated &&
         job->terminated[plugin_index];
}

int dm_job_new_plugins(dm_job *job) {
  int i, n, rc = 0;
  if (job == NULL) return -1;
  pthread_mutex_lock(&job->lock);
  if (job->canceled) { /* as bareos-dir: a canceled job gets no plugins */
    pthread_mutex_unlock(&job->lock);
    return 0;
  }
  if (job->plugins_created) {
    pthread_mutex_unlock(&job->lock);
    return -1;
  }
  job->plugins_created = 1;
  pthread_mutex_unlock(&job->lock);

  n = dm_director_plugin_count(job->dir);
  for (i = 0; i < n; i++) {
    dm_plugin *p = plugin_at(job->dir, i);
    int unloaded;
    pthread_mutex_lock(&job->dir->lock);
    unloaded = p->unloaded;
    pthread_mutex_unlock(&job->dir->lock);
    if (unloaded) continue;
    if (instantiate(job, i, 0) == NULL) rc = -1;
  }
  return rc;
}

/*
 * The director's own scan for "instance=" (it does not use the plugin's
 * parser): plain ':' splitting without backslash escapes, the first segment
 * starting with "instance=" (any case) wins.  Returns 0 and sets *instance
 * (0 when absent), or -1 with the reason.
 */
static int scan_instance(const char *opts, uint32_t *instance, char *why,
                         size_t whylen) {
  const char *seg = opts;
  *instance = 0;
  while (seg != NULL && *seg != '\0') {
    const char *end = strchr(seg, ':');
    size_t seglen = end != NULL ? (size_t)(end - seg) : strlen(seg);
    if (seglen >= 9 && ascii_ncaseeq(seg, "instance=", 9)) {
      const char *v = seg + 9;
      size_t vlen = seglen - 9, i;
      unsigned long n = 0;
      int shown = vlen > 40 ? 40 : (int)vlen;
      if (vlen == 0) {
        set_err(why, whylen, "instance= is not a number");
        return -1;
      }
      for (i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9') {
          set_err(why, whylen, "instance=%.*s%s is not a number", shown, v,
                  vlen > 40 ? "..." : "");
          return -1;
        }
        if (n < BD_MAX_INSTANCES) n = n * 10 + (unsigned long)(v[i] - '0');
      }
      if (n >= BD_MAX_INSTANCES) {
        set_err(why, whylen, "instance=%.*s%s is above %d", shown, v,
                vlen > 40 ? "..." : "", BD_MAX_INSTANCES - 1);
        return -1;
      }
      *instance = (uint32_t)n;
      return 0;
    }
    seg = end != NULL ? end + 1 : NULL;
  }
  return 0;
}

/* Finds a loaded plugin by the name before the first ':' (bareos-dir:
 * equal length, any case).  -1 when none. */
static int find_plugin(dm_director *dir, const char *name, size_t len) {
  int i, found = -1;
  pthread_mutex_lock(&dir->lock);
  for (i = 0; i < dir->nplugins; i++) {
    dm_plugin *p = dir->plugins[i];
    if (!p->unloaded && strlen(p->name) == len &&
        ascii_ncaseeq(p->name, name, len)) {
      found = i;
      break;
    }
  }
  pthread_mutex_unlock(&dir->lock);
  return found;
}

static void note_job(dm_job *job, dm_msg_kind kind, int type,
                     const char *plugin, uint32_t instance, int line,
                     char *text) {
  one_line(text);
  director_store(job->dir, kind, type, dm_job_id(job), plugin, instance,
                 __FILE__, line, text);
}

int dm_job_plugin_options(dm_job *job, const char *options) {
  const char *colon;
  char why[160];
  uint32_t instance;
  int index, registered, rc;
  size_t i;
  dm_ctx *c = NULL;
  dm_plugin *p;
  bDirEvent ev;

  if (job == NULL) return -1;
  if (options == NULL || (colon = strchr(options, ':')) == NULL) {
    char *masked = bd_options_mask_secrets(options != NULL ? options : "");
    note_job(job, DM_MSG_JOB, M_ERROR, NULL, 0, __LINE__,
             format("JobId %u: Illegal DIR plugin options encountered, "
                    "\"%s\" skipping: missing ':' after the plugin name",
                    (unsigned)dm_job_id(job), masked != NULL ? masked : ""));
    free(masked);
    return -1;
  }
  if (scan_instance(colon + 1, &instance, why, sizeof why) != 0) {
    char *masked = bd_options_mask_secrets(options);
    note_job(job, DM_MSG_JOB, M_ERROR, NULL, 0, __LINE__,
             format("JobId %u: Illegal DIR plugin options encountered, "
                    "\"%s\" skipping: %s (instances are 0 to %d)",
                    (unsigned)dm_job_id(job), masked != NULL ? masked : "", why,
                    BD_MAX_INSTANCES - 1));
    free(masked);
    return -1;
  }

  /* The real Director ignores strings for plugins it has not loaded. */
  index = find_plugin(job->dir, options, (size_t)(colon - options));
  if (index < 0) {
    note_job(job, DM_MSG_DEBUG, 150, NULL, 0, __LINE__,
             format("JobId %u: no plugin \"%.*s\" is loaded; its Dir Plugin "
                    "Options are ignored",
                    (unsigned)dm_job_id(job),
                    (int)((size_t)(colon - options) > 64
                              ? 64
                              : (size_t)(colon - options)),
                    options));
    return bRC_OK;
  }
  p = plugin_at(job->dir, index);

  pthread_mutex_lock(&job->lock);
  if (plugin_terminated_locked(job, index)) {
    pthread_mutex_unlock(&job->lock);
    note_job(job, DM_MSG_DEBUG, 150, p->name, instance, __LINE__,
             format("JobId %u: plugin %s was unloaded during this job; its "
                    "Dir Plugin Options are ignored",
                    (unsigned)dm_job_id(job), p->name));
    return bRC_OK;
  }
  for (i = 0; i < job->ctxs.n; i++) {
    dm_ctx *x = job->ctxs.v[i];
    if (x->plugin_index == index && x->pc.instance == instance) {
      c = x;
      break;
    }
  }
  pthread_mutex_unlock(&job->lock);

  if (c == NULL && (c = instantiate(job, index, instance)) == NULL) return -1;

  pthread_mutex_lock(&job->lock);
  registered = !c->disabled &&
               (c->events & ((uint64_t)1 << bDirEventNewPluginOptions)) != 0;
  pthread_mutex_unlock(&job->lock);
  if (!registered) return bRC_OK;

  /* bareos-dir ignores this answer, bRC_Term included (it passes no list
   * index, so nothing is unloaded); we hand it to the caller. */
  ev.eventType = bDirEventNewPluginOptions;
  rc = p->funcs->handlePluginEvent(&c->pc, &ev, (void *)options);
  record_call(job, p->name, instance, bDirEventNewPluginOptions, rc);
  return rc;
}

static const char *event_name(int event) {
  static const char *const names[] = {
      NULL,         "JobStart",     "JobEnd",     "JobInit",
      "JobRun",     "VolumePurged", "NewVolume",  "NeedVolume",
      "VolumeFull", "Recyle",       "GetScratch", "NewPluginOptions"};
  if (event > 0 && event <= BD_DIR_EVENT_MAX) return names[event];
  return "(unknown)";
}

/* bRC_Term: bareos-dir unloads the plugin; the model disables it for the
 * rest of this job (its contexts still get freePlugin). */
static void terminate_plugin(dm_job *job, dm_ctx *c, int event) {
  size_t i;
  int idx = c->plugin_index;
  pthread_mutex_lock(&job->lock);
  if ((size_t)idx >= job->nterminated) {
    unsigned char *t = realloc(job->terminated, (size_t)idx + 1);
    if (t != NULL) {
      memset(t + job->nterminated, 0, (size_t)idx + 1 - job->nterminated);
      job->terminated = t;
      job->nterminated = (size_t)idx + 1;
    }
  }
  if ((size_t)idx < job->nterminated) job->terminated[idx] = 1;
  for (i = 0; i < job->ctxs.n; i++) {
    dm_ctx *x = job->ctxs.v[i];
    if (x->plugin_index == idx) x->disabled = 1;
  }
  pthread_mutex_unlock(&job->lock);
  note_job(job, DM_MSG_JOB, M_WARNING, c->plugin_name, c->pc.instance, __LINE__,
           format("JobId %u: plugin %s (instance %u) answered bRC_Term to "
                  "event %d (%s), asking to be unloaded; the Director unloads "
                  "it, here it is disabled for the rest of the job",
                  (unsigned)dm_job_id(job), c->plugin_name,
                  (unsigned)c->pc.instance, event, event_name(event)));
}

int dm_job_event(dm_job *job, int event, void *value) {
  int rc = bRC_OK;
  size_t i;
  bDirEvent ev;

  if (job == NULL) return bRC_Error;
  ev.eventType = (uint32_t)event;
  for (i = 0; event > 0 && event < DM_EVENT_BITS; i++) {
    dm_ctx *c;
    dm_plugin *p;
    int take, r;
    pthread_mutex_lock(&job->lock);
    if (i >= job->ctxs.n) {
      pthread_mutex_unlock(&job->lock);
      break;
    }
    c = job->ctxs.v[i];
    take = !c->disabled && (c->events & ((uint64_t)1 << event)) != 0;
    pthread_mutex_unlock(&job->lock);
    if (!take) continue;

    p = plugin_at(job->dir, c->plugin_index);
    r = p->funcs->handlePluginEvent(&c->pc, &ev, value);
    record_call(job, p->name, c->pc.instance, event, r);
    rc = r;
    if (r == bRC_Term) terminate_plugin(job, c, event);
    if (r == bRC_Stop || r == bRC_Error || r == bRC_Skip) break;
  }
  pthread_mutex_lock(&job->lock);
  if (job->canceled) rc = bRC_Cancel;
  pthread_mutex_unlock(&job->lock);
  return rc;
}

/*
 * freePlugin for every context in list order, disabled ones included (as
 * bareos-dir does).  The contexts stay allocated until dm_job_free so a late
 * callback from a plugin's own thread finds a valid (if finished) context.
 */
int dm_job_free_plugins(dm_job *job) {
  if (job == NULL) return -1;
  for (;;) {
    dm_ctx *c;
    dm_plugin *p;
    int r;
    pthread_mutex_lock(&job->lock);
    if (job->ctxs.n == 0) {
      pthread_mutex_unlock(&job->lock);
      break;
    }
    c = job->ctxs.v[0];
    pthread_mutex_unlock(&job->lock);

    p = plugin_at(job->dir, c->plugin_index);
    r = p->funcs->freePlugin(&c->pc);
    record_call(job, p->name, c->pc.instance, -1, r);

    pthread_mutex_lock(&job->lock);
    memmove(job->ctxs.v, job->ctxs.v + 1,
            (job->ctxs.n - 1) * sizeof *job->ctxs.v);
    job->ctxs.n--;
    c->disabled = 1;
    if (ptr_push(&job->freed, c) != 0) {
      c->magic = 0; /* cannot keep it: late callbacks get bRC_Error */
      free(c);
    }
    pthread_mutex_unlock(&job->lock);
  }
  return 0;
}

void dm_job_cancel(dm_job *job) {
  if (job == NULL) return;
  pthread_mutex_lock(&job->lock);
  job->canceled = 1;
  job->num[bDirVarJobStatus] = 'A';
  pthread_mutex_unlock(&job->lock);
}

PluginContext *dm_job_bare_context(dm_job *job, int plugin_index,
                                   uint32_t instance) {
  dm_plugin *p = NULL;
  dm_ctx *c;
  int rc;
  if (job == NULL || instance >= BD_MAX_INSTANCES) return NULL;
  if (plugin_index != -1) {
    p = plugin_at(job->dir, plugin_index);
    if (p == NULL) return NULL;
  }
  c = ctx_new(job, p, plugin_index, instance);
  if (c == NULL) return NULL;
  pthread_mutex_lock(&job->lock);
  rc = ptr_push(&job->bare, c);
  pthread_mutex_unlock(&job->lock);
  if (rc != 0) {
    free(c);
    return NULL;
  }
  return &c->pc;
}

size_t dm_job_context_count(dm_job *job) {
  size_t n;
  if (job == NULL) return 0;
  pthread_mutex_lock(&job->lock);
  n = job->ctxs.n;
  pthread_mutex_unlock(&job->lock);
  return n;
}

PluginContext *dm_job_context(dm_job *job, size_t i) {
  PluginContext *pc = NULL;
  if (job == NULL) return NULL;
  pthread_mutex_lock(&job->lock);
  if (i < job->ctxs.n) pc = &((dm_ctx *)job->ctxs.v[i])->pc;
  pthread_mutex_unlock(&job->lock);
  return pc;
}

const char *dm_context_plugin_name(const PluginContext *ctx) {
  dm_ctx *c = ctx_of(ctx);
  return c != NULL ? c->plugin_name : NULL;
}

uint64_t dm_context_events(const PluginContext *ctx) {
  dm_ctx *c = ctx_of(ctx);
  uint64_t ev;
  if (c == NULL) return 0;
  pthread_mutex_lock(&c->job->lock);
  ev = c->events;
  pthread_mutex_unlock(&c->job->lock);
  return ev;
}

dm_job *dm_context_job(const PluginContext *ctx) {
  dm_ctx *c = ctx_of(ctx);
  return c != NULL ? c->job : NULL;
}

size_t dm_job_message_count(dm_job *job) {
  size_t n;
  if (job == NULL) return 0;
  pthread_mutex_lock(&job->lock);
  n = job->msgs.n;
  pthread_mutex_unlock(&job->lock);
  return n;
}

int dm_job_message(dm_job *job, size_t i, dm_message *out) {
  int rc = -1;
  if (job == NULL || out == NULL) return -1;
  pthread_mutex_lock(&job->lock);
  if (i < job->msgs.n) {
    *out = job->msgs.v[i];
    rc = 0;
  }
  pthread_mutex_unlock(&job->lock);
  return rc;
}

size_t dm_job_call_count(dm_job *job) {
  size_t n;
  if (job == NULL) return 0;
  pthread_mutex_lock(&job->lock);
  n = job->ncalls;
  pthread_mutex_unlock(&job->lock);
  return n;
}

int dm_job_call(dm_job *job, size_t i, dm_call *out) {
  int rc = -1;
  if (job == NULL || out == NULL) return -1;
  pthread_mutex_lock(&job->lock);
  if (i < job->ncalls) {
    *out = job->calls[i];
    rc = 0;
  }
  pthread_mutex_unlock(&job->lock);
  return rc;
}

static int job_counter(dm_job *job, const int *field) {
  int n;
  pthread_mutex_lock(&job->lock);
  n = *field;
  pthread_mutex_unlock(&job->lock);
  return n;
}

int dm_job_fatal_count(dm_job *job) {
  return job != NULL ? job_counter(job, &job->fatal) : 0;
}
int dm_job_error_count(dm_job *job) {
  return job != NULL ? job_counter(job, &job->errors) : 0;
}
int dm_job_warning_count(dm_job *job) {
  return job != NULL ? job_counter(job, &job->warnings) : 0;
}

/* The CoreFunctions callbacks. */

static bRC cb_set_events(PluginContext *ctx, int on, int nr_events,
                         va_list ap) {
  dm_ctx *c = ctx_of(ctx);
  int i, bad = 0;
  if (c == NULL || nr_events < 0) return bRC_Error;
  pthread_mutex_lock(&c->job->lock);
  for (i = 0; i < nr_events; i++) {
    int event = va_arg(ap, int);
    if (event <= 0 || event >= DM_EVENT_BITS) {
      bad = 1; /* the bitmask has no such bit */
    } else if (on) {
      c->events |= (uint64_t)1 << event;
    } else {
      c->events &= ~((uint64_t)1 << event);
    }
  }
  pthread_mutex_unlock(&c->job->lock);
  return bad ? bRC_Error : bRC_OK;
}

static bRC cb_register_events(PluginContext *ctx, int nr_events, ...) {
  va_list ap;
  bRC rc;
  va_start(ap, nr_events);
  rc = cb_set_events(ctx, 1, nr_events, ap);
  va_end(ap);
  return rc;
}

static bRC cb_unregister_events(PluginContext *ctx, int nr_events, ...) {
  va_list ap;
  bRC rc;
  va_start(ap, nr_events);
  rc = cb_set_events(ctx, 0, nr_events, ap);
  va_end(ap);
  return rc;
}

/*
 * The meant number: contexts of the caller's plugin in all running jobs of
 * this director.  The real Director (bareosGetInstanceCount) loops over the
 * running jobs but counts the *calling* job's contexts on every turn, so it
 * answers (contexts of this plugin in the calling job) x (running jobs).
 */
static bRC cb_get_instance_count(PluginContext *ctx, int *ret) {
  dm_ctx *c = ctx_of(ctx);
  dm_director *dir;
  dm_job *job;
  int count = 0;
  if (c == NULL || ret == NULL || c->plugin_index < 0) return bRC_Error;
  dir = c->job->dir;
  pthread_mutex_lock(&dir->lock);
  for (job = dir->jobs; job != NULL; job = job->next) {
    size_t i;
    pthread_mutex_lock(&job->lock);
    for (i = 0; i < job->ctxs.n; i++) {
      if (((dm_ctx *)job->ctxs.v[i])->plugin_index == c->plugin_index) count++;
    }
    pthread_mutex_unlock(&job->lock);
  }
  pthread_mutex_unlock(&dir->lock);
  *ret = count;
  return bRC_OK;
}

static bRC cb_get_value(PluginContext *ctx, int var, void *value) {
  dm_ctx *c;
  dm_job *job;
  bRC rc = bRC_OK;

  if (value == NULL) return bRC_Error;
  if (var == bDirVarPluginDir) { /* a director value: no job needed */
    const char *d;
    c = ctx_of(ctx);
    if (c != NULL) {
      d = c->job->dir->plugin_dir;
    } else {
      dm_director *dir = registry_acquire();
      if (dir == NULL) return bRC_Error;
      d = dir->plugin_dir; /* lives as long as the director */
      registry_release(dir);
    }
    *(const char **)value = d;
    return d != NULL ? bRC_OK : bRC_Error;
  }
  c = ctx_of(ctx);
  if (c == NULL) return bRC_Error;
  job = c->job;

  pthread_mutex_lock(&job->lock);
  switch (var_kind(var)) {
    case KIND_STR: {
      const char *s = job_str_locked(job, var);
      *(const char **)value = s;
      if (s == NULL) rc = bRC_Error;
      break;
    }
    case KIND_INT:
      if (var == bDirVarJobBytes || var == bDirVarReadBytes) {
        *(uint64_t *)value = (uint64_t)job->num[var];
      } else {
        *(int *)value = (int)job->num[var];
      }
      break;
    default: /* bDirVarCatalogRes and unknown numbers */
      rc = bRC_Error;
      break;
  }
  pthread_mutex_unlock(&job->lock);
  return rc;
}

static bRC cb_set_value(PluginContext *ctx, int var, void *value) {
  dm_ctx *c = ctx_of(ctx);
  dm_job *job;
  bRC rc = bRC_OK;
  if (c == NULL || value == NULL) return bRC_Error;
  job = c->job;
  pthread_mutex_lock(&job->lock);
  switch (var) {
    case bwDirVarJobReport: /* accepted, and only counted */
      break;
    case bwDirVarVolumeName:
      if (job_set_str_locked(job, bDirVarVolumeName, (const char *)value) != 0)
        rc = bRC_Error;
      break;
    case bwDirVarPriority:
      job->num[bDirVarPriority] = *(const int *)value;
      break;
    case bwDirVarJobLevel:
      job->num[bDirVarLevel] = *(const int *)value;
      break;
    default:
      rc = bRC_Error;
      break;
  }
  if (rc == bRC_OK) job->set_counts[var]++;
  pthread_mutex_unlock(&job->lock);
  return rc;
}

/*
 * Stores a plugin's message.  With a job context it goes to the job's list
 * and counts as the Director's Jmsg does (M_FATAL fails the job, M_ERROR is
 * a job error); with a NULL context to the director's list.  The types that
 * would end the real Director (M_ABORT, M_ERROR_TERM, M_CONFIG_ERROR) are
 * stored as sent and counted as fatal.
 */
static bRC store_plugin_message(PluginContext *ctx, dm_msg_kind kind,
                                const char *file, int line, int type,
                                const char *fmt, va_list ap) {
  dm_ctx *c = NULL;
  dm_director *dir = NULL;
  dm_message m;
  char *text, *file_copy = NULL;
  int rc;

  if (fmt == NULL) return bRC_Error;
  if (ctx != NULL && (c = ctx_of(ctx)) == NULL) return bRC_Error;
  text = vformat(fmt, ap);
  if (text == NULL) return bRC_Error;

  if (c == NULL) {
    dir = registry_acquire();
    if (dir == NULL) {
      free(text);
      return bRC_Error;
    }
    rc = director_store(dir, kind, type, 0, NULL, 0, file, line, text);
    registry_release(dir);
    return rc == 0 ? bRC_OK : bRC_Error;
  }

  if (file != NULL && (file_copy = dup_str(file)) == NULL) {
    free(text);
    return bRC_Error;
  }
  m.kind = kind;
  m.type = type;
  m.plugin = c->plugin_name;
  m.instance = c->pc.instance;
  m.file = file_copy;
  m.line = line;
  m.text = text;
  pthread_mutex_lock(&c->job->lock);
  m.jobid = job_id_locked(c->job);
  rc = msg_push(&c->job->msgs, &m);
  if (rc == 0 && kind == DM_MSG_JOB) {
    dm_job *job = c->job;
    switch (type) {
      case M_FATAL:
      case M_ABORT:
      case M_ERROR_TERM:
      case M_CONFIG_ERROR:
        job->fatal++;
        job->num[bDirVarJobStatus] = 'f';
        if (job->num[bDirVarJobErrors] == 0) job->num[bDirVarJobErrors] = 1;
        break;
      case M_ERROR:
        job->errors++;
        job->num[bDirVarJobErrors]++;
        break;
      case M_WARNING:
        job->warnings++;
        break;
      default:
        break;
    }
  }
  pthread_mutex_unlock(&c->job->lock);
  if (rc != 0) {
    free(text);
    free(file_copy);
    return bRC_Error;
  }
  deliver_to_sink(c->job->dir, &m);
  return bRC_OK;
}

/* Holds the job of ctx (if any) while a JobMessage callback sleeps for
 * the director's job_message_delay_ms: dm_job_free waits for it. */
static dm_job *delay_begin(PluginContext *ctx) {
  dm_ctx *c = ctx_of(ctx);
  unsigned ms;
  if (c == NULL || c->job == NULL) return NULL;
  pthread_mutex_lock(&c->job->dir->lock);
  ms = c->job->dir->job_message_delay_ms;
  pthread_mutex_unlock(&c->job->dir->lock);
  if (ms == 0) return NULL;
  pthread_mutex_lock(&c->job->lock);
  c->job->callbacks++;
  pthread_mutex_unlock(&c->job->lock);
  struct timespec d = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&d, &d) != 0) {
  }
  return c->job;
}

static void delay_end(dm_job *job) {
  if (job == NULL) return;
  pthread_mutex_lock(&job->lock);
  if (--job->callbacks == 0) pthread_cond_broadcast(&job->idle);
  pthread_mutex_unlock(&job->lock);
}

static bRC cb_job_message(PluginContext *ctx, const char *file, int line,
                          int type, int64_t mtime, const char *fmt, ...) {
  va_list ap;
  bRC rc;
  (void)mtime;
  dm_job *held = delay_begin(ctx);
  va_start(ap, fmt);
  rc = store_plugin_message(ctx, DM_MSG_JOB, file, line, type, fmt, ap);
  va_end(ap);
  delay_end(held);
  return rc;
}

static bRC cb_debug_message(PluginContext *ctx, const char *file, int line,
                            int level, const char *fmt, ...) {
  va_list ap;
  bRC rc;
  va_start(ap, fmt);
  rc = store_plugin_message(ctx, DM_MSG_DEBUG, file, line, level, fmt, ap);
  va_end(ap);
  return rc;
}

static const CoreFunctions core_functions = {
    sizeof(CoreFunctions), BD_DIR_PLUGIN_INTERFACE_VERSION,
    cb_register_events,    cb_unregister_events,
    cb_get_instance_count, cb_get_value,
    cb_set_value,          cb_job_message,
    cb_debug_message};

const CoreFunctions *dm_core_functions(void) { return &core_functions; }

void dm_api_definition(PluginApiDefinition *out) {
  if (out == NULL) return;
  out->size = sizeof(CoreFunctions);
  out->version = BD_DIR_PLUGIN_INTERFACE_VERSION;
}
