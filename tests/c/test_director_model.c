/*
 * Tests of the director model (csrc/director_model.c) driven by a fake
 * plugin written here against the ABI: PluginInformation checks, the job
 * steps, event registration and the return-code rules, instance matching of
 * Dir Plugin Options, every job variable, messages, instance counts, and
 * callbacks arriving from many threads at once.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "director_model.h"
#include "textfmt.h"


/* The fake plugin. */

static const CoreFunctions *core;

typedef struct fake_cfg {
  int new_fail_instance; /* newPlugin answers bRC_Error for it; -1: none */
  int event_rc[64];      /* handlePluginEvent answer per event */
  int options_rc;        /* answer to NewPluginOptions */
  void (*on_event)(PluginContext *ctx, int event);
} fake_cfg;

static fake_cfg cfg_alpha, cfg_beta;

typedef struct logged {
  char plugin; /* 'a' or 'b' */
  uint32_t instance;
  int event; /* 0 newPlugin, -1 freePlugin */
  const void *value;
} logged;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static logged event_log[512];
static int nlog;

static char which(PluginContext *ctx) {
  return ctx->plugin->file[0]; /* "alpha-dir.so" or "beta-dir.so" */
}

static fake_cfg *cfg_of(PluginContext *ctx) {
  return which(ctx) == 'a' ? &cfg_alpha : &cfg_beta;
}

static void log_call(PluginContext *ctx, int event, const void *value) {
  pthread_mutex_lock(&log_lock);
  if (nlog < (int)(sizeof event_log / sizeof event_log[0])) {
    event_log[nlog].plugin = which(ctx);
    event_log[nlog].instance = ctx->instance;
    event_log[nlog].event = event;
    event_log[nlog].value = value;
    nlog++;
  }
  pthread_mutex_unlock(&log_lock);
}

static void reset(void) {
  int i;
  pthread_mutex_lock(&log_lock);
  nlog = 0;
  pthread_mutex_unlock(&log_lock);
  memset(&cfg_alpha, 0, sizeof cfg_alpha);
  memset(&cfg_beta, 0, sizeof cfg_beta);
  cfg_alpha.new_fail_instance = cfg_beta.new_fail_instance = -1;
  for (i = 0; i < 64; i++) cfg_alpha.event_rc[i] = cfg_beta.event_rc[i] = 0;
}

static int log_count(void) {
  int n;
  pthread_mutex_lock(&log_lock);
  n = nlog;
  pthread_mutex_unlock(&log_lock);
  return n;
}

static bRC fake_new(PluginContext *ctx) {
  int *priv = malloc(sizeof *priv); /* freed by freePlugin: ASan checks */
  if (priv == NULL) return bRC_Error;
  *priv = 0;
  ctx->plugin_private_context = priv;
  log_call(ctx, 0, NULL);
  core->registerBareosEvents(ctx, 5, bDirEventNewPluginOptions,
                             bDirEventJobStart, bDirEventJobEnd,
                             bDirEventJobInit, bDirEventJobRun);
  if (cfg_of(ctx)->new_fail_instance == (int)ctx->instance) return bRC_Error;
  return bRC_OK;
}

static bRC fake_free(PluginContext *ctx) {
  log_call(ctx, -1, NULL);
  free(ctx->plugin_private_context);
  ctx->plugin_private_context = NULL;
  return bRC_OK;
}

static bRC fake_get(PluginContext *ctx, int var, void *value) {
  (void)ctx;
  (void)var;
  (void)value;
  return bRC_OK;
}

static bRC fake_set(PluginContext *ctx, int var, void *value) {
  (void)ctx;
  (void)var;
  (void)value;
  return bRC_OK;
}

static bRC fake_event(PluginContext *ctx, bDirEvent *event, void *value) {
  fake_cfg *cfg = cfg_of(ctx);
  int ev = (int)event->eventType;
  log_call(ctx, ev, value);
  if (cfg->on_event != NULL) cfg->on_event(ctx, ev);
  if (ev == bDirEventNewPluginOptions) return (bRC)cfg->options_rc;
  return (bRC)cfg->event_rc[ev];
}

static PluginFunctions fake_funcs = {sizeof(PluginFunctions),
                                     4,
                                     fake_new,
                                     fake_free,
                                     fake_get,
                                     fake_set,
                                     fake_event};

static PluginInformation fake_info = {sizeof(PluginInformation),
                                      4,
                                      "*DirPluginData*",
                                      "Bareos AGPLv3",
                                      "tests",
                                      "today",
                                      "1",
                                      "a fake plugin",
                                      "none"};

static int unload_order[4], nunload;
static bRC unload_alpha(void) {
  unload_order[nunload++] = 'a';
  return bRC_OK;
}
static bRC unload_beta(void) {
  unload_order[nunload++] = 'b';
  return bRC_OK;
}

/* A director with plugins alpha (index 0) and beta (index 1). */
static dm_director *two_plugin_director(void) {
  char err[200];
  dm_director *dir = dm_director_new("test-dir", "/plugins");
  if (dir == NULL) return NULL;
  if (dm_director_add_plugin(dir, "alpha", &fake_info, &fake_funcs,
                             unload_alpha, err, sizeof err) != 0 ||
      dm_director_add_plugin(dir, "beta", &fake_info, &fake_funcs, unload_beta,
                             err, sizeof err) != 1) {
    fprintf(stderr, "add_plugin: %s\n", err);
    dm_director_free(dir);
    return NULL;
  }
  return dir;
}

/* Tests. */

