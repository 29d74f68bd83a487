/*
 * Replaying real jobs from a Bareos catalog through the loaded plugins:
 * connecting to PostgreSQL as the configuration's Catalog resource says
 * (libpq, every wait bounded by our own deadline), checking that the
 * database is a Bareos catalog with the Job columns we read, and then, in
 * one read-only transaction, reading the selected jobs in JobId order in
 * batches (keyset on JobId, so memory does not grow with the catalog) and
 * running each through the director model's job lifecycle on the
 * Director's three threads.  The catalog is only ever read.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "catalog.h"
#include "textfmt.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BATCH_ROWS 500
#define TEXT_MAX 1024 /* longest Job, Name, Client or Pool name taken */
#define DEFAULT_CONNECT_TIMEOUT 10
#define DEFAULT_QUERY_TIMEOUT 60
#define QUERY_GRACE 5 /* seconds our wait adds to the server's timeout */
#define GONE_NAMES_SHOWN 10
#define SCHEMA_VERSION 2250 /* Bareos's current catalog schema */

enum { COL_JOBID, COL_JOB, COL_NAME, COL_TYPE, COL_LEVEL, COL_STATUS,
       COL_FILES, COL_BYTES, COL_READBYTES, COL_ERRORS, COL_START, COL_END,
       COL_CLIENT, COL_POOL, NCOLS };

/* One row of the Job table, pointing into the PGresult. */
typedef struct cat_row {
  uint32_t jobid;
  const char *job, *name;
  int type, level, status;
  int64_t files, bytes, readbytes, errors;
  const char *start, *end; /* NULL when unset */
  const char *client, *pool;
} cat_row;

struct cat_session {
  PGconn *conn;
  const bd_config_catalog *cat;
  cat_filters f;
  char where[600]; /* the catalog as messages name it (no password) */
  long version;
  /* Filled during the replay; the sink runs on any thread. */
  pthread_mutex_t lock;
  const cat_host *host;
  int dir_errors;
  unsigned long replayed, ok, failed, warnings, gone, bad_values;
  char gone_names[GONE_NAMES_SHOWN][128];
  int ngone_names;
  int more_gone_names; /* distinct names beyond those kept */
};

/* ---- small helpers ---- */

/* Overwrites every copy of `secret` in `text` with '*' (libpq does not put
 * the password in its messages; this keeps it that way). */
static void scrub(char *text, const char *secret)
{
  size_t n = secret ? strlen(secret) : 0;
  char *p;
  if (!n) return;
  while ((p = strstr(text, secret)) != NULL) memset(p, '*', n);
}

/* A libpq message without its "ERROR:  " head and final newline. */
static void pg_message(char *out, size_t len, const char *msg,
                       const char *secret)
{
  size_t n;
  if (!msg || !*msg) msg = "unknown error";
  if (strncmp(msg, "ERROR:  ", 8) == 0) msg += 8;
  if (strncmp(msg, "FATAL:  ", 8) == 0) msg += 8;
  bd_fmt(out, len, "%s", msg);
  n = strlen(out);
  while (n && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = '\0';
  for (char *p = out; *p; p++)
    if (*p == '\n') *p = ' ';
  scrub(out, secret);
}

static int parse_ulong(const char *text, unsigned long max, unsigned long *out)
{
  char *end;
  unsigned long v;
  if (!text || text[0] < '0' || text[0] > '9') return -1;
  errno = 0;
  v = strtoul(text, &end, 10);
  if (*end || errno || v > max) return -1;
  *out = v;
  return 0;
}

static int parse_i64(const char *text, int64_t *out)
{
  char *end;
  long long v;
  if (!text || !*text) return -1;
  errno = 0;
  v = strtoll(text, &end, 10);
  if (*end || errno) return -1;
  *out = (int64_t)v;
  return 0;
}

/* ---- command-line filters ---- */

static int all_digits(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

/* "YYYY-MM-DD", "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" ('T' between
 * allowed), checked field by field. */
static int parse_date(const char *t, char *out, size_t outlen)
{
  size_t n = strlen(t);
  int y, mo, d, h = 0, mi = 0, s = 0;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

  if (n != 10 && n != 16 && n != 19) return -1;
  if (!all_digits(t, 4) || t[4] != '-' || !all_digits(t + 5, 2) ||
      t[7] != '-' || !all_digits(t + 8, 2))
    return -1;
  y = atoi(t);
  mo = (t[5] - '0') * 10 + (t[6] - '0');
  d = (t[8] - '0') * 10 + (t[9] - '0');
  if (n > 10) {
    if ((t[10] != ' ' && t[10] != 'T') || !all_digits(t + 11, 2) ||
        t[13] != ':' || !all_digits(t + 14, 2))
      return -1;
    h = (t[11] - '0') * 10 + (t[12] - '0');
    mi = (t[14] - '0') * 10 + (t[15] - '0');
    if (n == 19) {
      if (t[16] != ':' || !all_digits(t + 17, 2)) return -1;
      s = (t[17] - '0') * 10 + (t[18] - '0');
    }
  }
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
      h > 23 || mi > 59 || s > 59)
    return -1;
  if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
    return -1;
  bd_fmt(out, outlen, "%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, s);
  return 0;
}

/* "24h", "30m", "90s", "7d", "2w" (also "24 hours", "7 days", ...). */
static int parse_age(const char *t, unsigned long *secs)
{
  static const struct {
    const char *unit;
    unsigned long secs;
  } units[] = {{"s", 1},       {"sec", 1},       {"second", 1},
               {"seconds", 1}, {"m", 60},        {"min", 60},
               {"minute", 60}, {"minutes", 60},  {"h", 3600},
               {"hour", 3600}, {"hours", 3600},  {"d", 86400},
               {"day", 86400}, {"days", 86400},  {"w", 604800},
               {"week", 604800}, {"weeks", 604800}};
  char *end;
  unsigned long v;

  if (t[0] < '0' || t[0] > '9') return -1;
  errno = 0;
  v = strtoul(t, &end, 10);
  if (errno || v == 0) return -1;
  while (*end == ' ') end++;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcasecmp(end, units[i].unit) == 0) {
      if (v > 100UL * 366 * 86400 / units[i].secs) return -1;
      *secs = v * units[i].secs;
      return 0;
    }
  }
  return -1;
}

