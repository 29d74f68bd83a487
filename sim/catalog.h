/*
 * Replaying the jobs of a Bareos catalog through the loaded plugins
 * (bareosdir-sim --catalog): the catalog's connection comes from the
 * configuration's Catalog resource, the jobs' values from its Job table, read
 * in JobId order in batches inside one read-only transaction.
 */
#ifndef BAREOSDIR_SIM_CATALOG_H
#define BAREOSDIR_SIM_CATALOG_H

#include <stddef.h>

#include "config.h"
#include "director_model.h"

/* What the command line selects; zero-initialised means "everything". */
typedef struct cat_filters {
  const char *catalog;   /* Catalog resource name; NULL: the first */
  char since[24];        /* "YYYY-MM-DD HH:MM:SS" local time; "" for none */
  const char *job_name;  /* the Job table's Name; NULL for all */
  unsigned long jobid_min, jobid_max; /* 0: unbounded */
  char statuses[64];     /* JobStatus letters; "" for all */
  unsigned long limit;   /* 0: no limit */
  unsigned long connect_timeout, query_timeout; /* seconds; 0: defaults */
  int json;
} cat_filters;

typedef struct cat_session cat_session;

/* What the simulator lends the replay. */
typedef struct cat_host {
  const char *prog;
  const bd_config *cfg;
  dm_director *dir;
  char *const *options; /* -o lines: used for every job when noptions > 0 */
  size_t noptions;
  dm_message_sink print; /* how the simulator prints a message */
  void *print_arg;
  /* 1 when an options line names a plugin that was not loaded, with the
   * message for the administrator: such a job is not OK (as in a
   * simulated job).  NULL: not checked. */
  int (*plugin_not_loaded)(const char *line, char *msg, size_t msglen);
} cat_host;

/*
 * A filter option of the command line by its long name ("since", "jobid",
 * "job-status", "limit", "connect-timeout", "query-timeout").  Returns 0,
 * or -1 with the reason in err.
 */
int cat_option(cat_filters *f, const char *name, const char *arg, char *err,
               size_t errlen);

/*
 * Connects to the catalog the configuration names and checks that it is a
 * Bareos catalog with the columns the replay reads.  NULL with the reason in
 * err (never the password).
 */
cat_session *cat_open(const bd_config *cfg, const cat_filters *f, char *err,
                      size_t errlen);

/* Takes over the director's message sink (before the plugins are loaded,
 * so that the Director's own errors count); `host` must outlive `s`'s use
 * by the director. */
void cat_attach(cat_session *s, const cat_host *host);

/* Replays the selected jobs, prints their log and a summary; returns the
 * exit status (0: every job's plugin calls succeeded). */
int cat_replay(cat_session *s);

/* After the director is freed. */
void cat_close(cat_session *s);

#endif