static void test_add_plugin(void) {
  char err[200];
  PluginInformation info = fake_info;
  dm_director *dir = dm_director_new("d", NULL);
  CHECK(dir != NULL);
  if (dir == NULL) return;
  CHECK_STR(dm_director_name(dir), "d");

  CHECK(dm_director_add_plugin(dir, "x", NULL, &fake_funcs, NULL, err,
                               sizeof err) == -1);
  CHECK(contains(err, "no PluginInformation"));

  info.size = sizeof info - 8;
  CHECK(dm_director_add_plugin(dir, "x", &info, &fake_funcs, NULL, err,
                               sizeof err) == -1);
  CHECK(contains(err, "size"));
  info = fake_info;
  info.version = 3;
  CHECK(dm_director_add_plugin(dir, "x", &info, &fake_funcs, NULL, err,
                               sizeof err) == -1);
  CHECK(contains(err, "version is 3"));
  info = fake_info;
  info.plugin_magic = "*FDPluginData*";
  CHECK(dm_director_add_plugin(dir, "x", &info, &fake_funcs, NULL, err,
                               sizeof err) == -1);
  CHECK(contains(err, "magic") && contains(err, "*FDPluginData*"));
  info.plugin_magic = NULL;
  CHECK(dm_director_add_plugin(dir, "x", &info, &fake_funcs, NULL, err,
                               sizeof err) == -1);
  CHECK(contains(err, "magic"));
  info = fake_info;
  info.plugin_license = "GPLv2";
  CHECK(dm_director_add_plugin(dir, "x", &info, &fake_funcs, NULL, err,
                               sizeof err) == -1);
  CHECK(contains(err, "license") && contains(err, "GPLv2"));
  info.plugin_license = "AGPLv3 or later";
  CHECK(dm_director_add_plugin(dir, "x", &info, &fake_funcs, NULL, err,
                               sizeof err) == -1);
  CHECK(dm_director_add_plugin(dir, "x", &fake_info, NULL, NULL, err,
                               sizeof err) == -1);
  CHECK(contains(err, "PluginFunctions"));
  CHECK(dm_director_plugin_count(dir) == 0);

  info.plugin_license = "agplv3";
  CHECK(dm_director_add_plugin(dir, "lower", &info, &fake_funcs, NULL, err,
                               sizeof err) == 0);
  info.plugin_license = "BAREOS AGPLV3";
  CHECK(dm_director_add_plugin(dir, "upper", &info, &fake_funcs, NULL, err,
                               sizeof err) == 1);
  CHECK(dm_director_add_plugin(dir, "LOWER", &fake_info, &fake_funcs, NULL, err,
                               sizeof err) == -1);
  CHECK(dm_director_plugin_count(dir) == 2);
  CHECK_STR(dm_director_plugin_name(dir, 1), "upper");
  CHECK(dm_director_plugin_name(dir, 2) == NULL);
  CHECK(dm_director_plugin_name(dir, -1) == NULL);
  dm_director_free(dir);
}

static void test_job_steps(void) {
  dm_director *dir = two_plugin_director();
  dm_job *job;
  dm_call call;
  PluginContext *ctx;
  int rc;
  CHECK(dir != NULL);
  if (dir == NULL) return;
  reset();
  job = dm_job_new(dir, "Backup", 105);
  CHECK(job != NULL && dm_job_id(job) == 105);

  CHECK(dm_job_new_plugins(job) == 0);
  CHECK(dm_job_context_count(job) == 2);
  ctx = dm_job_context(job, 0);
  CHECK(ctx != NULL && ctx->instance == 0);
  CHECK(ctx != NULL && ctx->core_private_context != NULL);
  CHECK(ctx != NULL && ctx->plugin_private_context != NULL);
  CHECK_STR(ctx->plugin->file, "alpha-dir.so");
  CHECK(ctx->plugin->file_len == 5);
  CHECK(ctx->plugin->plugin_functions == &fake_funcs);
  CHECK(ctx->plugin->plugin_information == &fake_info);
  CHECK_STR(dm_context_plugin_name(ctx), "alpha");
  CHECK(dm_context_job(ctx) == job);
  CHECK(dm_context_events(ctx) ==
        ((1u << 11) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4)));
  CHECK_STR(dm_context_plugin_name(dm_job_context(job, 1)), "beta");
  CHECK(dm_job_context(job, 2) == NULL);
  /* both contexts of one plugin share the director's Plugin */
  CHECK(dm_job_call_count(job) == 2);
  CHECK(dm_job_call(job, 0, &call) == 0 && call.event == 0 &&
        call.rc == bRC_OK && strcmp(call.plugin, "alpha") == 0);
  CHECK(dm_job_call(job, 1, &call) == 0 && strcmp(call.plugin, "beta") == 0);
  CHECK(dm_job_call(job, 2, &call) == -1);
  CHECK(dm_job_new_plugins(job) == -1); /* once per job */

  rc = dm_job_event(job, bDirEventJobStart, NULL);
  CHECK(rc == bRC_OK);
  CHECK(log_count() == 4 && event_log[2].plugin == 'a' &&
        event_log[3].plugin == 'b' && event_log[2].event == 1 &&
        event_log[2].value == NULL);
  /* not registered: nobody gets it, answer OK */
  CHECK(dm_job_event(job, bDirEventNewVolume, NULL) == bRC_OK);
  CHECK(log_count() == 4);
  CHECK(dm_job_event(job, 0, NULL) == bRC_OK);
  CHECK(dm_job_event(job, 64, NULL) == bRC_OK);
  CHECK(dm_job_event(job, -3, NULL) == bRC_OK);
  CHECK(log_count() == 4);

  CHECK(dm_job_free_plugins(job) == 0);
  CHECK(dm_job_context_count(job) == 0);
  CHECK(log_count() == 6 && event_log[4].event == -1 &&
        event_log[5].event == -1 && event_log[4].plugin == 'a');
  CHECK(dm_job_call(job, dm_job_call_count(job) - 1, &call) == 0 &&
        call.event == -1);
  CHECK(dm_job_free_plugins(job) == 0); /* nothing left to free */
  CHECK(log_count() == 6);
  dm_job_free(job);

  /* a canceled job gets no plugins (bareos-dir NewPlugins) */
  job = dm_job_new(dir, "Backup", 106);
  dm_job_cancel(job);
  CHECK(dm_job_new_plugins(job) == 0 && dm_job_context_count(job) == 0);
  dm_job_free(job);

  /* a job freed without free_plugins: no freePlugin, no leak of ours */
  job = dm_job_new(dir, "Backup", 107);
  dm_job_new_plugins(job);
  ctx = dm_job_context(job, 0);
  free(ctx->plugin_private_context);
  free(dm_job_context(job, 1)->plugin_private_context);
  dm_job_free(job);

  nunload = 0;
  dm_director_unload_plugins(dir);
  dm_director_unload_plugins(dir); /* once only */
  CHECK(nunload == 2 && unload_order[0] == 'b' && unload_order[1] == 'a');
  dm_director_free(dir);
}

