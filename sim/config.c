/*
 * The simulator's reader of Bareos Director configuration.  The syntax is
 * that of Bareos's lexer (core/src/lib/lex.cc) and resource parser
 * (parse_conf.cc): resources `Type { Key = value ... }`, keys compared
 * without case and without blanks, '#' comments, ';' as end of statement,
 * quoted strings with backslash escapes that may continue on the next line
 * ("a" "b" or "a"<newline>"b" are one string), and `@file` / `@"file"` /
 * `@glob*` / `@|command` includes anywhere a token may start, read through a
 * stack of inputs.  Nested blocks (Include, Options, RunScript, ...) are
 * parsed and skipped.  Only the Director's and the Jobs' few values the
 * simulator needs are kept; see config.h.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "config.h"
#include "textfmt.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MAX_INCLUDE_DEPTH 32
#define MAX_BLOCK_DEPTH 64
/* Bounds on what one load reads, includes counted each time they are read:
 * a fan-out of includes ends with an error instead of taking all memory. */
#define MAX_INPUTS 50000
#define MAX_INPUT_BYTES (64u * 1024 * 1024)

typedef struct sbuf {
  char *p;
  size_t len, cap;
} sbuf;

/* One file (or buffer, or command output) being read. */
typedef struct input {
  struct input *up;     /* next on the reading stack */
  struct input *parent; /* the input whose @include opened this one */
  struct input *done;   /* kept until the end: tokens point at `path` */
  char *path;
  const char *buf;
  char *owned;
  size_t len, pos;
  int line;
  int depth;
  int has_id;
  dev_t dev;
  ino_t ino;
} input;

enum { T_EOF, T_EOL, T_LBRACE, T_RBRACE, T_EQ, T_COMMA, T_KEY, T_STR, T_WORD,
       T_ERR };
enum { MODE_KEY, MODE_VALUE };

enum { RES_OTHER, RES_DIRECTOR, RES_JOB, RES_JOBDEFS, RES_CATALOG };

typedef struct resname {
  char *type; /* normalised */
  char *name;
  const char *file;
  int line;
} resname;

/* An open-addressing hash index of array positions (kept with their hash). */
typedef struct hslot {
  uint64_t hash;
  size_t pos1; /* position + 1; 0 is an empty slot */
} hslot;

typedef struct hindex {
  hslot *slot;
  size_t cap, n; /* cap is 0 or a power of two */
} hindex;

typedef struct strlist {
  char **v;
  size_t n, cap;
} strlist;

typedef struct parser {
  input *in;
  input *done;
  bd_config *cfg;
  int flags;
  const char *base; /* directory prefix left out of file names in messages */
  size_t base_len;
  char *err;
  size_t errlen;
  int failed;
  sbuf tok; /* text of the last T_KEY, T_STR or T_WORD */
  sbuf key; /* a T_KEY lower-cased without blanks */
  const char *tok_file;
  int tok_line;
  int pushed;
  const char *eof_file; /* where the last input ended */
  int eof_line;
  resname *res;
  size_t nres, capres;
  struct hindex *names; /* (type, name) of every resource, into res */
  size_t ninputs;       /* files and command outputs read so far */
  size_t jobs_cap, jobdefs_cap;
  size_t input_bytes;
} parser;

/* What a resource being parsed collects. */
typedef struct resource {
  int kind;
  const char *table; /* its directive table in directives.def */
  const char *type_text;
  char *type_norm;
  const char *file;
  int line;
  char *name;
  bd_config_job job;
  bd_config_catalog cat;
} resource;

static int parse_block(parser *p, resource *res, const char *table,
                       const char *what, const char *open_file, int open_line,
                       int depth);

/* ---- small helpers ---- */

static int is_alpha(int c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_blank(int c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}
static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static int sb_reserve(sbuf *b, size_t extra)
{
  size_t cap;
  char *np;

  if (b->len + extra + 1 <= b->cap) return 0;
  cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1) {
    if (cap > SIZE_MAX / 2) return -1;
    cap *= 2;
  }
  np = realloc(b->p, cap);
  if (!np) return -1;
  b->p = np;
  b->cap = cap;
  return 0;
}

static int sb_putc(sbuf *b, int c)
{
  if (sb_reserve(b, 1)) return -1;
  b->p[b->len++] = (char)c;
  b->p[b->len] = '\0';
  return 0;
}

static int sb_puts(sbuf *b, const char *s)
{
  size_t n = strlen(s);
  if (sb_reserve(b, n)) return -1;
  memcpy(b->p + b->len, s, n + 1);
  b->len += n;
  return 0;
}

static void sb_clear(sbuf *b)
{
  b->len = 0;
  if (sb_reserve(b, 0) == 0) b->p[0] = '\0';
}

static int list_add(strlist *l, char *s)
{
  if (!s) return -1;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 4;
    char **nv = realloc(l->v, cap * sizeof *nv);
    if (!nv) {
      free(s);
      return -1;
    }
    l->v = nv;
    l->cap = cap;
  }
  l->v[l->n++] = s;
  return 0;
}