static int parse_since(cat_filters *f, const char *arg, char *err,
                       size_t errlen)
{
  unsigned long secs;

  if (parse_age(arg, &secs) == 0) {
    time_t cut = time(NULL) - (time_t)secs;
    struct tm tm;
    /* The Director writes StartTime in its local time. */
    if (!localtime_r(&cut, &tm) ||
        !strftime(f->since, sizeof f->since, "%Y-%m-%d %H:%M:%S", &tm)) {
      bd_fmt(err, errlen, "--since %s: cannot compute the time", arg);
      return -1;
    }
    return 0;
  }
  if (parse_date(arg, f->since, sizeof f->since) == 0) return 0;
  bd_fmt(err, errlen,
      "--since wants an age such as 24h, 30m, 7d or 2w (at most 100 years), "
      "or a date YYYY-MM-DD [HH:MM[:SS]] from 1970 on, not \"%s\"",
      arg);
  return -1;
}

static int parse_jobids(cat_filters *f, const char *arg, char *err,
                        size_t errlen)
{
  const char *dash = strchr(arg, '-');
  char first[32];
  unsigned long lo = 0, hi = 0;
  size_t n = dash ? (size_t)(dash - arg) : strlen(arg);
  int ok = n < sizeof first;

  if (ok) {
    memcpy(first, arg, n);
    first[n] = '\0';
    if (n) ok = parse_ulong(first, INT32_MAX, &lo) == 0 && lo > 0;
    else ok = dash != NULL; /* "-200" */
  }
  if (ok && dash && dash[1])
    ok = parse_ulong(dash + 1, INT32_MAX, &hi) == 0 && hi > 0;
  if (ok && !dash) hi = lo;
  if (ok && hi && lo > hi) ok = 0;
  if (!ok || (!lo && !hi)) {
    bd_fmt(err, errlen,
        "--jobid wants a JobId or a range FIRST-LAST, FIRST- or -LAST of "
        "JobIds from 1 to %ld, not \"%s\"",
        (long)INT32_MAX, arg);
    return -1;
  }
  f->jobid_min = lo;
  f->jobid_max = hi;
  return 0;
}

int cat_option(cat_filters *f, const char *name, const char *arg, char *err,
               size_t errlen)
{
  if (strcmp(name, "since") == 0) return parse_since(f, arg, err, errlen);
  if (strcmp(name, "jobid") == 0) return parse_jobids(f, arg, err, errlen);
  if (strcmp(name, "job-status") == 0) {
    size_t n = strlen(arg);
    int ok = n > 0 && n < sizeof f->statuses;
    for (size_t i = 0; ok && i < n; i++)
      ok = (arg[i] | 32) >= 'a' && (arg[i] | 32) <= 'z';
    if (!ok) {
      bd_fmt(err, errlen,
          "--job-status wants job status letters such as T, E, f, A or "
          "TWE, not \"%s\"",
          arg);
      return -1;
    }
    memcpy(f->statuses, arg, n + 1);
    return 0;
  }
  if (strcmp(name, "limit") == 0) {
    if (parse_ulong(arg, 1000000000UL, &f->limit) || f->limit == 0) {
      bd_fmt(err, errlen, "--limit wants a number of jobs from 1 to 1000000000, "
                       "not \"%s\"", arg);
      return -1;
    }
    return 0;
  }
  if (strcmp(name, "connect-timeout") == 0 ||
      strcmp(name, "query-timeout") == 0) {
    unsigned long *v = name[0] == 'c' ? &f->connect_timeout : &f->query_timeout;
    if (parse_ulong(arg, 3600, v) || *v == 0) {
      bd_fmt(err, errlen, "--%s wants seconds from 1 to 3600, not \"%s\"", name,
          arg);
      return -1;
    }
    return 0;
  }
  bd_fmt(err, errlen, "unknown catalog option --%s", name);
  return -1;
}

/* ---- talking to the server, every wait bounded ---- */

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until the connection's socket is ready for `events` or `deadline`
 * passes: 1 ready, 0 timed out, -1 error. */
static int wait_socket(PGconn *conn, short events, double deadline)
{
  struct pollfd pfd;
  int rc;

  pfd.fd = PQsocket(conn);
  pfd.events = events;
  if (pfd.fd < 0) return -1;
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) return 0;
    rc = poll(&pfd, 1, (int)(left * 1000) + 1);
    if (rc > 0) return 1;
    if (rc == 0) continue; /* the loop checks the deadline */
    if (errno != EINTR) return -1;
  }
}

/*
 * One statement, text results; the answer must arrive before `timeout`
 * seconds (statement_timeout asks the server for the same, but a server that
 * stops answering altogether is only caught here).  Returns the last
 * result, or NULL with the reason in err.
 */