static void test_return_codes(void) {
  dm_director *dir = two_plugin_director();
  dm_job *job;
  dm_message m;
  size_t before;
  if (dir == NULL) {
    failed++;
    return;
  }
  reset();
  job = dm_job_new(dir, "Backup", 7);
  dm_job_new_plugins(job);
  dm_job_plugin_options(job, "alpha:instance=1");
  /* list order: alpha#0, beta#0, alpha#1 */
  CHECK(dm_job_context_count(job) == 3);

  cfg_alpha.event_rc[bDirEventJobRun] = bRC_More;
  cfg_beta.event_rc[bDirEventJobRun] = bRC_Seen;
  nlog = 0;
  CHECK(dm_job_event(job, bDirEventJobRun, NULL) == bRC_More); /* last */
  CHECK(nlog == 3);

  cfg_alpha.event_rc[bDirEventJobStart] = bRC_Stop;
  nlog = 0;
  CHECK(dm_job_event(job, bDirEventJobStart, NULL) == bRC_Stop);
  CHECK(nlog == 1 && event_log[0].plugin == 'a');

  cfg_alpha.event_rc[bDirEventJobStart] = bRC_OK;
  cfg_beta.event_rc[bDirEventJobStart] = bRC_Error;
  nlog = 0;
  CHECK(dm_job_event(job, bDirEventJobStart, NULL) == bRC_Error);
  CHECK(nlog == 2 && event_log[1].plugin == 'b');

  cfg_beta.event_rc[bDirEventJobStart] = bRC_Skip;
  nlog = 0;
  CHECK(dm_job_event(job, bDirEventJobStart, NULL) == bRC_Skip);
  CHECK(nlog == 2);

  /* bRC_Term: the plugin is disabled for the rest of the job, delivery
   * goes on to the following contexts, the director says why */
  cfg_alpha.event_rc[bDirEventJobInit] = bRC_Term;
  before = dm_director_message_count(dir);
  nlog = 0;
  CHECK(dm_job_event(job, bDirEventJobInit, NULL) == bRC_OK);
  CHECK(nlog == 2 && event_log[0].plugin == 'a' && event_log[1].plugin == 'b');
  CHECK(dm_director_message_count(dir) == before + 1);
  CHECK(dm_director_message(dir, before, &m) == 0 && m.kind == DM_MSG_JOB &&
        contains(m.text, "alpha") && contains(m.text, "unloaded") &&
        m.jobid == 7);
  nlog = 0;
  CHECK(dm_job_event(job, bDirEventJobEnd, NULL) == bRC_OK);
  CHECK(nlog == 1 && event_log[0].plugin == 'b');
  /* no new context for it either */
  CHECK(dm_job_plugin_options(job, "alpha:instance=5") == bRC_OK);
  CHECK(dm_job_context_count(job) == 3);
  /* the last answer is beta's even after alpha asked to be unloaded */
  cfg_beta.event_rc[bDirEventJobEnd] = bRC_Seen;
  CHECK(dm_job_event(job, bDirEventJobEnd, NULL) == bRC_Seen);

  /* canceled: bRC_Cancel whatever the plugins said */
  dm_job_cancel(job);
  nlog = 0;
  CHECK(dm_job_event(job, bDirEventJobEnd, NULL) == bRC_Cancel);
  CHECK(dm_job_event(job, bDirEventNewVolume, NULL) == bRC_Cancel);
  {
    int64_t st = 0;
    CHECK(dm_job_get_int(job, bDirVarJobStatus, &st) == 0 && st == 'A');
  }

  /* freePlugin for every context, those of the terminated plugin too */
  nlog = 0;
  dm_job_free_plugins(job);
  CHECK(nlog == 3);
  dm_job_free(job);
  dm_director_free(dir);
}

static void test_new_plugin_failure(void) {
  dm_director *dir = two_plugin_director();
  dm_job *job;
  dm_call c;
  if (dir == NULL) {
    failed++;
    return;
  }
  reset();
  cfg_beta.new_fail_instance = 0;
  job = dm_job_new(dir, "Backup", 8);
  CHECK(dm_job_new_plugins(job) == 0);
  CHECK(dm_job_context_count(job) == 2);
  CHECK(dm_job_call(job, 1, &c) == 0 && c.event == 0 && c.rc == bRC_Error);
  nlog = 0;
  dm_job_event(job, bDirEventJobStart, NULL);
  CHECK(nlog == 1 && event_log[0].plugin == 'a');
  /* options for the disabled context reach nobody */
  CHECK(dm_job_plugin_options(job, "beta:x=1") == bRC_OK);
  CHECK(nlog == 1);
  /* another instance of beta is a new context with its own newPlugin */
  CHECK(dm_job_plugin_options(job, "beta:instance=3:x=1") == bRC_OK);
  CHECK(nlog == 3 && event_log[1].event == 0 && event_log[1].instance == 3 &&
        event_log[2].event == bDirEventNewPluginOptions);
  nlog = 0;
  dm_job_free_plugins(job); /* the disabled context is freed as well */
  CHECK(nlog == 3);
  dm_job_free(job);
  dm_director_free(dir);
}

