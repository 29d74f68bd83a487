/*
 * A model of the Bareos Director's side of the plugin interface: the
 * CoreFunctions callbacks, per-context event bitmasks, `Dir Plugin Options`
 * instance matching, return-code rules, job values and instance counts.
 * No Python here.  The mock director (bareosdir.testing) and the simulator
 * (bareosdir-sim) both drive plugins through it; the threads a job's steps
 * run on are the caller's business (see testing.c and sim/).
 *
 * Thread safety: every function may be called from any thread.  Calls on one
 * job are expected one at a time (as in the Director), but the callbacks may
 * arrive from any thread at any time (a plugin's own threads), so job and
 * director state are guarded by mutexes.
 */
#ifndef BAREOSDIR_DIRECTOR_MODEL_H
#define BAREOSDIR_DIRECTOR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "director_abi.h"

typedef struct dm_director dm_director;
typedef struct dm_job dm_job;

typedef enum { DM_MSG_JOB = 1, DM_MSG_DEBUG = 2 } dm_msg_kind;

typedef struct dm_message {
  dm_msg_kind kind;
  int type;          /* M_* for job messages, the level for debug messages */
  uint32_t jobid;    /* 0 for messages with a NULL context */
  const char *plugin;/* short name of the calling plugin, NULL with no ctx */
  uint32_t instance;
  const char *file;
  int line;
  const char *text;  /* formatted, as the plugin sent it */
} dm_message;

/* One handlePluginEvent / newPlugin / freePlugin call and its answer. */
typedef struct dm_call {
  const char *plugin;
  uint32_t instance;
  int event;         /* event number; 0 = newPlugin, -1 = freePlugin */
  int rc;
} dm_call;

/* Called for every message as it arrives (any thread), after it is stored. */
typedef void (*dm_message_sink)(void *arg, const dm_message *msg);

/* The callback table and API version the model hands to loadPlugin. */
const CoreFunctions *dm_core_functions(void);
void dm_api_definition(PluginApiDefinition *out);

dm_director *dm_director_new(const char *name, const char *plugin_dir);
void dm_director_free(dm_director *dir);
const char *dm_director_name(const dm_director *dir);
void dm_director_set_sink(dm_director *dir, dm_message_sink sink, void *arg);
/* Makes every JobMessage callback with a job context take `ms` ms (0: no
 * delay), as a Director busy mailing or writing the catalog: for tests of
 * a plugin thread still inside the callback when its job is freed.
 * dm_job_free waits for such callbacks. */
void dm_director_set_job_message_delay(dm_director *dir, unsigned ms);

/*
 * Adds a loaded plugin under its short name (file name up to "-dir.so"),
 * checking its PluginInformation as bareos-dir does (magic, version 4,
 * license, size).  Returns the plugin's index, or -1 with the reason in err.
 * `unload` (may be NULL) is remembered for dm_director_unload_plugins.
 */
int dm_director_add_plugin(dm_director *dir, const char *name,
                           const PluginInformation *info,
                           PluginFunctions *funcs, bRC (*unload)(void),
                           char *err, size_t errlen);
int dm_director_plugin_count(const dm_director *dir);
const char *dm_director_plugin_name(const dm_director *dir, int index);
/* Calls each plugin's unload function once (in reverse order). */
void dm_director_unload_plugins(dm_director *dir);

/* Messages sent with a NULL context (the Director's own log). */
size_t dm_director_message_count(dm_director *dir);
/* Copies message `i` into *out; strings stay valid until the director is freed. */
int dm_director_message(dm_director *dir, size_t i, dm_message *out);

/*
 * A job of Job resource `job_name` with JobId `jobid`.  The unique job name
 * gets the Director's form NAME.YYYY-MM-DD_HH.MM.SS_NN (NN = jobid % 100).
 * Defaults: level 'F', type 'B', status 'C', priority 10, everything else
 * empty/zero.  A job is freed after dm_job_free_plugins (or without it).
 */
dm_job *dm_job_new(dm_director *dir, const char *job_name, uint32_t jobid);
void dm_job_free(dm_job *job);
uint32_t dm_job_id(const dm_job *job);

/*
 * Job values, by bDirVar* number.  String variables: Job, Client, Pool,
 * Storage (write), WriteStorage, ReadStorage, Catalog, MediaType, JobName,
 * VolumeName.  Integer variables: Level, Type, JobId, NumVols, JobStatus,
 * Priority, JobErrors, JobFiles, SDJobFiles, SDErrors, FDJobStatus,
 * SDJobStatus, LastRate, JobBytes, ReadBytes.  Returns 0, or -1 for a
 * variable of the other kind or unknown.  A NULL string unsets it.
 */
int dm_job_set_str(dm_job *job, int var, const char *value);
int dm_job_set_int(dm_job *job, int var, int64_t value);
/* Reads back; a string getter copies into buf (returns -1 when unset). */
int dm_job_get_str(dm_job *job, int var, char *buf, size_t buflen);
/* A malloc'd copy of a string value, whatever its length; NULL when unset
 * (or memory is short). */
char *dm_job_dup_str(dm_job *job, int var);
int dm_job_get_int(dm_job *job, int var, int64_t *value);

/* Values the plugins set with setBareosValue (bwDirVar*): the count of
 * accepted sets, and the last value.  The job report counter is var 1. */
int dm_job_set_count(dm_job *job, int wvar);

/* The job's steps, as the Director runs them (director-abi.md). */
int dm_job_new_plugins(dm_job *job);              /* instance 0 of each plugin */
/* Returns bRC of the NewPluginOptions event, or -1 (error message stored
 * as a director message) when the string is rejected (bad instance). */
int dm_job_plugin_options(dm_job *job, const char *options);
/* Delivers an event to every context that registered it, in list order,
 * with the Director's stop rules.  Returns the last answer (bRC_OK when no
 * context took it; bRC_Cancel when the job was canceled). */
int dm_job_event(dm_job *job, int event, void *value);
int dm_job_free_plugins(dm_job *job);             /* freePlugin for each */
void dm_job_cancel(dm_job *job);

/* A context of plugin `plugin_index` (-1: none, a bare context for direct
 * API calls from tests) that no plugin function is ever called for. */
PluginContext *dm_job_bare_context(dm_job *job, int plugin_index,
                                   uint32_t instance);

/* Introspection. */
size_t dm_job_context_count(dm_job *job);
PluginContext *dm_job_context(dm_job *job, size_t i);
const char *dm_context_plugin_name(const PluginContext *ctx);
/* Registered events of a context as a bitmask: bit n = event n. */
uint64_t dm_context_events(const PluginContext *ctx);
dm_job *dm_context_job(const PluginContext *ctx);

size_t dm_job_message_count(dm_job *job);
int dm_job_message(dm_job *job, size_t i, dm_message *out);
size_t dm_job_call_count(dm_job *job);
int dm_job_call(dm_job *job, size_t i, dm_call *out);
/* Counts of job messages by outcome: M_FATAL, M_ERROR, M_WARNING. */
int dm_job_fatal_count(dm_job *job);
int dm_job_error_count(dm_job *job);
int dm_job_warning_count(dm_job *job);

#endif