static PGresult *query(cat_session *s, const char *sql, int nparams,
                       const char *const *params, char *err, size_t errlen)
{
  /* The server's statement_timeout should answer first, with its clearer
   * message; ours is the bound when the server cannot answer at all. */
  double deadline = now_s() + (double)s->f.query_timeout + QUERY_GRACE;
  PGresult *res, *last = NULL;

  if (!PQsendQueryParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
    pg_message(err, errlen, PQerrorMessage(s->conn), s->cat->db_password);
    return NULL;
  }
  for (;;) {
    while (PQisBusy(s->conn)) {
      int rc = wait_socket(s->conn, POLLIN, deadline);
      if (rc == 0) {
        bd_fmt(err, errlen, "no answer from the server within %lu s "
                            "(--query-timeout, and %d s more)",
               s->f.query_timeout, QUERY_GRACE);
        PQclear(last);
        return NULL;
      }
      if (rc < 0 || !PQconsumeInput(s->conn)) {
        pg_message(err, errlen, PQerrorMessage(s->conn), s->cat->db_password);
        PQclear(last);
        return NULL;
      }
    }
    res = PQgetResult(s->conn);
    if (!res) break;
    PQclear(last);
    last = res;
  }
  if (!last) {
    bd_fmt(err, errlen, "no result");
    return NULL;
  }
  if (PQresultStatus(last) != PGRES_TUPLES_OK &&
      PQresultStatus(last) != PGRES_COMMAND_OK) {
    const char *state = PQresultErrorField(last, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(last, PG_DIAG_MESSAGE_PRIMARY);
    char text[512];
    pg_message(text, sizeof text, msg ? msg : PQresultErrorMessage(last),
               s->cat->db_password);
    if (state)
      bd_fmt(err, errlen, "%s (SQLSTATE %s)", text, state);
    else
      bd_fmt(err, errlen, "%s", text);
    PQclear(last);
    return NULL;
  }
  return last;
}

static int exec_ok(cat_session *s, const char *sql, char *err, size_t errlen)
{
  PGresult *res = query(s, sql, 0, NULL, err, errlen);
  if (!res) return -1;
  PQclear(res);
  return 0;
}

/* DB Socket: a socket directory, or the socket file itself
 * (".../.s.PGSQL.5432"), which also gives the port. */
static void socket_host(const char *socket, char *dir, size_t dirlen,
                        char *port, size_t portlen)
{
  const char *slash = strrchr(socket, '/');
  const char *base = slash ? slash + 1 : socket;
  if (slash && strncmp(base, ".s.PGSQL.", 9) == 0 && base[9]) {
    size_t n = (size_t)(slash - socket);
    bd_fmt(dir, dirlen, "%.*s", (int)(n ? n : 1), socket);
    bd_fmt(port, portlen, "%s", base + 9);
    return;
  }
  bd_fmt(dir, dirlen, "%s", socket);
}

static int connect_bounded(cat_session *s, char *err, size_t errlen)
{
  const bd_config_catalog *c = s->cat;
  char host[1024] = "", port[16] = "", ctimeout[16], options[128];
  char user_timeout[24];
  const char *keys[16], *vals[16];
  int n = 0;
  double deadline = now_s() + (double)s->f.connect_timeout;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;

  if (c->db_socket && *c->db_socket) {
    socket_host(c->db_socket, host, sizeof host, port, sizeof port);
  } else if (c->db_address && *c->db_address) {
    bd_fmt(host, sizeof host, "%s", c->db_address);
  }
  if (c->db_port && !port[0]) bd_fmt(port, sizeof port, "%ld", c->db_port);
  bd_fmt(ctimeout, sizeof ctimeout, "%lu", s->f.connect_timeout);
  bd_fmt(user_timeout, sizeof user_timeout, "%lu", s->f.query_timeout * 1000);
  /* Read-only from the first statement on; the server cancels any statement
   * running longer than the query timeout. */
  bd_fmt(options, sizeof options,
      "-c default_transaction_read_only=on -c statement_timeout=%lu",
      s->f.query_timeout * 1000);

#define KV(k, v)      \
  do {                \
    keys[n] = (k);    \
    vals[n++] = (v);  \
  } while (0)
  if (host[0]) KV("host", host);
  if (port[0]) KV("port", port);
  KV("dbname", c->db_name);
  if (c->db_user && *c->db_user) KV("user", c->db_user);
  if (c->db_password && *c->db_password) KV("password", c->db_password);
  KV("connect_timeout", ctimeout);
  KV("options", options);
  KV("application_name", "bareosdir-sim");
  KV("client_encoding", "UTF8");
  KV("keepalives", "1");
  KV("tcp_user_timeout", user_timeout);
#undef KV
  keys[n] = NULL;
  vals[n] = NULL;

  s->conn = PQconnectStartParams(keys, vals, 0);
  if (!s->conn) {
    bd_fmt(err, errlen, "out of memory");
    return -1;
  }
  if (PQstatus(s->conn) == CONNECTION_BAD) st = PGRES_POLLING_FAILED;
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    int rc = wait_socket(s->conn, st == PGRES_POLLING_READING ? POLLIN
                                                              : POLLOUT,
                         deadline);
    if (rc == 0) {
      bd_fmt(err, errlen, "no answer within %lu s (--connect-timeout)",
          s->f.connect_timeout);
      return -1;
    }
    if (rc < 0) break;
    st = PQconnectPoll(s->conn);
  }
  if (PQstatus(s->conn) != CONNECTION_OK) {
    pg_message(err, errlen, PQerrorMessage(s->conn), c->db_password);
    return -1;
  }
  return 0;
}

/* ---- is it a Bareos catalog? ---- */

static const struct {
  const char *table, *column, *shown;
} needed[] = {
    {"job", "jobid", "Job.JobId"},        {"job", "job", "Job.Job"},
    {"job", "name", "Job.Name"},          {"job", "type", "Job.Type"},
    {"job", "level", "Job.Level"},        {"job", "jobstatus", "Job.JobStatus"},
    {"job", "jobfiles", "Job.JobFiles"},  {"job", "jobbytes", "Job.JobBytes"},
    {"job", "readbytes", "Job.ReadBytes"},
    {"job", "joberrors", "Job.JobErrors"},
    {"job", "starttime", "Job.StartTime"},
    {"job", "endtime", "Job.EndTime"},    {"job", "clientid", "Job.ClientId"},
    {"job", "poolid", "Job.PoolId"},      {"client", "clientid", "Client.ClientId"},
    {"client", "name", "Client.Name"},    {"pool", "poolid", "Pool.PoolId"},
    {"pool", "name", "Pool.Name"},
};