static void test_plugin_options(void) {
  dm_director *dir = two_plugin_director();
  dm_job *job;
  dm_message m;
  size_t before;
  const char *opts = "Alpha:Instance=3:module_name=x:password=hunter2";
  if (dir == NULL) {
    failed++;
    return;
  }
  reset();
  job = dm_job_new(dir, "Backup", 9);
  dm_job_new_plugins(job);

  /* existing instance 0: no newPlugin, the event gets the whole string */
  nlog = 0;
  cfg_alpha.options_rc = bRC_More;
  CHECK(dm_job_plugin_options(job, "alpha:module_name=x") == bRC_More);
  CHECK(nlog == 1 && event_log[0].event == bDirEventNewPluginOptions &&
        event_log[0].instance == 0 &&
        strcmp(event_log[0].value, "alpha:module_name=x") == 0);
  cfg_alpha.options_rc = bRC_OK;

  /* a new instance, name and key in any case */
  nlog = 0;
  CHECK(dm_job_plugin_options(job, opts) == bRC_OK);
  CHECK(nlog == 2 && event_log[0].event == 0 && event_log[0].instance == 3 &&
        event_log[1].event == bDirEventNewPluginOptions &&
        event_log[1].value == (const void *)opts);
  CHECK(dm_job_context_count(job) == 3);
  CHECK(dm_job_context(job, 2)->instance == 3);
  /* again: the same context */
  nlog = 0;
  CHECK(dm_job_plugin_options(job, "alpha:instance=3") == bRC_OK);
  CHECK(nlog == 1 && event_log[0].instance == 3);
  CHECK(dm_job_context_count(job) == 3);
  /* the first instance= wins, as in bareos-dir */
  nlog = 0;
  CHECK(dm_job_plugin_options(job, "beta:a=b:instance=127:instance=1") ==
        bRC_OK);
  CHECK(nlog == 2 && event_log[0].instance == 127);
  CHECK(dm_job_plugin_options(job, "beta:instance=0") == bRC_OK);
  CHECK(dm_job_context_count(job) == 4);

  /* unknown plugin: ignored, a debug note, bRC_OK */
  before = dm_director_message_count(dir);
  nlog = 0;
  CHECK(dm_job_plugin_options(job, "alph:instance=1") == bRC_OK);
  CHECK(dm_job_plugin_options(job, "alphaa:x=y") == bRC_OK);
  CHECK(nlog == 0 && dm_job_context_count(job) == 4);
  CHECK(dm_director_message_count(dir) == before + 2);
  CHECK(dm_director_message(dir, before, &m) == 0 && m.kind == DM_MSG_DEBUG &&
        contains(m.text, "alph"));

  /* rejected strings: -1 and an M_ERROR director message */
  before = dm_director_message_count(dir);
  CHECK(dm_job_plugin_options(job, "alpha:instance=128") == -1);
  CHECK(dm_director_message(dir, before, &m) == 0 && m.kind == DM_MSG_JOB &&
        m.type == M_ERROR && contains(m.text, "instance=128 is above 127"));
  CHECK(dm_job_plugin_options(job, "alpha:instance=abc:password=s3cret") == -1);
  CHECK(dm_director_message(dir, before + 1, &m) == 0 && m.type == M_ERROR &&
        contains(m.text, "instance=abc is not a number") &&
        !contains(m.text, "s3cret") && contains(m.text, "password=****"));
  CHECK(dm_job_plugin_options(job, "alpha:instance=") == -1);
  CHECK(dm_job_plugin_options(job, "alpha:instance=-1") == -1);
  CHECK(dm_job_plugin_options(job, "alpha:instance=99999999999999999999") ==
        -1);
  CHECK(dm_job_plugin_options(job, "alpha") == -1);
  CHECK(dm_director_message(dir, before + 5, &m) == 0 &&
        contains(m.text, "missing ':'"));
  CHECK(dm_job_plugin_options(job, NULL) == -1);
  CHECK(dm_director_message_count(dir) == before + 7);
  CHECK(dm_job_error_count(job) == 0); /* a director message, not the job's */
  CHECK(dm_job_context_count(job) == 4);

  dm_job_free_plugins(job);
  dm_job_free(job);
  dm_director_free(dir);
}

static int va_register(PluginContext *ctx, int n, int a, int b) {
  return core->registerBareosEvents(ctx, n, a, b);
}

static void test_register_events(void) {
  dm_director *dir = two_plugin_director();
  dm_job *job;
  PluginContext *ctx, *nobody;
  if (dir == NULL) {
    failed++;
    return;
  }
  job = dm_job_new(dir, "Backup", 10);
  ctx = dm_job_bare_context(job, 0, 4);
  CHECK(ctx != NULL && ctx->instance == 4 && ctx->plugin != NULL);
  CHECK(dm_context_events(ctx) == 0);
  CHECK(va_register(ctx, 2, bDirEventJobEnd, 63) == bRC_OK);
  CHECK(dm_context_events(ctx) == ((1ull << 2) | (1ull << 63)));
  CHECK(va_register(ctx, 1, 64, 0) == bRC_Error);
  CHECK(va_register(ctx, 1, 0, 0) == bRC_Error);
  CHECK(va_register(ctx, 1, -5, 0) == bRC_Error);
  /* the valid ones of a mixed call are still registered */
  CHECK(va_register(ctx, 2, 200, bDirEventJobRun) == bRC_Error);
  CHECK(dm_context_events(ctx) == ((1ull << 2) | (1ull << 4) | (1ull << 63)));
  CHECK(va_register(ctx, 0, 0, 0) == bRC_OK);
  CHECK(core->registerBareosEvents(ctx, -1) == bRC_Error);
  CHECK(core->unregisterBareosEvents(ctx, 2, 63, bDirEventJobRun) == bRC_OK);
  CHECK(dm_context_events(ctx) == (1ull << 2));
  CHECK(core->unregisterBareosEvents(ctx, 1, 64) == bRC_Error);
  CHECK(core->registerBareosEvents(NULL, 1, 1) == bRC_Error);
  CHECK(core->unregisterBareosEvents(NULL, 1, 1) == bRC_Error);
  {
    /* a context the model did not make */
    PluginContext fake = {0, NULL, NULL, NULL};
    int junk = 0;
    fake.core_private_context = &junk;
    CHECK(core->registerBareosEvents(&fake, 1, 1) == bRC_Error);
    CHECK(core->JobMessage(&fake, "f", 1, M_INFO, 0, "%s", "x") == bRC_Error);
  }
  nobody = dm_job_bare_context(job, -1, 0);
  CHECK(nobody != NULL && nobody->plugin == NULL);
  CHECK(dm_context_plugin_name(nobody) == NULL);
  CHECK(dm_job_bare_context(job, 2, 0) == NULL);
  CHECK(dm_job_bare_context(job, 0, 128) == NULL);
  CHECK(dm_job_context_count(job) == 0); /* bare contexts are not listed */
  dm_job_free(job);
  dm_director_free(dir);
}

