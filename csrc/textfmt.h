/*
 * Bounded text formatting: the one way C code of this project (extension,
 * shim, simulator, director model, benchmark, C tests) builds a formatted
 * text.  Every function here writes at most the space it is given, always
 * terminates, and returns the length it really wrote, never the length the
 * text would have had: a caller cannot pass on bytes past its buffer, and
 * nobody computes a buffer size for sprintf by hand.  A text cut short ends
 * in "..." so a reader sees that it was cut.
 *
 * No Python here (the simulator and the director model use it too); all
 * functions are static inline, so each component gets its own copy and
 * nothing is exported.
 */
#ifndef BAREOSDIR_TEXTFMT_H
#define BAREOSDIR_TEXTFMT_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define BD_FMT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BD_FMT_PRINTF(f, a)
#endif

/* The longest text the host ever builds in one piece (a job message with a
 * traceback, an options line): anything longer is cut, marked with "...". */
#define BD_TEXT_MAX ((size_t)64 * 1024)

#define BD_TEXT_CUT "..."

/*
 * The one vsnprintf of the project.  Kept out of line and opaque to gcc's
 * interprocedural passes: a cut is expected and handled by the callers
 * below, and -Wformat-truncation=2 (which any other snprintf would have to
 * satisfy) would otherwise see constant formats through inlining and warn.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define BD_FMT_OPAQUE __attribute__((noipa, unused))
#elif defined(__clang__)
#define BD_FMT_OPAQUE __attribute__((noinline, unused))
#else
#define BD_FMT_OPAQUE
#endif

BD_FMT_PRINTF(3, 0) BD_FMT_OPAQUE
static int bd_fmt_raw(char *buf, size_t size, const char *fmt, va_list ap) {
  return vsnprintf(buf, size, fmt, ap);
}

/* Ends a text that filled buf[size] and was cut with "...", never in the
 * middle of a UTF-8 sequence; returns its new length. */
static inline size_t bd_fmt_mark_cut(char *buf, size_t size) {
  size_t m = sizeof BD_TEXT_CUT - 1;
  if (size <= m + 1) return size - 1;
  size_t p = size - 1 - m;
  while (p > 0 && ((unsigned char)buf[p] & 0xC0) == 0x80) p--;
  memcpy(buf + p, BD_TEXT_CUT, m + 1);
  return p + m;
}

/*
 * Formats into buf[size] at offset *len (0 for a fresh text), always
 * NUL-terminated; *len becomes the length of what is in buf now.  Returns 0
 * when the whole text fit, -1 when it was cut (then it ends in "...") or
 * could not be formatted (nothing added).  size 0 or a
 * NULL buf writes nothing.
 */
BD_FMT_PRINTF(4, 0)
static inline int bd_vfmt_at(char *buf, size_t size, size_t *len,
                             const char *fmt, va_list ap) {
  if (buf == NULL || size == 0) return -1;
  size_t at = *len < size ? *len : size - 1;
  int n = bd_fmt_raw(buf + at, size - at, fmt, ap);
  if (n < 0) {
    buf[at] = '\0';
    *len = at;
    return -1;
  }
  if ((size_t)n >= size - at) {
    *len = bd_fmt_mark_cut(buf, size);
    return -1;
  }
  *len = at + (size_t)n;
  return 0;
}

BD_FMT_PRINTF(4, 5)
static inline int bd_fmt_at(char *buf, size_t size, size_t *len,
                            const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = bd_vfmt_at(buf, size, len, fmt, ap);
  va_end(ap);
  return rc;
}

/* Formats into buf[size] from the start; returns the length written
 * (< size).  For texts where a cut is acceptable (messages). */
BD_FMT_PRINTF(3, 0)
static inline size_t bd_vfmt(char *buf, size_t size, const char *fmt,
                             va_list ap) {
  size_t len = 0;
  bd_vfmt_at(buf, size, &len, fmt, ap);
  return len;
}

BD_FMT_PRINTF(3, 4)
static inline size_t bd_fmt(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t len = bd_vfmt(buf, size, fmt, ap);
  va_end(ap);
  return len;
}

/* Like bd_fmt, for texts that are useless when cut (file paths): returns 0
 * when the whole text fit, -1 otherwise. */
BD_FMT_PRINTF(3, 4)
static inline int bd_fmt_whole(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  size_t len = 0;
  va_start(ap, fmt);
  int rc = bd_vfmt_at(buf, size, &len, fmt, ap);
  va_end(ap);
  return rc;
}

/*
 * A malloc'd text of at most `max` bytes (plus the NUL; 0 means
 * BD_TEXT_MAX), sized to what it holds; *lenp (may be NULL) gets its
 * length.  Cut with "..." past max.  NULL only when memory is short.
 */
BD_FMT_PRINTF(3, 0)
static inline char *bd_vafmt(size_t max, size_t *lenp, const char *fmt,
                             va_list ap) {
  if (max == 0) max = BD_TEXT_MAX;
  va_list aq;
  va_copy(aq, ap);
  int n = bd_fmt_raw(NULL, 0, fmt, aq);
  va_end(aq);
  size_t want = n < 0 ? 0 : (size_t)n;
  size_t size = (want < max ? want : max) + 1;
  char *s = malloc(size);
  if (s == NULL) return NULL;
  size_t len = 0;
  if (n < 0) {
    s[0] = '\0';
  } else {
    bd_vfmt_at(s, size, &len, fmt, ap);
  }
  if (lenp != NULL) *lenp = len;
  return s;
}

BD_FMT_PRINTF(3, 4)
static inline char *bd_afmt(size_t max, size_t *lenp, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = bd_vafmt(max, lenp, fmt, ap);
  va_end(ap);
  return s;
}

#endif