static int check_schema(cat_session *s, char *err, size_t errlen)
{
  char why[600];
  PGresult *res;
  const char *v;
  int64_t version;
  unsigned char found[sizeof needed / sizeof needed[0]] = {0};

  res = query(s, "SELECT max(VersionId) FROM Version", 0, NULL, why,
              sizeof why);
  if (!res) {
    if (strstr(why, "SQLSTATE 42P01"))
      bd_fmt(err, errlen, "%s is not a Bareos catalog: it has no Version table "
                       "(%s)", s->where, why);
    else
      bd_fmt(err, errlen, "%s: cannot read the Version table: %s", s->where, why);
    return -1;
  }
  v = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0)
                                                     : NULL;
  if (!v || parse_i64(v, &version) || version <= 0) {
    bd_fmt(err, errlen, "%s is not a Bareos catalog: its Version table holds no "
                     "schema version", s->where);
    PQclear(res);
    return -1;
  }
  PQclear(res);
  s->version = (long)version;

  res = query(s,
              "SELECT lower(table_name::text), lower(column_name::text) "
              "FROM information_schema.columns "
              "WHERE table_schema = ANY (current_schemas(false)) "
              "AND lower(table_name::text) IN ('job', 'client', 'pool')",
              0, NULL, why, sizeof why);
  if (!res) {
    bd_fmt(err, errlen, "%s: cannot read the table definitions: %s", s->where,
        why);
    return -1;
  }
  for (int i = 0; i < PQntuples(res); i++)
    for (size_t k = 0; k < sizeof needed / sizeof needed[0]; k++)
      if (strcmp(PQgetvalue(res, i, 0), needed[k].table) == 0 &&
          strcmp(PQgetvalue(res, i, 1), needed[k].column) == 0)
        found[k] = 1;
  PQclear(res);
  for (size_t k = 0; k < sizeof needed / sizeof needed[0]; k++) {
    if (!found[k]) {
      bd_fmt(err, errlen,
          "%s (catalog schema version %ld) has no column %s, which the "
          "replay reads (Bareos's current schema version is %d)",
          s->where, s->version, needed[k].shown, SCHEMA_VERSION);
      return -1;
    }
  }
  return 0;
}

cat_session *cat_open(const bd_config *cfg, const cat_filters *f, char *err,
                      size_t errlen)
{
  cat_session *s;
  const bd_config_catalog *c = bd_config_find_catalog(cfg, f->catalog);
  char why[600];
  const char *host;

  if (!c) {
    if (f->catalog)
      bd_fmt(err, errlen, "the configuration has no Catalog resource named "
                       "\"%s\"", f->catalog);
    else
      bd_fmt(err, errlen, "the configuration has no Catalog resource: "
                       "--catalog needs one (Name, DB Name, DB User, ...)");
    return NULL;
  }
  if (!c->db_name || !*c->db_name) {
    bd_fmt(err, errlen, "%s:%d: Catalog \"%s\" has no DB Name", c->file, c->line,
        c->name);
    return NULL;
  }
  if (!(s = calloc(1, sizeof *s))) {
    bd_fmt(err, errlen, "out of memory");
    return NULL;
  }
  s->cat = c;
  s->f = *f;
  if (!s->f.connect_timeout) s->f.connect_timeout = DEFAULT_CONNECT_TIMEOUT;
  if (!s->f.query_timeout) s->f.query_timeout = DEFAULT_QUERY_TIMEOUT;
  pthread_mutex_init(&s->lock, NULL);
  host = c->db_socket && *c->db_socket     ? c->db_socket
         : c->db_address && *c->db_address ? c->db_address
                                            : "the local socket";
  if (c->db_port)
    bd_fmt(s->where, sizeof s->where,
        "catalog %s (database \"%s\" on %s port %ld, user \"%s\")", c->name,
        c->db_name, host, c->db_port, c->db_user ? c->db_user : "");
  else
    bd_fmt(s->where, sizeof s->where,
        "catalog %s (database \"%s\" on %s, user \"%s\")", c->name,
        c->db_name, host, c->db_user ? c->db_user : "");
  scrub(s->where, c->db_password);

  if (connect_bounded(s, why, sizeof why)) {
    bd_fmt(err, errlen, "cannot connect to %s: %s", s->where, why);
    cat_close(s);
    return NULL;
  }
  /* One read-only snapshot for the whole replay; a server configured to end
   * idle transactions must not end ours while a plugin works. */
  if (exec_ok(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", why,
              sizeof why) ||
      exec_ok(s, "SET LOCAL idle_in_transaction_session_timeout = 0", why,
              sizeof why)) {
    bd_fmt(err, errlen, "%s: cannot start a read-only transaction: %s",
        s->where, why);
    cat_close(s);
    return NULL;
  }
  if (check_schema(s, err, errlen)) {
    cat_close(s);
    return NULL;
  }
  return s;
}