static void test_get_value(void) {
  dm_director *dir = two_plugin_director();
  dm_job *job;
  PluginContext *ctx;
  char *s = NULL;
  int i = 0;
  uint64_t u = 0;
  char buf[64];
  int64_t v;
  if (dir == NULL) {
    failed++;
    return;
  }
  job = dm_job_new(dir, "NightlyBackup", 1205);
  ctx = dm_job_bare_context(job, 0, 0);

  CHECK(core->getBareosValue(ctx, bDirVarJob, &s) == bRC_OK);
  CHECK_STR(s, "NightlyBackup");
  CHECK(core->getBareosValue(ctx, bDirVarJobName, &s) == bRC_OK);
  /* NightlyBackup.YYYY-MM-DD_HH.MM.SS_05 */
  CHECK(s != NULL && strlen(s) == strlen("NightlyBackup.") + 22);
  CHECK(s != NULL && strncmp(s, "NightlyBackup.", 14) == 0 && s[18] == '-' &&
        s[21] == '-' && s[24] == '_' && s[27] == '.' && s[30] == '.' &&
        s[33] == '_' && strcmp(s + 34, "05") == 0);
  CHECK(dm_job_get_str(job, bDirVarJobName, buf, sizeof buf) == 0 &&
        strcmp(buf, s) == 0);
  CHECK(dm_job_get_str(job, bDirVarJobName, buf, 5) == -1);

  CHECK(core->getBareosValue(ctx, bDirVarJobId, &i) == bRC_OK && i == 1205);
  CHECK(core->getBareosValue(ctx, bDirVarLevel, &i) == bRC_OK && i == 'F');
  CHECK(core->getBareosValue(ctx, bDirVarType, &i) == bRC_OK && i == 'B');
  CHECK(core->getBareosValue(ctx, bDirVarJobStatus, &i) == bRC_OK && i == 'C');
  CHECK(core->getBareosValue(ctx, bDirVarPriority, &i) == bRC_OK && i == 10);
  CHECK(core->getBareosValue(ctx, bDirVarNumVols, &i) == bRC_OK && i == 0);

  /* counters are written as int: a zeroed uint64 reads back right */
  dm_job_set_int(job, bDirVarJobErrors, 3);
  dm_job_set_int(job, bDirVarJobFiles, 1000);
  dm_job_set_int(job, bDirVarSDJobFiles, 999);
  dm_job_set_int(job, bDirVarSDErrors, 2);
  dm_job_set_int(job, bDirVarLastRate, 12345);
  u = 0;
  CHECK(core->getBareosValue(ctx, bDirVarJobErrors, &u) == bRC_OK && u == 3);
  u = 0;
  CHECK(core->getBareosValue(ctx, bDirVarJobFiles, &u) == bRC_OK && u == 1000);
  u = 0;
  CHECK(core->getBareosValue(ctx, bDirVarSDJobFiles, &u) == bRC_OK && u == 999);
  u = 0;
  CHECK(core->getBareosValue(ctx, bDirVarSDErrors, &u) == bRC_OK && u == 2);
  u = 0;
  CHECK(core->getBareosValue(ctx, bDirVarLastRate, &u) == bRC_OK && u == 12345);
  {
    /* an int is written: the bytes after it stay untouched */
    unsigned char raw[8];
    memset(raw, 0xee, sizeof raw);
    CHECK(core->getBareosValue(ctx, bDirVarJobErrors, raw) == bRC_OK);
    CHECK(raw[4] == 0xee && raw[7] == 0xee);
  }
  dm_job_set_int(job, bDirVarJobBytes, (int64_t)1 << 40);
  dm_job_set_int(job, bDirVarReadBytes, 5000000000LL);
  CHECK(core->getBareosValue(ctx, bDirVarJobBytes, &u) == bRC_OK &&
        u == ((uint64_t)1 << 40));
  CHECK(core->getBareosValue(ctx, bDirVarReadBytes, &u) == bRC_OK &&
        u == 5000000000ULL);
  dm_job_set_int(job, bDirVarFDJobStatus, 'T');
  dm_job_set_int(job, bDirVarSDJobStatus, 'R');
  CHECK(core->getBareosValue(ctx, bDirVarFDJobStatus, &i) == bRC_OK &&
        i == 'T');
  CHECK(core->getBareosValue(ctx, bDirVarSDJobStatus, &i) == bRC_OK &&
        i == 'R');

  /* unset strings answer an error */
  s = (char *)"junk";
  CHECK(core->getBareosValue(ctx, bDirVarClient, &s) == bRC_Error);
  CHECK(core->getBareosValue(ctx, bDirVarStorage, &s) == bRC_Error);
  CHECK(core->getBareosValue(ctx, bDirVarVolumeName, &s) == bRC_Error);
  CHECK(dm_job_get_str(job, bDirVarClient, buf, sizeof buf) == -1);

  dm_job_set_str(job, bDirVarClient, "client-fd");
  dm_job_set_str(job, bDirVarPool, "Full");
  dm_job_set_str(job, bDirVarCatalog, "MyCatalog");
  dm_job_set_str(job, bDirVarMediaType, "File");
  dm_job_set_str(job, bDirVarReadStorage, "ReadSD");
  CHECK(core->getBareosValue(ctx, bDirVarClient, &s) == bRC_OK);
  CHECK_STR(s, "client-fd");
  CHECK(core->getBareosValue(ctx, bDirVarPool, &s) == bRC_OK);
  CHECK_STR(s, "Full");
  CHECK(core->getBareosValue(ctx, bDirVarCatalog, &s) == bRC_OK);
  CHECK_STR(s, "MyCatalog");
  CHECK(core->getBareosValue(ctx, bDirVarMediaType, &s) == bRC_OK);
  CHECK_STR(s, "File");
  /* storage: write storage, else read storage */
  CHECK(core->getBareosValue(ctx, bDirVarStorage, &s) == bRC_OK);
  CHECK_STR(s, "ReadSD");
  CHECK(core->getBareosValue(ctx, bDirVarWriteStorage, &s) == bRC_Error);
  dm_job_set_str(job, bDirVarStorage, "WriteSD");
  CHECK(core->getBareosValue(ctx, bDirVarStorage, &s) == bRC_OK);
  CHECK_STR(s, "WriteSD");
  CHECK(core->getBareosValue(ctx, bDirVarWriteStorage, &s) == bRC_OK);
  CHECK_STR(s, "WriteSD");
  CHECK(core->getBareosValue(ctx, bDirVarReadStorage, &s) == bRC_OK);
  CHECK_STR(s, "ReadSD");
  /* an old value handed out stays readable after a change */
  {
    char *old = NULL;
    core->getBareosValue(ctx, bDirVarClient, &old);
    dm_job_set_str(job, bDirVarClient, "other-fd");
    CHECK_STR(old, "client-fd");
    dm_job_set_str(job, bDirVarClient, NULL);
    CHECK(core->getBareosValue(ctx, bDirVarClient, &s) == bRC_Error);
  }

  CHECK(core->getBareosValue(ctx, bDirVarCatalogRes, &s) == bRC_Error);
  CHECK(core->getBareosValue(ctx, 0, &i) == bRC_Error);
  CHECK(core->getBareosValue(ctx, 28, &i) == bRC_Error);
  CHECK(core->getBareosValue(ctx, 1000, &i) == bRC_Error);
  CHECK(core->getBareosValue(ctx, bDirVarJobId, NULL) == bRC_Error);
  CHECK(core->getBareosValue(NULL, bDirVarJobId, &i) == bRC_Error);

  /* the plugin directory, with and without a context */
  CHECK(core->getBareosValue(ctx, bDirVarPluginDir, &s) == bRC_OK);
  CHECK_STR(s, "/plugins");
  s = NULL;
  CHECK(core->getBareosValue(NULL, bDirVarPluginDir, &s) == bRC_OK);
  CHECK_STR(s, "/plugins");

  /* the model's own setters and getters */
  CHECK(dm_job_set_int(job, bDirVarClient, 1) == -1);
  CHECK(dm_job_set_str(job, bDirVarJobId, "1") == -1);
  CHECK(dm_job_set_str(job, bDirVarCatalogRes, "x") == -1);
  CHECK(dm_job_set_int(job, bDirVarPluginDir, 1) == -1);
  CHECK(dm_job_set_int(job, 99, 1) == -1);
  CHECK(dm_job_get_int(job, bDirVarJob, &v) == -1);
  CHECK(dm_job_set_int(job, bDirVarJobId, 77) == 0 && dm_job_id(job) == 77);
  CHECK(core->getBareosValue(ctx, bDirVarJobId, &i) == bRC_OK && i == 77);

  dm_job_free(job);
  dm_director_free(dir);
}