static void list_free(strlist *l)
{
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

/* ---- hash index ---- */

static uint64_t hash_str(uint64_t h, const char *s)
{
  /* FNV-1a; the NUL ends each part, so ("ab", "c") differs from ("a", "bc"). */
  for (;; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
    if (!*s) return h;
  }
}

#define HASH_SEED 14695981039346656037ULL

static void hindex_put(hindex *h, uint64_t hash, size_t pos1)
{
  size_t i = (size_t)hash & (h->cap - 1);
  while (h->slot[i].pos1) i = (i + 1) & (h->cap - 1);
  h->slot[i].hash = hash;
  h->slot[i].pos1 = pos1;
  h->n++;
}

static int hindex_add(hindex *h, uint64_t hash, size_t pos)
{
  if ((h->n + 1) * 2 > h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    hslot *old = h->slot, *nv;
    size_t oldcap = h->cap;
    if (cap > SIZE_MAX / sizeof *nv || !(nv = calloc(cap, sizeof *nv)))
      return -1;
    h->slot = nv;
    h->cap = cap;
    h->n = 0;
    for (size_t i = 0; i < oldcap; i++)
      if (old[i].pos1) hindex_put(h, old[i].hash, old[i].pos1);
    free(old);
  }
  hindex_put(h, hash, pos + 1);
  return 0;
}

/* Candidates for `hash`: call with *it = 0 first; returns position + 1, or
 * 0 when there are no more. */
static size_t hindex_next(const hindex *h, uint64_t hash, size_t *it)
{
  size_t i;

  if (!h->cap) return 0;
  i = *it ? *it : (((size_t)hash & (h->cap - 1)) + 1);
  for (i--; h->slot[i].pos1; i = (i + 1) & (h->cap - 1)) {
    if (h->slot[i].hash == hash) {
      *it = ((i + 1) & (h->cap - 1)) + 1;
      return h->slot[i].pos1;
    }
  }
  return 0;
}

static void hindex_free(hindex *h)
{
  if (!h) return;
  free(h->slot);
  h->slot = NULL;
  h->cap = h->n = 0;
}

/* ---- directive names (directives.def) ---- */

typedef struct directive {
  const char *table;
  const char *name;
} directive;

static const directive directives[] = {
#define BD_DIRECTIVE(table, name) {#table, #name},
#include "directives.def"
#undef BD_DIRECTIVE
};
#define N_DIRECTIVES (sizeof directives / sizeof directives[0])

/* Compares (table, key) with entry i; keys are already without blanks. */
static int directive_cmp(const char *table, const char *key, size_t i)
{
  int c = strcasecmp(table, directives[i].table);
  return c ? c : strcasecmp(key, directives[i].name);
}

/* The first entry not below (table, key). */
static size_t directive_lower(const char *table, const char *key)
{
  size_t lo = 0, hi = N_DIRECTIVES;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (directive_cmp(table, key, mid) > 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int directive_known(const char *table, const char *key)
{
  size_t i = directive_lower(table, key);
  return i < N_DIRECTIVES && directive_cmp(table, key, i) == 0;
}

/* Edit distance of two short lower-case words, or a large number. */
static size_t edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b), row[65];

  if (la > 64 || lb > 64) return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (lower((unsigned char)a[i - 1]) !=
                            lower((unsigned char)b[j - 1]));
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* The directive of `table` nearest to `key`, when it is near enough. */
static const char *directive_nearest(const char *table, const char *key)
{
  size_t best = SIZE_MAX, limit = strlen(key) / 4 + 1;
  const char *found = NULL;

  if (limit > 3) limit = 3;
  for (size_t i = directive_lower(table, ""); i < N_DIRECTIVES &&
                                             strcasecmp(directives[i].table,
                                                        table) == 0;
       i++) {
    size_t d = edit_distance(key, directives[i].name);
    if (d < best) {
      best = d;
      found = directives[i].name;
    }
  }
  return best <= limit ? found : NULL;
}

/* The table of a block `key { ... }` nested in one of `table`, or NULL for
 * blocks whose contents are not checked. */
static const char *nested_table(const char *table, const char *key)
{
  if (!table) return NULL;
  if (strcmp(table, "Job") == 0 && strcmp(key, "runscript") == 0)
    return "RunScript";
  if (strcmp(table, "FileSet") == 0 &&
      (strcmp(key, "include") == 0 || strcmp(key, "exclude") == 0))
    return "Include";
  if (strcmp(table, "Include") == 0 && strcmp(key, "options") == 0)
    return "Options";
  return NULL;
}

/* A short, printable rendering of user text for messages. */
static void quote_short(char *out, size_t outlen, const char *s)
{
  size_t o = 0, i;

  if (outlen < 8) {
    if (outlen) out[0] = '\0';
    return;
  }
  out[o++] = '"';
  for (i = 0; s[i] && o + 8 < outlen; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      bd_fmt_at(out, outlen, &o, "\\x%02x", c);
    } else {
      out[o++] = (char)c;
    }
  }
  if (s[i]) {
    out[o++] = '.';
    out[o++] = '.';
    out[o++] = '.';
  }
  out[o++] = '"';
  out[o] = '\0';
}

static const char *display_path(const parser *p, const char *path)
{
  if (!path) return "?";
  if (p->base_len && strncmp(path, p->base, p->base_len) == 0 &&
      path[p->base_len] == '/')
    return path + p->base_len + 1;
  return path;
}

static void fail_at(parser *p, const char *file, int line, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
static void fail_at(parser *p, const char *file, int line, const char *fmt,
                    ...)
{
  char msg[2048];
  va_list ap;

  if (p->failed) return;
  p->failed = 1;
  va_start(ap, fmt);
  bd_vfmt(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (p->errlen) {
    if (file)
      bd_fmt(p->err, p->errlen, "%s:%d: %s", display_path(p, file), line,
             msg);
    else
      bd_fmt(p->err, p->errlen, "%s", msg);
  }
}

#define fail_tok(p, ...) fail_at((p), (p)->tok_file, (p)->tok_line, __VA_ARGS__)

static void warn_at(parser *p, const char *file, int line, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
static void warn_at(parser *p, const char *file, int line, const char *fmt,
                    ...)
{
  char msg[512], *full;
  va_list ap;
  bd_config *cfg = p->cfg;
  char **nv;

  va_start(ap, fmt);
  bd_vfmt(msg, sizeof msg, fmt, ap);
  va_end(ap);
  full = bd_afmt(0, NULL, "%s:%d: %s", display_path(p, file), line, msg);
  if (!full) return;
  nv = realloc(cfg->warnings, (cfg->warnings_count + 1) * sizeof *nv);
  if (!nv) {
    free(full);
    return;
  }
  cfg->warnings = nv;
  cfg->warnings[cfg->warnings_count++] = full;
}

static void fail_oom(parser *p) { fail_at(p, NULL, 0, "out of memory"); }

/* ---- inputs ---- */

static char *dir_of(const char *path)
{
  const char *slash = path ? strrchr(path, '/') : NULL;
  char *d;

  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  d = malloc((size_t)(slash - path) + 1);
  if (!d) return NULL;
  memcpy(d, path, (size_t)(slash - path));
  d[slash - path] = '\0';
  return d;
}

/* Backslash-escapes glob metacharacters of a literal directory part. */
static int glob_escape(sbuf *out, const char *s)
{
  for (; *s; s++) {
    if (strchr("*?[]\\", *s) && sb_putc(out, '\\')) return -1;
    if (sb_putc(out, *s)) return -1;
  }
  return 0;
}

static input *input_new(parser *p, const char *path, input *parent)
{
  input *in = calloc(1, sizeof *in);

  if (!in || !(in->path = strdup(path))) {
    free(in);
    fail_oom(p);
    return NULL;
  }
  in->parent = parent;
  in->depth = parent ? parent->depth + 1 : 0;
  in->line = 1;
  return in;
}

static void input_free(input *in)
{
  free(in->path);
  free(in->owned);
  free(in);
}

static void push_input(parser *p, input *in)
{
  /* Inputs start with a UTF-8 byte order mark as often as not on Windows. */
  if (in->len >= 3 && memcmp(in->buf, "\xEF\xBB\xBF", 3) == 0) in->pos = 3;
  in->up = p->in;
  p->in = in;
}

static void pop_input(parser *p)
{
  input *old = p->in;

  p->in = old->up;
  /* Only the path lives on (messages and resources point at it). */
  free(old->owned);
  old->owned = NULL;
  old->buf = "";
  old->len = old->pos = 0;
  old->done = p->done;
  p->done = old;
}

/* Reads all of `f`, at most `limit` bytes: -2 when there is more. */
static int read_stream(FILE *f, size_t limit, char **out, size_t *outlen)
{
  sbuf b = {0};
  char chunk[8192];
  size_t n;

  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (n > limit - b.len) {
      free(b.p);
      return -2;
    }
    if (sb_reserve(&b, n)) {
      free(b.p);
      return -1;
    }
    memcpy(b.p + b.len, chunk, n);
    b.len += n;
    b.p[b.len] = '\0';
  }
  if (ferror(f)) {
    free(b.p);
    return -1;
  }
  if (!b.p && sb_reserve(&b, 0)) return -1;
  *out = b.p;
  *outlen = b.len;
  return 0;
}

/* Counts one more input of `len` bytes against the bounds of a load. */
static int count_input(parser *p, size_t len, const char *file, int line,
                       const char *q)
{
  if (p->ninputs >= MAX_INPUTS) {
    fail_at(p, file, line,
            "reading %s would make more than %d files read for this "
            "configuration (includes that fan out?)",
            q, MAX_INPUTS);
    return -1;
  }
  if (len > MAX_INPUT_BYTES - p->input_bytes) {
    fail_at(p, file, line,
            "reading %s would make more than %u MiB of configuration text "
            "(includes that fan out?)",
            q, MAX_INPUT_BYTES / (1024 * 1024));
    return -1;
  }
  p->ninputs++;
  p->input_bytes += len;
  return 0;
}

/* Opens `path` as an input included by `parent` from file:line. */
static int push_file(parser *p, const char *path, input *parent,
                     const char *file, int line)
{
  struct stat st;
  FILE *f;
  input *in;
  int rc;
  char q[512];

  quote_short(q, sizeof q, path);
  if (stat(path, &st) != 0) {
    fail_at(p, file, line, "cannot open %s: %s", q, strerror(errno));
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    fail_at(p, file, line, "cannot read %s: not a regular file", q);
    return -1;
  }
  for (input *a = parent; a; a = a->parent) {
    if (a->has_id && a->dev == st.st_dev && a->ino == st.st_ino) {
      fail_at(p, file, line, "file %s includes itself", q);
      return -1;
    }
  }
  if (parent && parent->depth + 1 > MAX_INCLUDE_DEPTH) {
    fail_at(p, file, line, "includes nested more than %d deep at %s",
            MAX_INCLUDE_DEPTH, q);
    return -1;
  }
  if (count_input(p, 0, file, line, q)) return -1;
  if (!(f = fopen(path, "rb"))) {
    fail_at(p, file, line, "cannot open %s: %s", q, strerror(errno));
    return -1;
  }
  if (!(in = input_new(p, path, parent))) {
    fclose(f);
    return -1;
  }
  rc = read_stream(f, MAX_INPUT_BYTES - p->input_bytes, &in->owned, &in->len);
  fclose(f);
  if (rc == -2) {
    count_input(p, SIZE_MAX, file, line, q);
    input_free(in);
    return -1;
  }
  if (rc != 0) {
    fail_at(p, file, line, "cannot read %s: %s", q, strerror(errno));
    input_free(in);
    return -1;
  }
  p->input_bytes += in->len;
  in->buf = in->owned;
  in->has_id = 1;
  in->dev = st.st_dev;
  in->ino = st.st_ino;
  push_input(p, in);
  return 0;
}

/* Pushes every match of `pattern` so that the first match is read first. */
static int push_glob(parser *p, const char *pattern, input *parent,
                     const char *file, int line, int *matched)
{
  glob_t g;
  int rc;
  char q[512];

  memset(&g, 0, sizeof g);
  rc = glob(pattern, 0, NULL, &g);
  *matched = 0;
  if (rc == GLOB_NOMATCH) {
    globfree(&g);
    return 0;
  }
  if (rc != 0) {
    quote_short(q, sizeof q, pattern);
    fail_at(p, file, line, "cannot list files matching %s", q);
    globfree(&g);
    return -1;
  }
  *matched = (int)g.gl_pathc;
  for (size_t i = g.gl_pathc; i-- > 0;) {
    if (push_file(p, g.gl_pathv[i], parent, file, line)) {
      globfree(&g);
      return -1;
    }
  }
  globfree(&g);
  return 0;
}

static const char *real_dir_path(const input *in)
{
  for (; in; in = in->parent)
    if (in->path[0] != '|') return in->path;
  return ".";
}

static int include_command(parser *p, const char *cmd, input *parent,
                           const char *file, int line)
{
  FILE *f;
  input *in;
  char *out = NULL;
  size_t len = 0;
  int status;
  char q[512];

  quote_short(q, sizeof q, cmd);
  fflush(NULL);
  if (!(f = popen(cmd, "r"))) {
    fail_at(p, file, line, "cannot run include command %s: %s", q,
            strerror(errno));
    return -1;
  }
  status = read_stream(f, MAX_INPUT_BYTES - p->input_bytes, &out, &len);
  if (status != 0) {
    pclose(f);
    if (status == -2)
      count_input(p, SIZE_MAX, file, line, q);
    else
      fail_at(p, file, line, "cannot read the output of include command %s",
              q);
    return -1;
  }
  status = pclose(f);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    free(out);
    fail_at(p, file, line, "include command %s failed", q);
    return -1;
  }
  if (parent && parent->depth + 1 > MAX_INCLUDE_DEPTH) {
    free(out);
    fail_at(p, file, line, "includes nested more than %d deep at %s",
            MAX_INCLUDE_DEPTH, q);
    return -1;
  }
  if (count_input(p, len, file, line, q)) {
    free(out);
    return -1;
  }
  {
    sbuf name = {0};
    if (sb_putc(&name, '|') || sb_puts(&name, cmd)) {
      free(name.p);
      free(out);
      fail_oom(p);
      return -1;
    }
    in = input_new(p, name.p, parent);
    free(name.p);
  }
  if (!in) {
    free(out);
    return -1;
  }
  in->owned = out;
  in->buf = out;
  in->len = len;
  push_input(p, in);
  return 0;
}

static int has_wildcard(const char *s) { return strchr(s, '*') || strchr(s, '?'); }

/* `@name` was read at file:line: open what it names. */
static int include(parser *p, const char *name, const char *file, int line)
{
  input *parent = p->in;
  sbuf full = {0};
  int rc, matched;

  if (p->flags & BD_CONFIG_NO_INCLUDE) {
    fail_at(p, file, line, "@include is not allowed here");
    return -1;
  }
  if (name[0] == '|') return include_command(p, name + 1, parent, file, line);

  if (name[0] != '/') {
    char *dir = dir_of(real_dir_path(parent));
    int bad = !dir;
    if (!bad && has_wildcard(name))
      bad = glob_escape(&full, dir) != 0;
    else if (!bad)
      bad = sb_puts(&full, dir) != 0;
    free(dir);
    if (bad || sb_putc(&full, '/')) {
      free(full.p);
      fail_oom(p);
      return -1;
    }
  }
  if (sb_puts(&full, name)) {
    free(full.p);
    fail_oom(p);
    return -1;
  }
  if (has_wildcard(name))
    rc = push_glob(p, full.p, parent, file, line, &matched);
  else
    rc = push_file(p, full.p, parent, file, line);
  free(full.p);
  return rc;
}

/* ---- the lexer ---- */

static int cur(const parser *p)
{
  const input *in = p->in;
  return in->pos < in->len ? (unsigned char)in->buf[in->pos] : -1;
}

static void adv(parser *p)
{
  input *in = p->in;
  if (in->pos < in->len) {
    if (in->buf[in->pos] == '\n') in->line++;
    in->pos++;
  }
}

static int read_include(parser *p)
{
  const char *file = p->in->path;
  int line = p->in->line;
  int c;

  adv(p); /* '@' */
  sb_clear(&p->tok);
  /* As in Bareos, a quote may start anywhere in the name (@|"command") and
   * its closing quote ends the name. */
  for (;;) {
    c = cur(p);
    if (c == '"') break;
    if (c == -1 || c == 0 || is_blank(c) || c == '\n' || strchr("{};,#", c))
      break;
    if (sb_putc(&p->tok, c)) goto oom;
    adv(p);
  }
  if (c == '"') {
    adv(p);
    for (;;) {
      c = cur(p);
      if (c == -1 || c == '\n' || c == 0) {
        fail_at(p, file, line, "unterminated quoted file name after '@'");
        return -1;
      }
      adv(p);
      if (c == '"') break;
      if (c == '\\') {
        c = cur(p);
        if (c == -1 || c == '\n' || c == 0) continue;
        adv(p);
      }
      if (sb_putc(&p->tok, c)) goto oom;
    }
  }
  if (p->tok.len == 0) {
    fail_at(p, file, line, "expected a file name after '@'");
    return -1;
  }
  {
    char *name = strdup(p->tok.p);
    int rc;
    if (!name) goto oom;
    rc = include(p, name, file, line);
    free(name);
    return rc;
  }
oom:
  fail_oom(p);
  return -1;
}

/*
 * After a closing quote: another quoted string later on the same line, or
 * at the start of the next line (after blanks), continues this one.
 */
static int string_continues(parser *p)
{
  input *in = p->in;
  size_t save = in->pos;
  int save_line = in->line;

  while (is_blank(cur(p))) adv(p);
  if (cur(p) == '"') {
    adv(p);
    return 1;
  }
  if (cur(p) == '#')
    while (cur(p) != -1 && cur(p) != '\n') adv(p);
  if (cur(p) == '\n') {
    adv(p);
    while (cur(p) == ' ' || cur(p) == '\t') adv(p);
    if (cur(p) == '"') {
      adv(p);
      return 1;
    }
  }
  in->pos = save;
  in->line = save_line;
  return 0;
}

static int read_quoted(parser *p)
{
  const char *file = p->in->path;
  int line = p->in->line;
  int c;

  adv(p); /* '"' */
  sb_clear(&p->tok);
  for (;;) {
    c = cur(p);
    if (c == -1) {
      fail_at(p, file, line, "unterminated quoted string (expected '\"')");
      return -1;
    }
    if (c == 0) {
      fail_at(p, p->in->path, p->in->line, "NUL byte in a quoted string");
      return -1;
    }
    adv(p);
    if (c == '\\') {
      /* Any character after a backslash stands for itself; a backslash at
       * the end of a line joins the lines, as in Bareos. */
      c = cur(p);
      if (c == -1 || c == 0) continue;
      adv(p);
      if (c == '\n') continue;
    } else if (c == '\n') {
      /* bareos-dir keeps a line break inside quotes, but a quote left open
       * by mistake then swallows the lines after it and the error, if any,
       * comes far away.  The simulator is stricter: say where it opened. */
      fail_at(p, file, line,
              "the quoted string opened here is not closed on its line (a "
              "missing '\"'?); to continue a string on the next line, close "
              "it and open another quote there, or end the line with '\\'");
      return -1;
    } else if (c == '"') {
      if (string_continues(p)) continue;
      return 0;
    }
    if (sb_putc(&p->tok, c)) {
      fail_oom(p);
      return -1;
    }
  }
}

/* A key: letters, digits, '_' and blanks; blanks are not part of it. */
static int read_key(parser *p)
{
  int c;

  sb_clear(&p->tok);
  sb_clear(&p->key);
  while ((c = cur(p)) != -1 &&
         (is_alpha(c) || is_digit(c) || c == '_' || c == ' ' || c == '\t')) {
    if (sb_putc(&p->tok, c)) goto oom;
    if (c != ' ' && c != '\t' && sb_putc(&p->key, lower(c))) goto oom;
    adv(p);
  }
  while (p->tok.len && is_blank((unsigned char)p->tok.p[p->tok.len - 1]))
    p->tok.p[--p->tok.len] = '\0';
  return 0;
oom:
  fail_oom(p);
  return -1;
}

/*
 * An unquoted word.  As a value it runs to the end of the statement, a
 * comma, a comment or a brace, and may hold blanks and '='.  Bareos reads a
 * value made of letters and blanks only as one identifier with the blanks
 * dropped ("Level = Full"; "Name = my job" names "myjob"), so do we.
 */
static int read_unquoted(parser *p, int mode)
{
  int c, alpha_only = 1;

  sb_clear(&p->tok);
  while ((c = cur(p)) != -1 && c != 0 && c != '\n' && !strchr(";,#{}", c)) {
    if (mode == MODE_KEY && (is_blank(c) || c == '=' || c == '"')) break;
    if (!is_alpha(c) && !is_blank(c)) alpha_only = 0;
    if (sb_putc(&p->tok, c)) {
      fail_oom(p);
      return -1;
    }
    adv(p);
  }
  while (p->tok.len && is_blank((unsigned char)p->tok.p[p->tok.len - 1]))
    p->tok.p[--p->tok.len] = '\0';
  if (mode == MODE_VALUE && alpha_only) {
    size_t o = 0;
    for (size_t i = 0; i < p->tok.len; i++)
      if (!is_blank((unsigned char)p->tok.p[i])) p->tok.p[o++] = p->tok.p[i];
    p->tok.p[o] = '\0';
    p->tok.len = o;
  }
  return 0;
}

static int next_token(parser *p, int mode)
{
  int c;

  if (p->pushed) {
    int t = p->pushed;
    p->pushed = 0;
    return t;
  }
  for (;;) {
    while (is_blank(c = cur(p))) adv(p);
    p->tok_file = p->in->path;
    p->tok_line = p->in->line;
    if (c == -1) {
      if (p->in->up) {
        /* The end of an included file ends a statement. */
        p->eof_file = p->in->path;
        p->eof_line = p->in->line;
        pop_input(p);
        return T_EOL;
      }
      if (p->eof_file) {
        p->tok_file = p->eof_file;
        p->tok_line = p->eof_line;
      }
      return T_EOF;
    }
    if (c == '#') {
      while ((c = cur(p)) != -1 && c != '\n') adv(p);
      continue;
    }
    if (c == 0) {
      fail_tok(p, "NUL byte in configuration text");
      return T_ERR;
    }
    if (c == '@') {
      if (read_include(p)) return T_ERR;
      continue;
    }
    switch (c) {
      case '\n':
      case ';':
        adv(p);
        return T_EOL;
      case '{':
        adv(p);
        return T_LBRACE;
      case '}':
        adv(p);
        return T_RBRACE;
      case '=':
        adv(p);
        return T_EQ;
      case ',':
        adv(p);
        return T_COMMA;
      case '"':
        return read_quoted(p) ? T_ERR : T_STR;
      default:
        break;
    }
    if (mode == MODE_KEY && is_alpha(c)) return read_key(p) ? T_ERR : T_KEY;
    return read_unquoted(p, mode) ? T_ERR : T_WORD;
  }
}

static void push_back(parser *p, int t) { p->pushed = t; }

static int next_not_eol(parser *p, int mode)
{
  int t;
  while ((t = next_token(p, mode)) == T_EOL) {
  }
  return t;
}

static const char *describe(parser *p, int t, char *buf, size_t len)
{
  char q[96];

  switch (t) {
    case T_EOF:
      return "the end of the file";
    case T_EOL:
      return "the end of the line";
    case T_LBRACE:
      return "'{'";
    case T_RBRACE:
      return "'}'";
    case T_EQ:
      return "'='";
    case T_COMMA:
      return "','";
    case T_STR:
      quote_short(q, sizeof q, p->tok.p);
      bd_fmt(buf, len, "the quoted string %s", q);
      return buf;
    default:
      quote_short(q, sizeof q, p->tok.p ? p->tok.p : "");
      bd_fmt(buf, len, "%s", q);
      return buf;
  }
}

/* ---- values ---- */

static const struct {
  const char *name;
  int code;
} level_names[] = {{"Full", 'F'},         {"Base", 'B'},
                   {"Incremental", 'I'},  {"Differential", 'D'},
                   {"Since", 'S'},        {"VirtualFull", 'f'},
                   {"Catalog", 'C'},      {"InitCatalog", 'V'},
                   {"VolumeToCatalog", 'O'}, {"DiskToCatalog", 'd'},
                   {"Data", 'A'}};

static const struct {
  const char *name;
  int code;
} type_names[] = {{"Backup", 'B'},  {"Admin", 'D'},   {"Archive", 'A'},
                  {"Verify", 'V'},  {"Restore", 'R'}, {"Migrate", 'g'},
                  {"Copy", 'c'},    {"Consolidate", 'O'}};

static int level_from_name(const char *text)
{
  for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
    if (strcasecmp(text, level_names[i].name) == 0) return level_names[i].code;
  return 0;
}

int bd_config_level_code(const char *text)
{
  if (!text) return 0;
  if (text[0] && !text[1]) {
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
      if (level_names[i].code == text[0]) return text[0];
    return 0;
  }
  return level_from_name(text);
}

int bd_config_type_code(const char *text)
{
  if (!text) return 0;
  for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
    if (strcasecmp(text, type_names[i].name) == 0) return type_names[i].code;
  return 0;
}

/* Bareos expands Plugin Directory with the shell; we do ~ and $VAR. */
static char *expand_dir(const char *s)
{
  sbuf b = {0};
  const char *home;

  if (s[0] == '~' && (s[1] == '/' || s[1] == '\0') && (home = getenv("HOME"))) {
    if (sb_puts(&b, home)) goto oom;
    s++;
  }
  while (*s) {
    if (s[0] == '$' && (s[1] == '{' || is_alpha((unsigned char)s[1]) ||
                        s[1] == '_')) {
      const char *start = s + 1, *end;
      int braced = *start == '{';
      char name[256];
      const char *val;
      if (braced) start++;
      end = start;
      while (is_alpha((unsigned char)*end) || is_digit((unsigned char)*end) ||
             *end == '_')
        end++;
      if ((braced && *end != '}') || (size_t)(end - start) >= sizeof name) {
        if (sb_putc(&b, *s++)) goto oom;
        continue;
      }
      memcpy(name, start, (size_t)(end - start));
      name[end - start] = '\0';
      if ((val = getenv(name)) && sb_puts(&b, val)) goto oom;
      s = end + (braced ? 1 : 0);
      continue;
    }
    if (sb_putc(&b, *s++)) goto oom;
  }
  if (!b.p && sb_reserve(&b, 0)) goto oom;
  return b.p;
oom:
  free(b.p);
  return NULL;
}

static int set_str(parser *p, char **dst, const char *val)
{
  char *s = strdup(val);
  if (!s) {
    fail_oom(p);
    return -1;
  }
  free(*dst);
  *dst = s;
  return 0;
}

static int job_add_option(parser *p, bd_config_job *j, const char *val)
{
  char **nv = realloc(j->plugin_options,
                      (j->plugin_options_count + 1) * sizeof *nv);
  if (!nv) {
    fail_oom(p);
    return -1;
  }
  j->plugin_options = nv;
  if (!(j->plugin_options[j->plugin_options_count] = strdup(val))) {
    fail_oom(p);
    return -1;
  }
  j->plugin_options_count++;
  j->has_plugin_options = 1;
  return 0;
}

static int director_add_names(parser *p, const char *val)
{
  bd_config *cfg = p->cfg;
  const char *s = val;

  /* Bareos splits each Plugin Names string at ':'. */
  for (;;) {
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    char **nv = realloc(cfg->plugin_names,
                        (cfg->plugin_names_count + 1) * sizeof *nv);
    char *name;
    if (!nv) goto oom;
    cfg->plugin_names = nv;
    if (!(name = malloc(n + 1))) goto oom;
    memcpy(name, s, n);
    name[n] = '\0';
    cfg->plugin_names[cfg->plugin_names_count++] = name;
    if (!colon) break;
    s = colon + 1;
  }
  cfg->has_plugin_names = 1;
  return 0;
oom:
  fail_oom(p);
  return -1;
}

/* Is `key` one the simulator reads in this resource (so it needs '=')? */
static int key_is_read(const resource *res, const char *key)
{
  static const char *const dir_keys[] = {"name", "plugindirectory",
                                         "pluginnames", NULL};
  static const char *const job_keys[] = {
      "name",    "type",    "level",   "client",          "pool",
      "storage", "priority", "jobdefs", "dirpluginoptions", NULL};
  /* Catalog directives and their aliases (bareos-dir's cat_items). */
  static const char *const cat_keys[] = {
      "name",   "dbname",  "dbuser",    "user",   "dbpassword", "password",
      "dbaddress", "address", "dbport", "port",   "dbsocket",   "socket",
      NULL};
  const char *const *keys;

  if (!res || res->kind == RES_OTHER) return strcmp(key, "name") == 0;
  keys = res->kind == RES_DIRECTOR  ? dir_keys
         : res->kind == RES_CATALOG ? cat_keys
                                    : job_keys;
  for (; *keys; keys++)
    if (strcmp(key, *keys) == 0) return 1;
  return 0;
}

/* A Catalog directive; `key` is lower-cased without blanks, so "DB Name",
 * "DbName" and "dbname" are one. */
static int apply_catalog_key(parser *p, bd_config_catalog *c, const char *key,
                             const char *key_text, const char *first,
                             const char *file, int line)
{
  static const struct {
    const char *key;
    size_t off;
  } strs[] = {
      {"dbname", offsetof(bd_config_catalog, db_name)},
      {"dbuser", offsetof(bd_config_catalog, db_user)},
      {"user", offsetof(bd_config_catalog, db_user)},
      {"dbpassword", offsetof(bd_config_catalog, db_password)},
      {"password", offsetof(bd_config_catalog, db_password)},
      {"dbaddress", offsetof(bd_config_catalog, db_address)},
      {"address", offsetof(bd_config_catalog, db_address)},
      {"dbsocket", offsetof(bd_config_catalog, db_socket)},
      {"socket", offsetof(bd_config_catalog, db_socket)},
  };
  char q[96];

  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    if (strcmp(key, strs[i].key) == 0)
      return set_str(p, (char **)((char *)c + strs[i].off), first);
  if (strcmp(key, "dbport") == 0 || strcmp(key, "port") == 0) {
    char *end;
    long v;
    errno = 0;
    v = strtol(first, &end, 10);
    if (!is_digit((unsigned char)first[0]) || *end || errno || v < 1 ||
        v > 65535) {
      quote_short(q, sizeof q, first);
      fail_at(p, file, line,
              "expected a TCP port number (1 to 65535) after \"%s =\", got "
              "%s",
              key_text, q);
      return -1;
    }
    c->db_port = v;
  }
  return 0;
}

static void catalog_clear(bd_config_catalog *c)
{
  free(c->name);
  free(c->file);
  free(c->db_name);
  free(c->db_user);
  if (c->db_password) memset(c->db_password, 0, strlen(c->db_password));
  free(c->db_password);
  free(c->db_address);
  free(c->db_socket);
  memset(c, 0, sizeof *c);
}

static int apply_key(parser *p, resource *res, const char *key,
                     const char *key_text, strlist *items, const char *file,
                     int line)
{
  const char *first = items->v[0];
  bd_config_job *j = &res->job;
  char q[96];

  if (strcmp(key, "name") == 0) {
    if (res->name && strcmp(res->name, first) != 0) {
      char q2[96];
      quote_short(q, sizeof q, res->name);
      quote_short(q2, sizeof q2, first);
      fail_at(p, file, line, "the Name of this resource is %s already: cannot rename it %s", q, q2);
      return -1;
    }
    return set_str(p, &res->name, first);
  }

  if (res->kind == RES_DIRECTOR) {
    if (strcmp(key, "plugindirectory") == 0) {
      char *d = expand_dir(first);
      if (!d) {
        fail_oom(p);
        return -1;
      }
      free(p->cfg->plugin_dir);
      p->cfg->plugin_dir = d;
    } else if (strcmp(key, "pluginnames") == 0) {
      if (items->n > 1)
        warn_at(p, file, line,
                "bareos-dir loads only the first name of a comma-separated "
                "\"%s\" list; write \"a:b\" or one line per name",
                key_text);
      for (size_t i = 0; i < items->n; i++)
        if (director_add_names(p, items->v[i])) return -1;
    }
    return 0;
  }
  if (res->kind == RES_CATALOG) return apply_catalog_key(p, &res->cat, key,
                                                         key_text, first,
                                                         file, line);
  if (res->kind != RES_JOB && res->kind != RES_JOBDEFS) return 0;

  if (strcmp(key, "type") == 0) {
    int code = bd_config_type_code(first);
    if (!code) {
      quote_short(q, sizeof q, first);
      fail_at(p, file, line,
              "expected a Job Type keyword (Backup, Restore, Verify, Admin, "
              "Migrate, Copy, Consolidate, Archive) after \"%s =\", got %s",
              key_text, q);
      return -1;
    }
    j->type = code;
    return set_str(p, &j->type_name, first);
  }
  if (strcmp(key, "level") == 0) {
    int code = level_from_name(first);
    if (!code) {
      quote_short(q, sizeof q, first);
      fail_at(p, file, line,
              "expected a Job Level keyword (Full, Incremental, Differential, "
              "VirtualFull, Base, Since, Catalog, InitCatalog, "
              "VolumeToCatalog, DiskToCatalog, Data) after \"%s =\", got %s",
              key_text, q);
      return -1;
    }
    j->level = code;
    return set_str(p, &j->level_name, first);
  }
  if (strcmp(key, "client") == 0) return set_str(p, &j->client, first);
  if (strcmp(key, "pool") == 0) return set_str(p, &j->pool, first);
  if (strcmp(key, "storage") == 0)
    return j->storage ? 0 : set_str(p, &j->storage, first);
  if (strcmp(key, "jobdefs") == 0) {
    j->jobdefs_line = line;
    return set_str(p, &j->jobdefs, first);
  }
  if (strcmp(key, "priority") == 0) {
    char *end;
    long v;
    errno = 0;
    v = strtol(first, &end, 10);
    if (!is_digit((unsigned char)first[0]) || *end || errno || v > INT_MAX) {
      quote_short(q, sizeof q, first);
      fail_at(p, file, line,
              "expected a positive integer after \"%s =\", got %s", key_text,
              q);
      return -1;
    }
    j->priority = (int)v;
    j->has_priority = 1;
    return 0;
  }
  if (strcmp(key, "dirpluginoptions") == 0) {
    for (size_t i = 0; i < items->n; i++)
      if (job_add_option(p, j, items->v[i])) return -1;
    return 0;
  }
  return 0;
}

/*
 * For "expected '='" messages: in "Level Full" the key is "Level" when that
 * is a key the simulator reads (a blank does not end a key in Bareos).
 */
static void shorten_key(const resource *res, const char *key_text, char *q,
                        size_t qlen)
{
  char norm[128], word[128];
  size_t n = 0, w = 0, best = 0;

  for (size_t i = 0; key_text[i] && n + 1 < sizeof norm; i++) {
    char c = key_text[i];
    if (c == ' ' || c == '\t') {
      norm[n] = '\0';
      if (n && key_is_read(res, norm)) best = i;
      continue;
    }
    norm[n++] = (char)lower((unsigned char)c);
  }
  if (!best) return;
  for (size_t i = 0; i < best && w + 1 < sizeof word; i++)
    word[w++] = key_text[i];
  while (w && (word[w - 1] == ' ' || word[w - 1] == '\t')) w--;
  word[w] = '\0';
  quote_short(q, qlen, word);
}

/*
 * The value of `key =`: quoted and unquoted items separated by ',' (a line
 * may end after a comma) or '=', up to the end of the statement; or a
 * nested block.
 */
static int parse_value(parser *p, strlist *items, int *had_block,
                       const char *block_table, int depth)
{
  int after_comma = 0;
  const char *bfile;
  int bline;

  *had_block = 0;
  for (;;) {
    int t = next_token(p, MODE_VALUE);
    switch (t) {
      case T_ERR:
        return -1;
      case T_STR:
      case T_WORD:
        after_comma = 0;
        if (list_add(items, strdup(p->tok.p))) {
          fail_oom(p);
          return -1;
        }
        break;
      case T_COMMA:
        after_comma = 1;
        break;
      case T_EQ:
        after_comma = 0;
        break;
      case T_LBRACE:
        bfile = p->tok_file;
        bline = p->tok_line;
        *had_block = 1;
        return parse_block(p, NULL, block_table, "block", bfile, bline,
                           depth + 1);
      case T_EOL:
        if (after_comma) break;
        return 0;
      default: /* T_EOF, T_RBRACE end the statement too */
        push_back(p, t);
        return 0;
    }
  }
}

static int parse_statement(parser *p, resource *res, const char *table,
                           int depth)
{
  char *key = strdup(p->key.p), *key_text = strdup(p->tok.p);
  const char *file = p->tok_file;
  int line = p->tok_line, t, rc = -1, had_block;
  strlist items = {0};
  char q[96], d[128];

  if (!key || !key_text) {
    fail_oom(p);
    goto out;
  }
  quote_short(q, sizeof q, key_text);
  t = next_not_eol(p, MODE_KEY);
  if (t == T_ERR) goto out;
  if ((t == T_LBRACE || t == T_EQ) && table && !directive_known(table, key)) {
    const char *near = directive_nearest(table, key);
    if (near)
      fail_at(p, file, line,
              "Keyword %s not permitted in this resource (%s); did you mean "
              "\"%s\"?",
              q, table, near);
    else
      fail_at(p, file, line, "Keyword %s not permitted in this resource (%s)",
              q, table);
    goto out;
  }
  if (t == T_LBRACE && !key_is_read(res, key)) {
    rc = parse_block(p, NULL, nested_table(table, key), key_text, file, line,
                     depth + 1);
    goto out;
  }
  if (t != T_EQ) {
    shorten_key(res, key_text, q, sizeof q);
    if (t == T_KEY || t == T_EOF || t == T_RBRACE || t == T_LBRACE)
      fail_at(p, file, line, "expected '=' after key %s", q);
    else
      fail_at(p, file, line, "expected '=' after key %s, got %s", q,
              describe(p, t, d, sizeof d));
    goto out;
  }
  if (parse_value(p, &items, &had_block, nested_table(table, key), depth))
    goto out;
  if (items.n == 0) {
    if (had_block && !key_is_read(res, key)) {
      rc = 0;
      goto out;
    }
    {
      sbuf kq = {0};
      if (sb_puts(&kq, key_text) || sb_puts(&kq, " =")) {
        free(kq.p);
        fail_oom(p);
        goto out;
      }
      quote_short(q, sizeof q, kq.p);
      free(kq.p);
    }
    fail_at(p, file, line, "expected a value after %s", q);
    goto out;
  }
  rc = res ? apply_key(p, res, key, key_text, &items, file, line) : 0;
out:
  list_free(&items);
  free(key);
  free(key_text);
  return rc;
}

/* Statements up to the closing '}'; `res` NULL for blocks that are skipped. */
static int parse_block(parser *p, resource *res, const char *table,
                       const char *what, const char *open_file, int open_line,
                       int depth)
{
  char q[96], d[128];

  if (depth > MAX_BLOCK_DEPTH) {
    fail_at(p, open_file, open_line, "blocks nested more than %d deep",
            MAX_BLOCK_DEPTH);
    return -1;
  }
  for (;;) {
    int t = next_token(p, MODE_KEY);
    switch (t) {
      case T_ERR:
        return -1;
      case T_EOL:
        continue;
      case T_RBRACE:
        return 0;
      case T_EOF:
        quote_short(q, sizeof q, what);
        fail_tok(p, "unexpected end of file: expected '}' to close %s opened at %s:%d",
                 q, display_path(p, open_file), open_line);
        return -1;
      case T_KEY:
        if (parse_statement(p, res, table, depth)) return -1;
        continue;
      default:
        fail_tok(p, "expected a keyword or '}', got %s",
                 describe(p, t, d, sizeof d));
        return -1;
    }
  }
}

/* ---- resources ---- */

static int classify(const char *type_norm)
{
  if (strcmp(type_norm, "director") == 0) return RES_DIRECTOR;
  if (strcmp(type_norm, "job") == 0) return RES_JOB;
  if (strcmp(type_norm, "jobdefs") == 0) return RES_JOBDEFS;
  if (strcmp(type_norm, "catalog") == 0) return RES_CATALOG;
  return RES_OTHER;
}

/* The directive table of a resource type, NULL when bareos-dir has no
 * such resource. */
static const char *type_table(const char *type_norm)
{
  static const char *const tables[] = {
      "Catalog", "Client",  "Console", "Counter", "Director",
      "FileSet", "Job",     "Messages", "Pool",   "Profile",
      "Schedule", "Storage", "User",   NULL};
  if (strcmp(type_norm, "jobdefs") == 0) return "Job";
  for (const char *const *t = tables; *t; t++)
    if (strcasecmp(type_norm, *t) == 0) return *t;
  return NULL;
}

static void job_clear(bd_config_job *j)
{
  free(j->name);
  free(j->file);
  free(j->jobdefs);
  free(j->type_name);
  free(j->level_name);
  free(j->client);
  free(j->pool);
  free(j->storage);
  for (size_t i = 0; i < j->plugin_options_count; i++)
    free(j->plugin_options[i]);
  free(j->plugin_options);
  memset(j, 0, sizeof *j);
}

static int remember_name(parser *p, resource *r)
{
  char q[96];
  resname *n;
  uint64_t hash = hash_str(hash_str(HASH_SEED, r->type_norm), r->name);
  size_t it = 0, pos1;

  if (!p->names && !(p->names = calloc(1, sizeof *p->names))) {
    fail_oom(p);
    return -1;
  }
  while ((pos1 = hindex_next(p->names, hash, &it)) != 0) {
    size_t i = pos1 - 1;
    if (strcmp(p->res[i].type, r->type_norm) == 0 &&
        strcmp(p->res[i].name, r->name) == 0) {
      quote_short(q, sizeof q, r->name);
      fail_at(p, r->file, r->line,
              "a second %s resource named %s is not permitted (the first is "
              "at %s:%d)",
              r->type_text, q, display_path(p, p->res[i].file),
              p->res[i].line);
      return -1;
    }
  }
  if (p->nres == p->capres) {
    size_t cap = p->capres ? p->capres * 2 : 32;
    resname *nv = realloc(p->res, cap * sizeof *nv);
    if (!nv) {
      fail_oom(p);
      return -1;
    }
    p->res = nv;
    p->capres = cap;
  }
  n = &p->res[p->nres];
  n->type = strdup(r->type_norm);
  n->name = strdup(r->name);
  n->file = r->file;
  n->line = r->line;
  if (!n->type || !n->name || hindex_add(p->names, hash, p->nres)) {
    free(n->type);
    free(n->name);
    fail_oom(p);
    return -1;
  }
  p->nres++;
  return 0;
}

static int store_job(parser *p, resource *r)
{
  bd_config *cfg = p->cfg;
  bd_config_job **arr = r->kind == RES_JOB ? &cfg->jobs : &cfg->jobdefs;
  size_t *count = r->kind == RES_JOB ? &cfg->jobs_count : &cfg->jobdefs_count;
  size_t *cap = r->kind == RES_JOB ? &p->jobs_cap : &p->jobdefs_cap;
  bd_config_job *nv = *arr;

  if (*count == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > SIZE_MAX / sizeof *nv || !(nv = realloc(*arr, ncap * sizeof *nv))) {
      fail_oom(p);
      return -1;
    }
    *arr = nv;
    *cap = ncap;
  }
  r->job.name = r->name;
  r->name = NULL;
  if (!(r->job.file = strdup(display_path(p, r->file)))) {
    r->name = r->job.name;
    r->job.name = NULL;
    fail_oom(p);
    return -1;
  }
  r->job.line = r->line;
  nv[(*count)++] = r->job;
  memset(&r->job, 0, sizeof r->job);
  return 0;
}

static int store_catalog(parser *p, resource *r)
{
  bd_config *cfg = p->cfg;
  bd_config_catalog *nv =
      realloc(cfg->catalogs, (cfg->catalogs_count + 1) * sizeof *nv);

  if (!nv) {
    fail_oom(p);
    return -1;
  }
  cfg->catalogs = nv;
  if (!(r->cat.file = strdup(display_path(p, r->file)))) {
    fail_oom(p);
    return -1;
  }
  r->cat.name = r->name;
  r->name = NULL;
  r->cat.line = r->line;
  nv[cfg->catalogs_count++] = r->cat;
  memset(&r->cat, 0, sizeof r->cat);
  return 0;
}

static int parse_resource(parser *p)
{
  resource r;
  int t, rc = -1;
  char *type_text = strdup(p->tok.p);
  char q[96], d[128];

  memset(&r, 0, sizeof r);
  r.type_norm = strdup(p->key.p);
  r.type_text = type_text;
  r.file = p->tok_file;
  r.line = p->tok_line;
  if (!type_text || !r.type_norm) {
    fail_oom(p);
    goto out;
  }
  r.kind = classify(r.type_norm);
  quote_short(q, sizeof q, type_text);
  t = next_not_eol(p, MODE_KEY);
  if (t == T_ERR) goto out;
  if (t != T_LBRACE) {
    fail_at(p, r.file, r.line, "expected '{' after resource type %s, got %s",
            q, describe(p, t, d, sizeof d));
    goto out;
  }
  r.table = type_table(r.type_norm);
  if (!r.table) {
    fail_at(p, r.file, r.line,
            "unknown resource type %s: bareos-dir has Director, Client, Job, "
            "JobDefs, Storage, Catalog, Schedule, FileSet, Pool, Messages, "
            "Counter, Console, Profile and User",
            q);
    goto out;
  }
  if (r.kind == RES_DIRECTOR && p->cfg->has_director) {
    fail_at(p, r.file, r.line,
            "only one Director resource is permitted (the first is at %s:%d)",
            p->cfg->director_file, p->cfg->director_line);
    goto out;
  }
  if (parse_block(p, &r, r.table, type_text, r.file, r.line, 1)) goto out;
  if (!r.name) {
    fail_at(p, r.file, r.line, "%s resource has no Name", type_text);
    goto out;
  }
  if (remember_name(p, &r)) goto out;
  if (r.kind == RES_DIRECTOR) {
    p->cfg->has_director = 1;
    p->cfg->director_name = r.name;
    r.name = NULL;
    p->cfg->director_line = r.line;
    if (!(p->cfg->director_file = strdup(display_path(p, r.file)))) {
      fail_oom(p);
      goto out;
    }
  } else if (r.kind == RES_JOB || r.kind == RES_JOBDEFS) {
    if (store_job(p, &r)) goto out;
  } else if (r.kind == RES_CATALOG) {
    if (store_catalog(p, &r)) goto out;
  }
  rc = 0;
out:
  job_clear(&r.job);
  catalog_clear(&r.cat);
  free(r.name);
  free(r.type_norm);
  free(type_text);
  return rc;
}

static int parse_all(parser *p)
{
  char d[128];

  for (;;) {
    int t = next_token(p, MODE_KEY);
    switch (t) {
      case T_ERR:
        return -1;
      case T_EOF:
        return 0;
      case T_EOL:
        continue;
      case T_KEY:
        if (parse_resource(p)) return -1;
        continue;
      case T_RBRACE:
        fail_tok(p, "unexpected '}' outside of a resource");
        return -1;
      default:
        fail_tok(p, "expected a resource type such as Director or Job, got %s",
                 describe(p, t, d, sizeof d));
        return -1;
    }
  }
}

/* ---- JobDefs ---- */

static int inherit_str(parser *p, char **dst, const char *src)
{
  if (*dst || !src) return 0;
  if (!(*dst = strdup(src))) {
    fail_oom(p);
    return -1;
  }
  return 0;
}

/* Inherits what `j` leaves unset from its JobDefs `d` (already resolved). */
static int inherit(parser *p, bd_config_job *j, const bd_config_job *d)
{
  if (inherit_str(p, &j->type_name, d->type_name) ||
      inherit_str(p, &j->level_name, d->level_name) ||
      inherit_str(p, &j->client, d->client) ||
      inherit_str(p, &j->pool, d->pool) ||
      inherit_str(p, &j->storage, d->storage))
    return -1;
  if (!j->type) j->type = d->type;
  if (!j->level) j->level = d->level;
  if (!j->has_priority && d->has_priority) {
    j->priority = d->priority;
    j->has_priority = 1;
  }
  /* A Job's own Dir Plugin Options replace its JobDefs' entirely. */
  if (!j->has_plugin_options && d->has_plugin_options) {
    for (size_t i = 0; i < d->plugin_options_count; i++)
      if (job_add_option(p, j, d->plugin_options[i])) return -1;
  }
  return 0;
}

typedef struct resolver {
  hindex jobdefs;        /* JobDefs by name */
  bd_config_job **chain; /* the JobDefs chain being resolved */
  size_t cap;
} resolver;

static bd_config_job *find_jobdefs(parser *p, resolver *rs, const char *name)
{
  uint64_t hash = hash_str(HASH_SEED, name);
  size_t it = 0, pos1;

  while ((pos1 = hindex_next(&rs->jobdefs, hash, &it)) != 0)
    if (strcmp(p->cfg->jobdefs[pos1 - 1].name, name) == 0)
      return &p->cfg->jobdefs[pos1 - 1];
  return NULL;
}

/*
 * resolve_state_: 0 not yet, 1 being resolved, 2 done.  Walks up the
 * JobDefs chain of `j` without recursion (a chain may be as long as the
 * configuration), then inherits downwards.  j->file is already a display
 * path, which display_path() leaves as it is.
 */
static int resolve(parser *p, resolver *rs, bd_config_job *j, const char *kind)
{
  size_t n = 0;
  bd_config_job *cur = j;
  char q[96], q2[96];

  while (cur->resolve_state_ != 2) {
    const char *what = cur == j ? kind : "JobDefs";
    bd_config_job *d;
    int line = cur->jobdefs_line ? cur->jobdefs_line : cur->line;

    quote_short(q, sizeof q, cur->name);
    if (cur->resolve_state_ == 1) {
      fail_at(p, cur->file, cur->line, "JobDefs %s is part of a JobDefs loop",
              q);
      return -1;
    }
    if (n == rs->cap) {
      size_t cap = rs->cap ? rs->cap * 2 : 16;
      bd_config_job **nv = realloc(rs->chain, cap * sizeof *nv);
      if (!nv) {
        fail_oom(p);
        return -1;
      }
      rs->chain = nv;
      rs->cap = cap;
    }
    rs->chain[n++] = cur;
    cur->resolve_state_ = 1;
    if (!cur->jobdefs) break;
    quote_short(q2, sizeof q2, cur->jobdefs);
    d = find_jobdefs(p, rs, cur->jobdefs);
    if (!d) {
      fail_at(p, cur->file, line, "%s %s: JobDefs %s not found", what, q, q2);
      return -1;
    }
    if (d == cur) {
      fail_at(p, cur->file, line, "JobDefs %s names itself", q);
      return -1;
    }
    cur = d;
  }
  /* chain[n - 1] has no JobDefs or one already resolved. */
  while (n-- > 0) {
    bd_config_job *c = rs->chain[n];
    if (c->jobdefs) {
      bd_config_job *d = find_jobdefs(p, rs, c->jobdefs);
      if (d && inherit(p, c, d)) return -1;
    }
    c->resolve_state_ = 2;
  }
  return 0;
}

static int resolve_all(parser *p)
{
  bd_config *cfg = p->cfg;
  resolver rs;
  int rc = -1;

  memset(&rs, 0, sizeof rs);
  for (size_t i = 0; i < cfg->jobdefs_count; i++) {
    if (hindex_add(&rs.jobdefs, hash_str(HASH_SEED, cfg->jobdefs[i].name),
                   i)) {
      fail_oom(p);
      goto out;
    }
  }
  for (size_t i = 0; i < cfg->jobdefs_count; i++)
    if (resolve(p, &rs, &cfg->jobdefs[i], "JobDefs")) goto out;
  for (size_t i = 0; i < cfg->jobs_count; i++)
    if (resolve(p, &rs, &cfg->jobs[i], "Job")) goto out;
  rc = 0;
out:
  hindex_free(&rs.jobdefs);
  free(rs.chain);
  return rc;
}

/* ---- entry points ---- */

static void parser_finish(parser *p)
{
  while (p->in) pop_input(p);
  while (p->done) {
    input *next = p->done->done;
    input_free(p->done);
    p->done = next;
  }
  for (size_t i = 0; i < p->nres; i++) {
    free(p->res[i].type);
    free(p->res[i].name);
  }
  free(p->res);
  hindex_free(p->names);
  free(p->names);
  free(p->tok.p);
  free(p->key.p);
}

static int parser_init(parser *p, const char *root_path, int flags, char *err,
                       size_t errlen)
{
  memset(p, 0, sizeof *p);
  p->flags = flags;
  p->err = err;
  p->errlen = errlen;
  if (errlen) err[0] = '\0';
  p->base = "";
  if (!(p->cfg = calloc(1, sizeof *p->cfg))) {
    fail_oom(p);
    return -1;
  }
  /* An empty root input: the files read are pushed on top of it. */
  if (!(p->in = input_new(p, root_path, NULL))) {
    free(p->cfg);
    p->cfg = NULL;
    return -1;
  }
  p->in->buf = "";
  if (sb_reserve(&p->tok, 0) || sb_reserve(&p->key, 0)) {
    fail_oom(p);
    return -1;
  }
  return 0;
}

static bd_config *parser_run(parser *p)
{
  bd_config *cfg = p->cfg;

  if (!p->failed && parse_all(p) == 0) resolve_all(p);
  parser_finish(p);
  if (p->failed) {
    bd_config_free(cfg);
    return NULL;
  }
  return cfg;
}

bd_config *bd_config_parse_buffer(const char *name, const char *data,
                                  size_t len, int flags, char *err,
                                  size_t errlen)
{
  parser p;
  input *in;

  if (parser_init(&p, name ? name : "<buffer>", flags, err, errlen)) {
    parser_finish(&p);
    bd_config_free(p.cfg);
    return NULL;
  }
  if (!(in = input_new(&p, name ? name : "<buffer>", p.in))) {
    parser_finish(&p);
    bd_config_free(p.cfg);
    return NULL;
  }
  in->buf = data ? data : "";
  in->len = data ? len : 0;
  push_input(&p, in);
  return parser_run(&p);
}

bd_config *bd_config_load(const char *path, char *err, size_t errlen)
{
  parser p;
  struct stat st;
  sbuf pat = {0};
  char *base = NULL;
  int matched = 0;
  bd_config *cfg;

  if (errlen) err[0] = '\0';
  if (stat(path, &st) != 0) {
    bd_fmt(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  if (parser_init(&p, path, 0, err, errlen)) goto fail;

  if (!S_ISDIR(st.st_mode)) {
    push_file(&p, path, p.in, NULL, 0);
    goto run;
  }

  /* Messages name files relative to the configuration directory. */
  if (!(base = strdup(path))) {
    fail_oom(&p);
    goto run;
  }
  while (strlen(base) > 1 && base[strlen(base) - 1] == '/')
    base[strlen(base) - 1] = '\0';
  p.base = base;
  p.base_len = strcmp(base, "/") == 0 ? 0 : strlen(base);

  if (sb_puts(&pat, base) || sb_puts(&pat, "/bareos-dir.conf")) {
    fail_oom(&p);
    goto run;
  }
  if (stat(pat.p, &st) == 0) {
    push_file(&p, pat.p, p.in, NULL, 0);
    goto run;
  }
  sb_clear(&pat);
  if (sb_puts(&pat, base) || sb_puts(&pat, "/bareos-dir.d")) {
    fail_oom(&p);
    goto run;
  }
  if (stat(pat.p, &st) == 0 && S_ISDIR(st.st_mode)) {
    sb_clear(&pat);
    if (glob_escape(&pat, base) || sb_puts(&pat, "/bareos-dir.d/*/*.conf")) {
      fail_oom(&p);
      goto run;
    }
    push_glob(&p, pat.p, p.in, NULL, 0, &matched);
    goto run;
  }
  /* Not what bareos-dir accepts, but handy: the bareos-dir.d/ itself. */
  sb_clear(&pat);
  if (glob_escape(&pat, base) || sb_puts(&pat, "/*/*.conf")) {
    fail_oom(&p);
    goto run;
  }
  if (push_glob(&p, pat.p, p.in, NULL, 0, &matched) == 0 && !matched)
    fail_at(&p, NULL, 0,
            "%s: no bareos-dir.conf, no bareos-dir.d/ and no */*.conf in "
            "this directory",
            path);
run:
  cfg = parser_run(&p);
  free(pat.p);
  free(base);
  return cfg;
fail:
  parser_finish(&p);
  bd_config_free(p.cfg);
  return NULL;
}

void bd_config_free(bd_config *cfg)
{
  if (!cfg) return;
  free(cfg->director_name);
  free(cfg->director_file);
  free(cfg->plugin_dir);
  for (size_t i = 0; i < cfg->plugin_names_count; i++)
    free(cfg->plugin_names[i]);
  free(cfg->plugin_names);
  for (size_t i = 0; i < cfg->jobs_count; i++) job_clear(&cfg->jobs[i]);
  free(cfg->jobs);
  for (size_t i = 0; i < cfg->jobdefs_count; i++) job_clear(&cfg->jobdefs[i]);
  free(cfg->jobdefs);
  for (size_t i = 0; i < cfg->catalogs_count; i++)
    catalog_clear(&cfg->catalogs[i]);
  free(cfg->catalogs);
  for (size_t i = 0; i < cfg->warnings_count; i++) free(cfg->warnings[i]);
  free(cfg->warnings);
  free(cfg);
}

static const bd_config_job *find_job(const bd_config_job *arr, size_t n,
                                     const char *name)
{
  const bd_config_job *found = NULL;

  if (!name) return NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(arr[i].name, name) == 0) return &arr[i];
  for (size_t i = 0; i < n; i++) {
    if (strcasecmp(arr[i].name, name) == 0) {
      if (found) return NULL; /* ambiguous */
      found = &arr[i];
    }
  }
  return found;
}

const bd_config_job *bd_config_find_job(const bd_config *cfg, const char *name)
{
  return cfg ? find_job(cfg->jobs, cfg->jobs_count, name) : NULL;
}

const bd_config_job *bd_config_find_jobdefs(const bd_config *cfg,
                                            const char *name)
{
  return cfg ? find_job(cfg->jobdefs, cfg->jobdefs_count, name) : NULL;
}

const bd_config_catalog *bd_config_find_catalog(const bd_config *cfg,
                                                const char *name)
{
  const bd_config_catalog *found = NULL;

  if (!cfg || cfg->catalogs_count == 0) return NULL;
  if (!name) return &cfg->catalogs[0];
  for (size_t i = 0; i < cfg->catalogs_count; i++)
    if (strcmp(cfg->catalogs[i].name, name) == 0) return &cfg->catalogs[i];
  for (size_t i = 0; i < cfg->catalogs_count; i++) {
    if (strcasecmp(cfg->catalogs[i].name, name) == 0) {
      if (found) return NULL; /* ambiguous */
      found = &cfg->catalogs[i];
    }
  }
  return found;
}