void cat_close(cat_session *s)
{
  if (!s) return;
  if (s->conn) PQfinish(s->conn);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/* ---- rows ---- */

static const char *const select_jobs =
    "SELECT j.JobId, j.Job, j.Name, j.Type, j.Level, j.JobStatus, "
    "j.JobFiles, j.JobBytes, j.ReadBytes, j.JobErrors, "
    "to_char(j.StartTime, 'YYYY-MM-DD HH24:MI:SS'), "
    "to_char(j.EndTime, 'YYYY-MM-DD HH24:MI:SS'), c.Name, p.Name "
    "FROM Job j LEFT JOIN Client c ON c.ClientId = j.ClientId "
    "LEFT JOIN Pool p ON p.PoolId = j.PoolId "
    "WHERE j.JobId > $1::int8 "
    "AND ($2::timestamp IS NULL OR j.StartTime >= $2::timestamp) "
    "AND ($3::text IS NULL OR j.Name = $3::text) "
    "AND ($4::int8 IS NULL OR j.JobId >= $4::int8) "
    "AND ($5::int8 IS NULL OR j.JobId <= $5::int8) "
    "AND ($6::text IS NULL OR "
    "j.JobStatus::text = ANY (string_to_array($6::text, NULL))) "
    "ORDER BY j.JobId LIMIT $7::int8";

static int one_char(const char *v, int allow_blank)
{
  if (!v || !v[0]) return allow_blank ? ' ' : 0;
  if (v[1]) return 0;
  if (((v[0] | 32) >= 'a' && (v[0] | 32) <= 'z') ||
      (allow_blank && v[0] == ' '))
    return (unsigned char)v[0];
  return 0;
}

static int count_value(PGresult *res, int i, int col, const char *what,
                       int64_t max, int64_t *out, char *why, size_t whylen)
{
  const char *v;
  if (PQgetisnull(res, i, col)) { /* the DDL's DEFAULT 0, as Bareos reads it */
    *out = 0;
    return 0;
  }
  v = PQgetvalue(res, i, col);
  if (parse_i64(v, out) || *out < 0 || *out > max) {
    bd_fmt(why, whylen, "%s %.40s is out of range (0 to %" PRId64 ")", what, v,
        max);
    return -1;
  }
  return 0;
}

static int text_value(PGresult *res, int i, int col, const char *what,
                      int required, const char **out, char *why,
                      size_t whylen)
{
  const char *v = PQgetisnull(res, i, col) ? NULL : PQgetvalue(res, i, col);
  if (v && strlen(v) >= TEXT_MAX) {
    bd_fmt(why, whylen, "%s is %zu bytes long (at most %d)", what, strlen(v),
        TEXT_MAX - 1);
    return -1;
  }
  if (required && (!v || !*v)) {
    bd_fmt(why, whylen, "%s is empty", what);
    return -1;
  }
  *out = v && *v ? v : NULL;
  return 0;
}

/* Reads and checks row i; -1 with the reason when a value is out of range. */
static int read_row(PGresult *res, int i, cat_row *r, char *why,
                    size_t whylen)
{
  int64_t jobid;
  const char *v;

  memset(r, 0, sizeof *r);
  if (parse_i64(PQgetvalue(res, i, COL_JOBID), &jobid) || jobid < 1 ||
      jobid > INT32_MAX) {
    bd_fmt(why, whylen, "JobId %.40s is out of range (1 to %ld)",
        PQgetvalue(res, i, COL_JOBID), (long)INT32_MAX);
    return -1;
  }
  r->jobid = (uint32_t)jobid;
  if (text_value(res, i, COL_JOB, "Job", 1, &r->job, why, whylen) ||
      text_value(res, i, COL_NAME, "Name", 1, &r->name, why, whylen) ||
      text_value(res, i, COL_START, "StartTime", 0, &r->start, why, whylen) ||
      text_value(res, i, COL_END, "EndTime", 0, &r->end, why, whylen) ||
      text_value(res, i, COL_CLIENT, "Client name", 0, &r->client, why,
                 whylen) ||
      text_value(res, i, COL_POOL, "Pool name", 0, &r->pool, why, whylen))
    return -1;
  v = PQgetvalue(res, i, COL_TYPE);
  if (!(r->type = one_char(v, 0))) {
    bd_fmt(why, whylen, "Type \"%.40s\" is not a job type letter", v);
    return -1;
  }
  v = PQgetvalue(res, i, COL_LEVEL);
  if (!(r->level = one_char(v, 1))) {
    bd_fmt(why, whylen, "Level \"%.40s\" is not a job level letter or blank", v);
    return -1;
  }
  v = PQgetvalue(res, i, COL_STATUS);
  if (!(r->status = one_char(v, 0))) {
    bd_fmt(why, whylen, "JobStatus \"%.40s\" is not a job status letter", v);
    return -1;
  }
  if (count_value(res, i, COL_FILES, "JobFiles", INT32_MAX, &r->files, why,
                  whylen) ||
      count_value(res, i, COL_BYTES, "JobBytes", INT64_MAX, &r->bytes, why,
                  whylen) ||
      count_value(res, i, COL_READBYTES, "ReadBytes", INT64_MAX,
                  &r->readbytes, why, whylen) ||
      count_value(res, i, COL_ERRORS, "JobErrors", INT32_MAX, &r->errors, why,
                  whylen))
    return -1;
  return 0;
}

/* ---- output ---- */

static const char *type_name(int t)
{
  switch (t) {
    case 'B': return "Backup";
    case 'M': return "Migrated";
    case 'V': return "Verify";
    case 'R': return "Restore";
    case 'U': return "Console";
    case 'I': return "Internal";
    case 'D': return "Admin";
    case 'A': return "Archive";
    case 'C': return "Copy";
    case 'c': return "Copy (job copied)";
    case 'g': return "Migration";
    case 'S': return "Scan";
    case 'O': return "Consolidate";
    default: return NULL;
  }
}

static const char *level_name(int l)
{
  switch (l) {
    case 'F': return "Full";
    case 'I': return "Incremental";
    case 'D': return "Differential";
    case 'S': return "Since";
    case 'C': return "Catalog";
    case 'V': return "InitCatalog";
    case 'O': return "VolumeToCatalog";
    case 'd': return "DiskToCatalog";
    case 'A': return "Data";
    case 'B': return "Base";
    case 'f': return "VirtualFull";
    case ' ': return "none";
    default: return NULL;
  }
}

static const char *msg_type_name(int type)
{
  static const char *const names[] = {
      "?",     "abort",    "debug",   "fatal",    "error",      "warning",
      "info",  "saved",    "notsaved", "skipped", "mount",      "error_term",
      "term",  "restored", "security", "alert",   "volmgmt",    "audit",
      "config_error"};
  return type >= 0 && type <= 18 ? names[type] : "?";
}

/* JSON string: escapes, and U+FFFD for bytes that are not UTF-8. */
static void json_str(FILE *f, const char *s)
{
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  if (!s) {
    fputs("null", f);
    return;
  }
  fputc('"', f);
  while (*p) {
    unsigned char c = *p;
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                            : (c & 0xF8) == 0xF0 ? 4 : 0;
    size_t k;
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc(c, f);
      p++;
      continue;
    }
    if (c < 0x20) {
      fprintf(f, "\\u%04x", c);
      p++;
      continue;
    }
    for (k = 1; k < n && (p[k] & 0xC0) == 0x80; k++) {
    }
    if (n == 0 || k < n || (n == 2 && c < 0xC2)) {
      fputs("\\ufffd", f);
      p++;
      continue;
    }
    fwrite(p, 1, n, f);
    p += n;
  }
  fputc('"', f);
}