static void test_set_value(void) {
  dm_director *dir = two_plugin_director();
  dm_job *job;
  PluginContext *ctx;
  char buf[64];
  int64_t v;
  int level = 'I', prio = 20;
  if (dir == NULL) {
    failed++;
    return;
  }
  job = dm_job_new(dir, "Backup", 11);
  ctx = dm_job_bare_context(job, 1, 0);

  CHECK(core->setBareosValue(ctx, bwDirVarVolumeName, "Vol-0001") == bRC_OK);
  CHECK(dm_job_get_str(job, bDirVarVolumeName, buf, sizeof buf) == 0 &&
        strcmp(buf, "Vol-0001") == 0);
  CHECK(core->setBareosValue(ctx, bwDirVarPriority, &prio) == bRC_OK);
  CHECK(dm_job_get_int(job, bDirVarPriority, &v) == 0 && v == 20);
  CHECK(core->setBareosValue(ctx, bwDirVarJobLevel, &level) == bRC_OK);
  CHECK(dm_job_get_int(job, bDirVarLevel, &v) == 0 && v == 'I');
  CHECK(core->setBareosValue(ctx, bwDirVarJobReport, "report text") == bRC_OK);
  CHECK(core->setBareosValue(ctx, bwDirVarJobReport, "again") == bRC_OK);
  CHECK(core->setBareosValue(ctx, 5, &prio) == bRC_Error);
  CHECK(core->setBareosValue(ctx, 0, &prio) == bRC_Error);
  CHECK(core->setBareosValue(ctx, bwDirVarPriority, NULL) == bRC_Error);
  CHECK(core->setBareosValue(NULL, bwDirVarPriority, &prio) == bRC_Error);
  CHECK(dm_job_set_count(job, bwDirVarJobReport) == 2);
  CHECK(dm_job_set_count(job, bwDirVarVolumeName) == 1);
  CHECK(dm_job_set_count(job, bwDirVarPriority) == 1);
  CHECK(dm_job_set_count(job, bwDirVarJobLevel) == 1);
  CHECK(dm_job_set_count(job, 0) == -1 && dm_job_set_count(job, 5) == -1);
  dm_job_free(job);
  dm_director_free(dir);
}

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static int sink_calls;
static char sink_last[128];

static void sink(void *arg, const dm_message *m) {
  (void)arg;
  pthread_mutex_lock(&sink_lock);
  sink_calls++;
  bd_fmt(sink_last, sizeof sink_last, "%s", m->text);
  pthread_mutex_unlock(&sink_lock);
}

