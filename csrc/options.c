/*
 * Parsing `Dir Plugin Options` strings ("python:module_name=x:key=value:...")
 * into the keys the host consumes and the remainder the Python plugin gets,
 * and masking secret values for debug output.  The splitting rules are
 * Bareos's: a ':' preceded by a backslash does not separate, backslashes are
 * removed from consumed values, and everything not consumed is passed on
 * byte for byte as "k1=v1:k2=v2:".  No Python and no fixed-size buffers for
 * the input, so it can be fuzzed on its own.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "options.h"
#include "textfmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest piece of user text quoted in an error message. */
#define SHOW_MAX 80

/* Instances are 0..127 (BD_MAX_INSTANCES in director_abi.h). */
#define INSTANCE_MAX 127

static int ascii_lower(int c) {
  return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Keys are ASCII; compare without the locale, equal length required. */
static int key_equals(const char *key, size_t len, const char *word) {
  size_t i;
  for (i = 0; i < len; i++) {
    if (word[i] == '\0' || ascii_lower((unsigned char)key[i]) != word[i])
      return 0;
  }
  return word[len] == '\0';
}

/* The values of interpreter= and on_error=, in the order of their enums. */
static const char *const interp_words[] = {"isolated", "main"};
static const char *const on_error_words[] = {"fatal", "warning"};
_Static_assert(BD_INTERP_ISOLATED == 0 && BD_INTERP_MAIN == 1, "order");
_Static_assert(BD_ON_ERROR_FATAL == 0 && BD_ON_ERROR_WARNING == 1, "order");

static int word_equals(const char *s, const char *word) {
  return key_equals(s, strlen(s), word);
}

/* The end of the segment starting at `s`: the next ':' not preceded by a
 * backslash, or the terminating NUL.  `prev` is the character before `s`. */
static const char *segment_end(const char *s, char prev) {
  const char *p = s;
  while (*p != '\0' && !(*p == ':' && prev != '\\')) {
    prev = *p;
    p++;
  }
  return p;
}

/*
 * Error messages quote user text: keep them one line and readable by
 * replacing control characters and shortening very long text.
 */
static void show(char *dst, size_t dstlen, const char *s, size_t n) {
  size_t i, o = 0, lim = n > SHOW_MAX ? SHOW_MAX : n;
  for (i = 0; i < lim && o + 1 < dstlen; i++) {
    unsigned char c = (unsigned char)s[i];
    dst[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  if (lim < n) {
    const char *dots = "...";
    while (*dots != '\0' && o + 1 < dstlen) dst[o++] = *dots++;
  }
  dst[o] = '\0';
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void
set_error(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errlen == 0) return;
  va_start(ap, fmt);
  bd_vfmt(err, errlen, fmt, ap);
  va_end(ap);
}

/* Copy of [s, s+n) with every backslash removed (Bareos StripBackSlashes). */
static char *unescape(const char *s, size_t n) {
  char *out = malloc(n + 1);
  size_t i, o = 0;
  if (out == NULL) return NULL;
  for (i = 0; i < n; i++) {
    if (s[i] != '\\') out[o++] = s[i];
  }
  out[o] = '\0';
  return out;
}

static char *copy_n(const char *s, size_t n) {
  char *out = malloc(n + 1);
  if (out == NULL) return NULL;
  memcpy(out, s, n);
  out[n] = '\0';
  return out;
}

/* A growing string for `rest`. */
typedef struct {
  char *buf;
  size_t len, cap;
} strbuf;

static int sb_append(strbuf *sb, const char *s, size_t n) {
  if (n + 1 > sb->cap - sb->len) {
    size_t cap = sb->cap ? sb->cap : 64;
    char *nb;
    while (n + 1 > cap - sb->len) {
      if (cap > ((size_t)-1) / 2) return -1;
      cap *= 2;
    }
    nb = realloc(sb->buf, cap);
    if (nb == NULL) return -1;
    sb->buf = nb;
    sb->cap = cap;
  }
  memcpy(sb->buf + sb->len, s, n);
  sb->len += n;
  sb->buf[sb->len] = '\0';
  return 0;
}

/* Decimal 0..127 only: no sign, no blanks, no base prefixes. */
static int parse_instance(const char *key, size_t keylen, const char *raw,
                          size_t rawlen, const char *val, int *out, char *err,
                          size_t errlen) {
  char k[SHOW_MAX + 4], v[SHOW_MAX + 4];
  const char *p = val;
  long n = 0;
  show(k, sizeof k, key, keylen);
  show(v, sizeof v, raw, rawlen);
  if (*p == '\0') {
    set_error(err, errlen, "%s= is not a number (instance must be 0 to 127)",
              k);
    return -1;
  }
  if (*p == '-' && p[1] >= '0' && p[1] <= '9') {
    set_error(err, errlen, "%s=%s is below 0 (instance must be 0 to 127)", k,
              v);
    return -1;
  }
  for (; *p != '\0'; p++) {
    if (*p < '0' || *p > '9') {
      set_error(err, errlen,
                "%s=%s is not a number (instance must be 0 to 127)", k, v);
      return -1;
    }
    if (n <= INSTANCE_MAX) n = n * 10 + (*p - '0');
  }
  if (n > INSTANCE_MAX) {
    set_error(err, errlen, "%s=%s is above 127", k, v);
    return -1;
  }
  *out = (int)n;
  return 0;
}

void bd_options_free(bd_options *opts) {
  if (opts == NULL) return;
  free(opts->plugin);
  free(opts->module_path);
  free(opts->module_name);
  free(opts->rest);
  memset(opts, 0, sizeof *opts);
}

/* Handles one key=value segment; -1 with err set on a bad one. */
static int take_segment(bd_options *o, strbuf *rest, const char *seg,
                        size_t seglen, char *err, size_t errlen) {
  char k[SHOW_MAX + 4], v[SHOW_MAX + 4];
  const char *eq = memchr(seg, '=', seglen);
  const char *raw;
  size_t keylen, rawlen;
  char *val;

  if (eq == NULL) {
    show(k, sizeof k, seg, seglen);
    set_error(err, errlen, "option \"%s\" has no value (expected key=value)",
              k);
    return -1;
  }
  if (eq == seg) {
    show(v, sizeof v, seg, seglen);
    set_error(err, errlen,
              "option \"%s\" has an empty key (expected key=value)", v);
    return -1;
  }
  keylen = (size_t)(eq - seg);
  raw = eq + 1;
  rawlen = seglen - keylen - 1;

  if (!key_equals(seg, keylen, "instance") &&
      !key_equals(seg, keylen, "module_path") &&
      !key_equals(seg, keylen, "module_name") &&
      !key_equals(seg, keylen, "interpreter") &&
      !key_equals(seg, keylen, "on_error")) {
    if (sb_append(rest, seg, seglen) != 0 || sb_append(rest, ":", 1) != 0)
      goto nomem;
    return 0;
  }

  val = unescape(raw, rawlen);
  if (val == NULL) goto nomem;
  if (key_equals(seg, keylen, "instance")) {
    int rc = parse_instance(seg, keylen, raw, rawlen, val, &o->instance, err,
                            errlen);
    free(val);
    if (rc != 0) return -1;
    o->has_instance = 1;
  } else if (key_equals(seg, keylen, "module_path")) {
    free(o->module_path);
    o->module_path = val; /* a repeated key: the last one wins, as in Bareos */
  } else if (key_equals(seg, keylen, "module_name")) {
    free(o->module_name);
    o->module_name = val;
  } else {
    /* interpreter= or on_error=: one of two words. */
    int is_interp = key_equals(seg, keylen, "interpreter");
    const char *const *words = is_interp ? interp_words : on_error_words;
    int *field = is_interp ? &o->interpreter : &o->on_error;
    int *has = is_interp ? &o->has_interpreter : &o->has_on_error;
    int found = word_equals(val, words[0]) ? 0 : word_equals(val, words[1]) ? 1
                                                                          : -1;
    free(val);
    if (found < 0) {
      show(k, sizeof k, seg, keylen);
      show(v, sizeof v, raw, rawlen);
      set_error(err, errlen, "%s=%s is not allowed (allowed values: %s, %s)",
                k, v, words[0], words[1]);
      return -1;
    }
    *field = found; /* the enums count in the order of the words */
    *has = 1;
  }
  return 0;

nomem:
  set_error(err, errlen, "out of memory while parsing plugin options");
  return -1;
}

int bd_options_parse(const char *text, bd_options *out, char *err,
                     size_t errlen) {
  bd_options o;
  strbuf rest = {NULL, 0, 0};
  const char *colon, *p;

  if (err != NULL && errlen > 0) err[0] = '\0';
  if (out == NULL) {
    set_error(err, errlen, "no place to store the parsed plugin options");
    return -1;
  }
  memset(out, 0, sizeof *out);
  memset(&o, 0, sizeof o);
  if (text == NULL) {
    set_error(err, errlen, "no plugin options string");
    return -1;
  }

  colon = strchr(text, ':');
  if (colon == NULL) {
    char t[SHOW_MAX + 4];
    show(t, sizeof t, text, strlen(text));
    set_error(err, errlen, "missing ':' after plugin name in \"%s\"", t);
    return -1;
  }
  if (colon == text) {
    char t[SHOW_MAX + 4];
    show(t, sizeof t, text, strlen(text));
    set_error(err, errlen, "empty plugin name before ':' in \"%s\"", t);
    return -1;
  }
  o.plugin = copy_n(text, (size_t)(colon - text));
  if (o.plugin == NULL || sb_append(&rest, "", 0) != 0) goto nomem;

  p = colon + 1;
  while (*p != '\0') {
    const char *end = segment_end(p, p[-1]);
    if (end > p &&
        take_segment(&o, &rest, p, (size_t)(end - p), err, errlen) != 0) {
      free(rest.buf);
      bd_options_free(&o);
      return -1;
    }
    p = (*end == ':') ? end + 1 : end;
  }

  o.rest = rest.buf;
  *out = o;
  return 0;

nomem:
  free(rest.buf);
  bd_options_free(&o);
  set_error(err, errlen, "out of memory while parsing plugin options");
  return -1;
}

/* The one definition of a secret key, for the host's debug lines and (through
 * bareosdir._bareosdir) the bundled base class: a key containing any of
 * these, in any case. */
static const char *const secret_words[] = {
    "password", "passwd", "pass", "pwd", "secret",
    "token", "key", "credential", "auth", NULL};

const char *const *bd_options_secret_words(void) { return secret_words; }

int bd_options_key_is_secret(const char *key, size_t len) {
  size_t w, i;
  if (key == NULL) return 0;
  for (w = 0; secret_words[w] != NULL; w++) {
    size_t wl = strlen(secret_words[w]);
    for (i = 0; i + wl <= len; i++) {
      if (key_equals(key + i, wl, secret_words[w])) return 1;
    }
  }
  return 0;
}

/*
 * Every segment is looked at, the first one too (a plugin name never holds
 * '='), so a string handed in without its "python:" prefix is masked as
 * well.  Segments follow the parser's rules -- the first ends at the first
 * ':', escaped or not, the others at an unescaped ':' -- so a masked value
 * is exactly a value the parser would see.
 */
char *bd_options_mask_secrets(const char *text) {
  strbuf sb = {NULL, 0, 0};
  const char *p;
  int first = 1;

  if (text == NULL) text = "";
  if (sb_append(&sb, "", 0) != 0) return NULL;
  p = text;
  for (;;) {
    const char *end = first ? p + strcspn(p, ":") : segment_end(p, p[-1]);
    size_t seglen = (size_t)(end - p);
    const char *eq = memchr(p, '=', seglen);
    if (eq != NULL && bd_options_key_is_secret(p, (size_t)(eq - p))) {
      if (sb_append(&sb, p, (size_t)(eq - p) + 1) != 0 ||
          sb_append(&sb, "****", 4) != 0)
        goto nomem;
    } else if (sb_append(&sb, p, seglen) != 0) {
      goto nomem;
    }
    if (*end == '\0') break;
    if (sb_append(&sb, ":", 1) != 0) goto nomem;
    first = 0;
    p = end + 1;
  }
  return sb.buf;

nomem:
  free(sb.buf);
  return NULL;
}