static void json_char(FILE *f, int c)
{
  char s[2] = {(char)c, '\0'};
  json_str(f, s);
}

static void print_job_head(const cat_row *r, const char *prog)
{
  const char *tn = type_name(r->type), *ln = level_name(r->level);
  char tbuf[24], lbuf[24];

  if (!tn) {
    bd_fmt(tbuf, sizeof tbuf, "type %c", r->type);
    tn = tbuf;
  }
  if (!ln) {
    bd_fmt(lbuf, sizeof lbuf, "%c", r->level);
    ln = lbuf;
  }
  printf("%s: JobId %" PRIu32 ": Job %s, %s, level %s, status %c, %" PRId64
         " files, %" PRId64 " bytes (%" PRId64 " read), %" PRId64
         " errors, client %s, pool %s, %s to %s\n",
         prog, r->jobid, r->job, tn, ln, r->status, r->files, r->bytes,
         r->readbytes, r->errors, r->client ? r->client : "-",
         r->pool ? r->pool : "-", r->start ? r->start : "-",
         r->end ? r->end : "-");
}

/* ---- the sink during the replay ---- */

static void replay_sink(void *arg, const dm_message *m)
{
  cat_session *s = arg;
  const cat_host *h = s->host;

  if (m->jobid == 0 && m->kind == DM_MSG_JOB) {
    pthread_mutex_lock(&s->lock);
    if (m->type == M_FATAL || m->type == M_ERROR || m->type == M_ABORT ||
        m->type == M_ERROR_TERM || m->type == M_CONFIG_ERROR)
      s->dir_errors++;
    pthread_mutex_unlock(&s->lock);
  }
  /* With --json, stdout holds only the document: job messages are read
   * from the job when it is done, the Director's own go to stderr. */
  if (s->f.json && m->kind == DM_MSG_JOB) {
    if (m->jobid == 0)
      fprintf(stderr, "%s: %s%s", dm_director_name(h->dir),
              m->text ? m->text : "",
              m->text && *m->text && m->text[strlen(m->text) - 1] == '\n'
                  ? ""
                  : "\n");
    return;
  }
  h->print(h->print_arg, m);
}

/* ---- one job ---- */

typedef struct job_run {
  dm_job *job;
  const cat_row *row;
  int jobend_rc;
  int ran_jobend;
} job_run;

static int job_failed_status(dm_job *job)
{
  int64_t st = 0;
  dm_job_get_int(job, bDirVarJobStatus, &st);
  return st == 'f' || st == 'A';
}

/* What the job had when it ended (the simulator's convention: the SD's
 * file count is the job's); before that they are 0, as in bareos-dir. */
static void set_end_values(dm_job *job, const cat_row *r)
{
  dm_job_set_int(job, bDirVarJobFiles, r->files);
  dm_job_set_int(job, bDirVarSDJobFiles, r->files);
  dm_job_set_int(job, bDirVarJobBytes, r->bytes);
  dm_job_set_int(job, bDirVarReadBytes, r->readbytes);
  dm_job_set_int(job, bDirVarJobErrors, r->errors);
}

/* The job's own thread: running, then the catalog's final status and
 * counts, JobEnd. */
static void *job_thread(void *arg)
{
  job_run *run = arg;
  if (!job_failed_status(run->job))
    dm_job_set_int(run->job, bDirVarJobStatus, 'R');
  dm_job_event(run->job, bDirEventJobRun, NULL);
  if (!job_failed_status(run->job))
    dm_job_set_int(run->job, bDirVarJobStatus, run->row->status);
  set_end_values(run->job, run->row);
  run->jobend_rc = dm_job_event(run->job, bDirEventJobEnd, NULL);
  run->ran_jobend = 1;
  return NULL;
}

static void *free_thread(void *arg)
{
  job_run *run = arg;
  dm_job_free_plugins(run->job);
  return NULL;
}

static void on_thread(void *(*fn)(void *), job_run *run)
{
  pthread_t t;
  if (pthread_create(&t, NULL, fn, run) != 0) {
    fn(run); /* no thread to be had: the setup thread does it */
    return;
  }
  pthread_join(t, NULL);
}

static void set_values(dm_job *job, const cat_row *r,
                       const bd_config_job *res)
{
  /* As in bareos-dir: Job is the resource's name (dm_job_new set it),
   * JobName the unique name the catalog kept. */
  dm_job_set_str(job, bDirVarJobName, r->job);
  dm_job_set_int(job, bDirVarType, r->type);
  dm_job_set_int(job, bDirVarLevel, r->level);
  dm_job_set_str(job, bDirVarClient, r->client);
  dm_job_set_str(job, bDirVarPool, r->pool);
  /* What the catalog does not keep comes from the Job resource now. */
  if (res && res->has_priority)
    dm_job_set_int(job, bDirVarPriority, res->priority);
  if (res && res->storage)
    dm_job_set_str(job, (r->type == 'R' || r->type == 'V')
                            ? bDirVarReadStorage
                            : bDirVarWriteStorage,
                   res->storage);
}

static void note_gone(cat_session *s, const char *name)
{
  s->gone++;
  for (int i = 0; i < s->ngone_names; i++)
    if (strcmp(s->gone_names[i], name) == 0) return;
  if (s->ngone_names < GONE_NAMES_SHOWN)
    bd_fmt(s->gone_names[s->ngone_names++], sizeof s->gone_names[0], "%s",
           name);
  else
    s->more_gone_names = 1;
}