static void test_messages(void) {
  dm_director *dir = two_plugin_director();
  dm_job *job;
  PluginContext *ctx;
  dm_message m;
  char *big;
  size_t n = 200000;
  int64_t v;
  if (dir == NULL) {
    failed++;
    return;
  }
  sink_calls = 0;
  dm_director_set_sink(dir, sink, NULL);
  job = dm_job_new(dir, "Backup", 12);
  ctx = dm_job_bare_context(job, 0, 2);

  /* '%' in the text, passed as an argument, arrives as is */
  CHECK(core->JobMessage(ctx, "plugin.c", 42, M_INFO, 0, "%s",
                         "100% done %d %n %s\n") == bRC_OK);
  CHECK(dm_job_message_count(job) == 1);
  CHECK(dm_job_message(job, 0, &m) == 0);
  CHECK_STR(m.text, "100% done %d %n %s\n");
  CHECK(m.kind == DM_MSG_JOB && m.type == M_INFO && m.jobid == 12 &&
        m.instance == 2 && m.line == 42);
  CHECK_STR(m.plugin, "alpha");
  CHECK_STR(m.file, "plugin.c");
  CHECK(sink_calls == 1 && strcmp(sink_last, "100% done %d %n %s\n") == 0);
  CHECK(dm_job_message(job, 1, &m) == -1);

  CHECK(core->JobMessage(ctx, "p.c", 1, M_WARNING, 0, "w %d", 1) == bRC_OK);
  CHECK(core->JobMessage(ctx, "p.c", 2, M_ERROR, 0, "e %s", "x") == bRC_OK);
  CHECK(core->JobMessage(ctx, "p.c", 3, M_ERROR, 0, "e2") == bRC_OK);
  CHECK(dm_job_warning_count(job) == 1 && dm_job_error_count(job) == 2 &&
        dm_job_fatal_count(job) == 0);
  CHECK(dm_job_get_int(job, bDirVarJobErrors, &v) == 0 && v == 2);
  CHECK(dm_job_get_int(job, bDirVarJobStatus, &v) == 0 && v == 'C');
  CHECK(core->JobMessage(ctx, "p.c", 4, M_FATAL, 0, "%s", "fatal") == bRC_OK);
  CHECK(dm_job_fatal_count(job) == 1);
  CHECK(dm_job_get_int(job, bDirVarJobStatus, &v) == 0 && v == 'f');
  CHECK(dm_job_message(job, 2, &m) == 0 && strcmp(m.text, "e x") == 0);

  CHECK(core->DebugMessage(ctx, "d.c", 7, 100, "debug %s %%", "text") ==
        bRC_OK);
  CHECK(dm_job_message(job, 5, &m) == 0 && m.kind == DM_MSG_DEBUG &&
        m.type == 100 && strcmp(m.text, "debug text %") == 0);
  CHECK(dm_job_fatal_count(job) == 1 && dm_job_error_count(job) == 2);
  CHECK(core->JobMessage(ctx, "p.c", 1, M_INFO, 0, NULL) == bRC_Error);

  /* no fixed-size buffer */
  big = malloc(n + 1);
  if (big != NULL) {
    memset(big, 'z', n);
    big[n] = '\0';
    CHECK(core->JobMessage(ctx, NULL, 0, M_INFO, 0, "<%s>", big) == bRC_OK);
    CHECK(dm_job_message(job, 6, &m) == 0 && strlen(m.text) == n + 2 &&
          m.file == NULL);
    free(big);
  }

  /* NULL context: the director's own list */
  CHECK(dm_director_message_count(dir) == 0);
  CHECK(core->JobMessage(NULL, "load.c", 9, M_ERROR, 0, "%s",
                         "no job yet 50%") == bRC_OK);
  CHECK(core->DebugMessage(NULL, "load.c", 10, 200, "%d", 5) == bRC_OK);
  CHECK(dm_director_message_count(dir) == 2);
  CHECK(dm_director_message(dir, 0, &m) == 0 && m.kind == DM_MSG_JOB &&
        m.type == M_ERROR && m.jobid == 0 && m.plugin == NULL &&
        strcmp(m.text, "no job yet 50%") == 0);
  CHECK(dm_director_message(dir, 1, &m) == 0 && m.kind == DM_MSG_DEBUG &&
        strcmp(m.text, "5") == 0);
  CHECK(dm_director_message(dir, 2, &m) == -1);
  CHECK(dm_job_message_count(job) == 7);
  CHECK(sink_calls == 9);

  /* a bare context without plugin */
  ctx = dm_job_bare_context(job, -1, 0);
  CHECK(core->JobMessage(ctx, "x.c", 1, M_INFO, 0, "%s", "anon") == bRC_OK);
  CHECK(dm_job_message(job, 7, &m) == 0 && m.plugin == NULL && m.jobid == 12);
  dm_job_free(job);
  dm_director_free(dir);

  /* with no director at all, NULL-context calls fail cleanly */
  {
    char *s = NULL;
    CHECK(core->JobMessage(NULL, "x.c", 1, M_INFO, 0, "%s", "lost") ==
          bRC_Error);
    CHECK(core->getBareosValue(NULL, bDirVarPluginDir, &s) == bRC_Error);
  }
}

static dm_director *count_dir;
static int count_seen[8];
static int ncount_seen;
static void count_on_event(PluginContext *ctx, int event) {
  int n = -1;
  (void)event;
  if (core->getInstanceCount(ctx, &n) == bRC_OK && ncount_seen < 8)
    count_seen[ncount_seen++] = n;
}

static void test_instance_count(void) {
  dm_director *dir = two_plugin_director();
  dm_job *j1, *j2;
  int n = -1;
  PluginContext *a1, *b1;
  if (dir == NULL) {
    failed++;
    return;
  }
  reset();
  count_dir = dir;
  j1 = dm_job_new(dir, "One", 1);
  j2 = dm_job_new(dir, "Two", 2);
  dm_job_new_plugins(j1);
  dm_job_plugin_options(j1, "alpha:instance=1");
  dm_job_plugin_options(j1, "alpha:instance=2");
  dm_job_new_plugins(j2);
  dm_job_plugin_options(j2, "alpha:instance=1");
  a1 = dm_job_context(j1, 0);
  b1 = dm_job_context(j1, 1);
  CHECK(core->getInstanceCount(a1, &n) == bRC_OK && n == 5);
  CHECK(core->getInstanceCount(dm_job_context(j2, 0), &n) == bRC_OK && n == 5);
  CHECK(core->getInstanceCount(b1, &n) == bRC_OK && n == 2);
  /* from inside an event */
  cfg_alpha.on_event = count_on_event;
  ncount_seen = 0;
  dm_job_event(j2, bDirEventJobStart, NULL);
  CHECK(ncount_seen == 2 && count_seen[0] == 5 && count_seen[1] == 5);
  cfg_alpha.on_event = NULL;

  dm_job_free_plugins(j2);
  CHECK(core->getInstanceCount(a1, &n) == bRC_OK && n == 3);
  dm_job_free(j2);
  CHECK(core->getInstanceCount(a1, &n) == bRC_OK && n == 3);
  CHECK(core->getInstanceCount(NULL, &n) == bRC_Error);
  CHECK(core->getInstanceCount(a1, NULL) == bRC_Error);
  CHECK(core->getInstanceCount(dm_job_bare_context(j1, -1, 0), &n) ==
        bRC_Error);
  /* a freed context still answers, without counting itself */
  dm_job_free_plugins(j1);
  CHECK(core->getInstanceCount(a1, &n) == bRC_OK && n == 0);
  CHECK(core->JobMessage(a1, "late.c", 1, M_INFO, 0, "%s", "late") == bRC_OK);
  dm_job_free(j1);
  dm_director_free(dir);
}

