/*
 * Reading a Bareos Director configuration the way `bareos-dir -c` takes it
 * (a bareos-dir.conf file, or a directory holding bareos-dir.conf or
 * bareos-dir.d/), keeping only what the simulator needs: the Director's
 * name, Plugin Directory and Plugin Names, the Jobs' and JobDefs' plugin
 * options and job values, and the Catalogs' database connection values.
 * Everything else is parsed and skipped.  No Python and no director model
 * here, so the reader can be tested and fuzzed alone.
 */
#ifndef BAREOSDIR_SIM_CONFIG_H
#define BAREOSDIR_SIM_CONFIG_H

#include <stddef.h>

/* A Job or JobDefs resource; after loading, Jobs hold the values they
 * inherit from their JobDefs.  Strings are NULL when unset. */
typedef struct bd_config_job {
  char *name;
  char *file; /* where the resource starts, as shown in messages */
  int line;
  char *jobdefs; /* the JobDefs it names */
  int jobdefs_line;
  char *type_name; /* as written, e.g. "Backup" */
  int type;        /* character code ('B', 'R', ...), 0 when unset */
  char *level_name;
  int level; /* character code ('F', 'I', 'D', ' ', ...), 0 when unset */
  char *client;
  char *pool;
  char *storage; /* the first of its Storage list */
  int priority;
  int has_priority;
  /* Dir Plugin Options lines in order; a Job's lines replace its JobDefs'. */
  char **plugin_options;
  size_t plugin_options_count;
  int has_plugin_options;
  int resolve_state_; /* internal to the reader */
} bd_config_job;

/* A Catalog resource: where the Director's catalog database is.  Strings
 * are NULL when unset; the password is never printed by the reader. */
typedef struct bd_config_catalog {
  char *name;
  char *file;
  int line;
  char *db_name;
  char *db_user;
  char *db_password;
  char *db_address;
  char *db_socket;
  long db_port; /* 0 when unset */
} bd_config_catalog;

typedef struct bd_config {
  int has_director;
  char *director_name;
  char *director_file;
  int director_line;
  char *plugin_dir; /* NULL when unset: the Director loads no plugins */
  char **plugin_names;
  size_t plugin_names_count;
  int has_plugin_names; /* set even when the list holds only "" */
  bd_config_job *jobs;
  size_t jobs_count;
  bd_config_job *jobdefs;
  size_t jobdefs_count;
  bd_config_catalog *catalogs; /* in the order read */
  size_t catalogs_count;
  /* Things bareos-dir accepts or reads differently: "file:line: text". */
  char **warnings;
  size_t warnings_count;
} bd_config;

/* Flags for bd_config_parse_buffer. */
#define BD_CONFIG_NO_INCLUDE 1 /* an @include is a syntax error */

/*
 * Loads `path`: a file, or a directory holding bareos-dir.conf or (when
 * that is absent) the files bareos-dir.d/TYPE/NAME.conf, read in sorted
 * order.  As an
 * extension, a directory holding neither is read as if it were the
 * bareos-dir.d/ itself.  Returns NULL with "file:line: what was expected" in
 * `err` (always NUL-terminated) on any error.
 */
bd_config *bd_config_load(const char *path, char *err, size_t errlen);

/*
 * Parses `len` bytes of `data` as if read from a file called `name`
 * (relative @includes resolve against the directory of `name`).
 */
bd_config *bd_config_parse_buffer(const char *name, const char *data,
                                  size_t len, int flags, char *err,
                                  size_t errlen);

void bd_config_free(bd_config *cfg);

/* A Job by name: an exact match, else the only case-insensitive match. */
const bd_config_job *bd_config_find_job(const bd_config *cfg,
                                        const char *name);
const bd_config_job *bd_config_find_jobdefs(const bd_config *cfg,
                                            const char *name);

/*
 * Job level and type keywords as bareos-dir knows them ("Full",
 * "Incremental", ..., "Backup", "Restore", ...; any case).  The level
 * parser also takes a one-letter code (F, I, D, S, B, f, C, V, O, d, A).
 * Return the character code, or 0 when unknown.
 */
int bd_config_level_code(const char *text);
/* A Catalog by name (as bd_config_find_job), or the first when NULL. */
const bd_config_catalog *bd_config_find_catalog(const bd_config *cfg,
                                                const char *name);
int bd_config_type_code(const char *text);

#endif