static void json_job_head(const cat_row *r, int *first)
{
  printf("%s\n  {\"jobid\": %" PRIu32 ", \"job\": ", *first ? "" : ",",
         r->jobid);
  *first = 0;
  json_str(stdout, r->job);
  printf(", \"name\": ");
  json_str(stdout, r->name);
  printf(", \"type\": ");
  json_char(stdout, r->type);
  printf(", \"level\": ");
  json_char(stdout, r->level);
  printf(", \"status\": ");
  json_char(stdout, r->status);
  printf(", \"files\": %" PRId64 ", \"bytes\": %" PRId64
         ", \"readbytes\": %" PRId64 ", \"errors\": %" PRId64
         ", \"starttime\": ",
         r->files, r->bytes, r->readbytes, r->errors);
  json_str(stdout, r->start);
  printf(", \"endtime\": ");
  json_str(stdout, r->end);
  printf(", \"client\": ");
  json_str(stdout, r->client);
  printf(", \"pool\": ");
  json_str(stdout, r->pool);
}

static void replay_row(cat_session *s, const cat_row *r, int *first)
{
  const cat_host *h = s->host;
  const bd_config_job *res = bd_config_find_job(h->cfg, r->name);
  char *const *lines = h->noptions ? h->options : NULL;
  size_t nlines = h->noptions;
  job_run run = {NULL, r, bRC_OK, 0};
  int rejected = 0, failed_calls = 0, missing = 0, fatal, errors, warnings,
      ok;
  char why[1536] = "", first_missing[1024] = "";

  if (!res && !h->noptions) {
    note_gone(s, r->name);
    if (s->f.json) {
      json_job_head(r, first);
      printf(", \"result\": \"skipped\", \"reason\": ");
      json_str(stdout, "no Job resource of this name in the configuration");
      printf("}");
    } else {
      printf("%s: JobId %" PRIu32 " (%s): skipped: the configuration has no "
             "Job resource named \"%s\" now (give -o to replay it anyway)\n",
             h->prog, r->jobid, r->job, r->name);
    }
    return;
  }
  if (!lines && res) {
    lines = res->plugin_options;
    nlines = res->plugin_options_count;
  }
  if (!s->f.json) print_job_head(r, h->prog);
  fflush(stdout);

  run.job = dm_job_new(h->dir, r->name, r->jobid);
  if (!run.job) {
    fprintf(stderr, "%s: JobId %" PRIu32 ": cannot create the job\n",
            h->prog, r->jobid);
    s->failed++;
    return;
  }
  set_values(run.job, r, res);
  dm_job_new_plugins(run.job);
  for (size_t i = 0; h->plugin_not_loaded && i < nlines; i++) {
    char msg[sizeof first_missing];
    if (!h->plugin_not_loaded(lines[i], msg, sizeof msg)) continue;
    if (!missing++) bd_fmt(first_missing, sizeof first_missing, "%s", msg);
    if (!s->f.json) printf("%s: JobId %" PRIu32 ": %s\n", h->prog, r->jobid,
                           msg);
  }
  for (size_t i = 0; i < nlines; i++)
    if (dm_job_plugin_options(run.job, lines[i]) < 0) rejected++;
  dm_job_event(run.job, bDirEventJobStart, NULL);
  dm_job_event(run.job, bDirEventJobInit, NULL);
  on_thread(job_thread, &run);
  on_thread(free_thread, &run);

  for (size_t i = 0; i < dm_job_call_count(run.job); i++) {
    dm_call c;
    if (dm_job_call(run.job, i, &c) == 0 && c.rc == bRC_Error) failed_calls++;
  }
  fatal = dm_job_fatal_count(run.job);
  errors = dm_job_error_count(run.job);
  warnings = dm_job_warning_count(run.job);
  ok = run.ran_jobend && run.jobend_rc == bRC_OK && !failed_calls && !fatal &&
       !errors && !rejected && !missing;
  if (!ok) {
    size_t len = 0;
    const char *reasons[6];
    size_t n = 0;
    if (!run.ran_jobend || run.jobend_rc != bRC_OK)
      reasons[n++] = "JobEnd not bRC_OK";
    if (failed_calls) reasons[n++] = "plugin calls answered bRC_Error";
    if (fatal) reasons[n++] = "fatal error messages";
    if (errors) reasons[n++] = "error messages";
    if (rejected) reasons[n++] = "plugin options rejected";
    if (missing) reasons[n++] = "plugins not loaded";
    for (size_t k = 0; k < n; k++)
      bd_fmt_at(why, sizeof why, &len, "%s%s", k ? ", " : "", reasons[k]);
    if (missing && s->f.json) /* text mode printed it on its own line */
      bd_fmt_at(why, sizeof why, &len, "; %s", first_missing);
  }
  s->replayed++;
  if (ok) s->ok++;
  else s->failed++;
  s->warnings += (unsigned long)warnings;

  if (s->f.json) {
    json_job_head(r, first);
    printf(", \"result\": \"%s\", \"reason\": ", ok ? "ok" : "failed");
    json_str(stdout, ok ? NULL : why);
    printf(", \"jobend_rc\": %d, \"failed_calls\": %d, \"fatal\": %d, "
           "\"error_messages\": %d, \"warnings\": %d, \"messages\": [",
           run.jobend_rc, failed_calls, fatal, errors, warnings);
    for (size_t i = 0, k = 0; i < dm_job_message_count(run.job); i++) {
      dm_message m;
      if (dm_job_message(run.job, i, &m) || m.kind != DM_MSG_JOB) continue;
      printf("%s{\"type\": \"%s\", \"plugin\": ", k++ ? ", " : "",
             msg_type_name(m.type));
      json_str(stdout, m.plugin);
      printf(", \"text\": ");
      json_str(stdout, m.text);
      printf("}");
    }
    printf("]}");
  } else {
    printf("%s: JobId %" PRIu32 " (%s): %s%s%s%s, JobEnd %s, %d fatal, %d "
           "error, %d warning messages\n",
           h->prog, r->jobid, r->name, ok ? "OK" : "FAILED", ok ? "" : " (",
           why, ok ? "" : ")",
           run.ran_jobend ? (run.jobend_rc == bRC_OK ? "bRC_OK" : "not bRC_OK")
                          : "not run",
           fatal, errors, warnings);
  }
  fflush(stdout);
  dm_job_free(run.job);
}