/* Threads. */

#define NTHREADS 8
#define NMSG 2000

typedef struct worker {
  PluginContext *ctx;
  int id;
  int errors;
} worker;

static void *message_worker(void *arg) {
  worker *w = arg;
  int k;
  for (k = 0; k < NMSG; k++) {
    int type = (k % 10 == 0) ? M_WARNING : M_INFO;
    if (core->JobMessage(w->ctx, __FILE__, __LINE__, type, 0,
                         "thread %d message %d 100%%", w->id, k) != bRC_OK)
      w->errors++;
    if (k % 100 == 0) {
      int n, jid;
      char *name;
      if (core->getInstanceCount(w->ctx, &n) != bRC_OK) w->errors++;
      if (core->getBareosValue(w->ctx, bDirVarJobId, &jid) != bRC_OK ||
          jid != 40)
        w->errors++;
      if (core->getBareosValue(w->ctx, bDirVarJob, &name) != bRC_OK)
        w->errors++;
      if (core->DebugMessage(NULL, __FILE__, __LINE__, 1, "t%d", w->id) !=
          bRC_OK)
        w->errors++;
    }
  }
  return NULL;
}

typedef struct churn {
  dm_director *dir;
  int rounds;
} churn;

/* Jobs starting and ending while other threads count instances. */
static void *job_churn(void *arg) {
  churn *c = arg;
  int r;
  for (r = 0; r < c->rounds; r++) {
    dm_job *j = dm_job_new(c->dir, "Churn", 1000 + (uint32_t)r);
    dm_job_new_plugins(j);
    dm_job_plugin_options(j, "beta:instance=9");
    dm_job_event(j, bDirEventJobRun, NULL);
    dm_job_free_plugins(j);
    dm_job_free(j);
  }
  return NULL;
}

static void test_threads(void) {
  dm_director *dir = two_plugin_director();
  dm_job *job;
  pthread_t th[NTHREADS + 1];
  worker w[NTHREADS];
  churn c;
  int i, errors = 0;
  size_t k, bad = 0;
  if (dir == NULL) {
    failed++;
    return;
  }
  reset();
  sink_calls = 0;
  dm_director_set_sink(dir, sink, NULL);
  job = dm_job_new(dir, "Threads", 40);
  dm_job_new_plugins(job);
  c.dir = dir;
  c.rounds = 50;
  for (i = 0; i < NTHREADS; i++) {
    w[i].ctx = (i % 2 == 0) ? dm_job_context(job, (size_t)(i / 2) % 2)
                            : dm_job_bare_context(job, 0, (uint32_t)i);
    w[i].id = i;
    w[i].errors = 0;
    pthread_create(&th[i], NULL, message_worker, &w[i]);
  }
  pthread_create(&th[NTHREADS], NULL, job_churn, &c);
  for (i = 0; i <= NTHREADS; i++) pthread_join(th[i], NULL);
  for (i = 0; i < NTHREADS; i++) errors += w[i].errors;
  CHECK(errors == 0);
  CHECK(dm_job_message_count(job) == (size_t)NTHREADS * NMSG);
  CHECK(dm_job_warning_count(job) == NTHREADS * (NMSG / 10));
  CHECK(dm_director_message_count(dir) == (size_t)NTHREADS * (NMSG / 100));
  CHECK(sink_calls == NTHREADS * NMSG + NTHREADS * (NMSG / 100));
  for (k = 0; k < dm_job_message_count(job); k++) {
    dm_message m;
    if (dm_job_message(job, k, &m) != 0 || strncmp(m.text, "thread ", 7) != 0 ||
        !contains(m.text, " 100%") || m.jobid != 40)
      bad++;
  }
  CHECK(bad == 0);
  dm_job_free_plugins(job);
  dm_job_free(job);
  dm_director_free(dir);
}

static void test_misc(void) {
  PluginApiDefinition api;
  dm_director *dir;
  dm_job *job;
  char buf[32];
  core = dm_core_functions();
  CHECK(core->size == sizeof(CoreFunctions) && core->version == 4);
  dm_api_definition(&api);
  CHECK(api.size == sizeof(CoreFunctions) && api.version == 4);

  /* NULL-context calls go to the newest director alive */
  {
    dm_director *older = dm_director_new("older", "/old");
    dm_director *newer = dm_director_new("newer", "/new");
    char *s = NULL;
    CHECK(core->getBareosValue(NULL, bDirVarPluginDir, &s) == bRC_OK);
    CHECK_STR(s, "/new");
    dm_director_free(newer);
    CHECK(core->getBareosValue(NULL, bDirVarPluginDir, &s) == bRC_OK);
    CHECK_STR(s, "/old");
    dm_director_free(older);
  }

  dir = dm_director_new(NULL, NULL);
  CHECK(dir != NULL && strcmp(dm_director_name(dir), "bareos-dir") == 0);
  {
    char *s = (char *)"x";
    CHECK(core->getBareosValue(NULL, bDirVarPluginDir, &s) == bRC_Error);
  }
  job = dm_job_new(dir, "J", 3);
  CHECK(dm_job_get_str(job, bDirVarJobName, buf, sizeof buf) == 0 &&
        strlen(buf) == 2 + 22 && strcmp(buf + 22, "03") == 0);
  /* no plugins: the steps do nothing */
  CHECK(dm_job_new_plugins(job) == 0);
  CHECK(dm_job_plugin_options(job, "python:x=y") == bRC_OK);
  CHECK(dm_job_event(job, bDirEventJobStart, NULL) == bRC_OK);
  CHECK(dm_job_free_plugins(job) == 0);
  /* a job still alive is freed with its director */
  dm_director_free(dir);
}

int main(void) {
  test_misc();
  test_add_plugin();
  test_job_steps();
  test_return_codes();
  test_new_plugin_failure();
  test_plugin_options();
  test_register_events();
  test_get_value();
  test_set_value();
  test_messages();
  test_instance_count();
  test_threads();
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