static void print_summary(cat_session *s, unsigned long selected,
                          const char *stopped)
{
  const cat_host *h = s->host;
  unsigned long skipped = s->gone + s->bad_values;

  if (s->f.json) {
    printf("\n], \"summary\": {\"catalog\": ");
    json_str(stdout, s->cat->name);
    printf(", \"schema_version\": %ld, \"selected\": %lu, \"replayed\": %lu, "
           "\"ok\": %lu, \"failed\": %lu, \"warnings\": %lu, "
           "\"skipped\": %lu, \"skipped_job_gone\": %lu, "
           "\"skipped_values_out_of_range\": %lu, \"gone_names\": [",
           s->version, selected, s->replayed, s->ok, s->failed, s->warnings,
           skipped, s->gone, s->bad_values);
    for (int i = 0; i < s->ngone_names; i++) {
      if (i) printf(", ");
      json_str(stdout, s->gone_names[i]);
    }
    printf("], \"director_errors\": %d, \"stopped\": ", s->dir_errors);
    json_str(stdout, stopped);
    printf("}}\n");
    fflush(stdout);
    return;
  }
  printf("%s: %s: %lu jobs selected, %lu replayed: %lu OK, %lu FAILED; "
         "%lu warning messages\n",
         h->prog, s->where, selected, s->replayed, s->ok, s->failed,
         s->warnings);
  if (skipped) {
    printf("%s: %lu jobs skipped: %lu whose Job resource is gone", h->prog,
           skipped, s->gone);
    for (int i = 0; i < s->ngone_names; i++)
      printf("%s\"%s\"", i ? ", " : " (", s->gone_names[i]);
    if (s->ngone_names)
      printf("%s)", s->more_gone_names ? ", ..." : "");
    printf(", %lu with values out of range\n", s->bad_values);
  }
  if (s->dir_errors)
    printf("%s: the Director logged %d fatal or error messages outside of "
           "jobs\n",
           h->prog, s->dir_errors);
  if (stopped) printf("%s: the replay stopped early: %s\n", h->prog, stopped);
  fflush(stdout);
}

void cat_attach(cat_session *s, const cat_host *host)
{
  s->host = host;
  dm_director_set_sink(host->dir, replay_sink, s);
}

int cat_replay(cat_session *s)
{
  const cat_host *host = s->host;
  char after[24] = "0", lo[24], hi[24], limit[24], why[700], stopped[800];
  const char *params[7];
  unsigned long selected = 0;
  int first = 1, done = 0, rc;

  if (s->version != SCHEMA_VERSION)
    fprintf(stderr, "%s: warning: %s has schema version %ld, not %d (the "
                    "columns the replay reads are there)\n",
            host->prog, s->where, s->version, SCHEMA_VERSION);
  bd_fmt(lo, sizeof lo, "%lu", s->f.jobid_min);
  bd_fmt(hi, sizeof hi, "%lu", s->f.jobid_max);
  params[1] = s->f.since[0] ? s->f.since : NULL;
  params[2] = s->f.job_name;
  params[3] = s->f.jobid_min ? lo : NULL;
  params[4] = s->f.jobid_max ? hi : NULL;
  params[5] = s->f.statuses[0] ? s->f.statuses : NULL;
  stopped[0] = '\0';
  if (s->f.json) printf("{\"jobs\": [");

  while (!done) {
    unsigned long want = BATCH_ROWS;
    PGresult *res;
    int n;

    if (s->f.limit && s->f.limit - selected < want)
      want = s->f.limit - selected;
    if (want == 0) break;
    bd_fmt(limit, sizeof limit, "%lu", want);
    params[0] = after;
    params[6] = limit;
    res = query(s, select_jobs, 7, params, why, sizeof why);
    if (!res) {
      bd_fmt(stopped, sizeof stopped, "reading the Job table failed: %s", why);
      break;
    }
    n = PQntuples(res);
    if (PQnfields(res) != NCOLS) n = 0;
    if ((unsigned long)n < want) done = 1;
    for (int i = 0; i < n; i++) {
      cat_row r;
      selected++;
      bd_fmt(after, sizeof after, "%s", PQgetvalue(res, i, COL_JOBID));
      if (read_row(res, i, &r, why, sizeof why)) {
        s->bad_values++;
        if (s->f.json) {
          int64_t id;
          printf("%s\n  {\"jobid\": ", first ? "" : ",");
          if (parse_i64(PQgetvalue(res, i, COL_JOBID), &id) == 0)
            printf("%" PRId64, id);
          else
            json_str(stdout, PQgetvalue(res, i, COL_JOBID));
          printf(", \"result\": \"skipped\", \"reason\": ");
          json_str(stdout, why);
          printf("}");
          first = 0;
        } else {
          printf("%s: JobId %s: skipped: %s\n", host->prog,
                 PQgetvalue(res, i, COL_JOBID), why);
        }
        continue;
      }
      replay_row(s, &r, &first);
    }
    PQclear(res);
  }
  if (!stopped[0] && exec_ok(s, "COMMIT", why, sizeof why))
    bd_fmt(stopped, sizeof stopped, "ending the read-only transaction failed: "
                                 "%s", why);
  print_summary(s, selected, stopped[0] ? stopped : NULL);
  pthread_mutex_lock(&s->lock);
  rc = (s->failed || s->bad_values || stopped[0] || s->dir_errors) ? 1 : 0;
  pthread_mutex_unlock(&s->lock);
  return rc;
}
