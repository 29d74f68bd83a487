/*
 * Tests of the bounded formatting helper (csrc/textfmt.h): whatever the
 * lengths, nothing is written past the buffer, the text is terminated, and
 * the length returned is the length written, at every size around the
 * text's own length.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "textfmt.h"

#define GUARD 0x5a

/* buf[size] followed by guard bytes that must stay untouched. */
static int guards_ok(const unsigned char *g, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (g[i] != GUARD) return 0;
  return 1;
}

static void test_every_size(void) {
  char name[700];
  for (size_t nlen = 0; nlen < sizeof name - 1; nlen += 37) {
    memset(name, 'm', nlen);
    name[nlen] = '\0';
    size_t whole = strlen("module '' left") + nlen;
    for (size_t size = 1; size <= whole + 8; size++) {
      unsigned char *mem = malloc(size + 16);
      if (mem == NULL) continue;
      memset(mem, GUARD, size + 16);
      size_t len = bd_fmt((char *)mem, size, "module '%s' left", name);
      CHECK(len < size);
      CHECK(strlen((char *)mem) == len);
      CHECK(guards_ok(mem + size, 16));
      if (size > whole) {
        CHECK(len == whole);
      } else if (size > 4) {
        CHECK(len >= size - 4 && memcmp(mem + len - 3, "...", 3) == 0);
      }
      memset(mem, GUARD, size + 16);
      int rc = bd_fmt_whole((char *)mem, size, "module '%s' left", name);
      CHECK(rc == (size > whole ? 0 : -1));
      CHECK(guards_ok(mem + size, 16));
      free(mem);
    }
  }
}

static void test_append(void) {
  char buf[16];
  size_t len = 0;
  CHECK(bd_fmt_at(buf, sizeof buf, &len, "%s", "abc") == 0 && len == 3);
  CHECK(bd_fmt_at(buf, sizeof buf, &len, "%d", 12345) == 0 && len == 8);
  CHECK_STR(buf, "abc12345");
  CHECK(bd_fmt_at(buf, sizeof buf, &len, "%s", "0123456789") == -1);
  CHECK(len == strlen(buf) && len < sizeof buf);
  CHECK(memcmp(buf + len - 3, "...", 3) == 0);
  /* full: appending more changes nothing and stays in bounds */
  size_t before = len;
  CHECK(bd_fmt_at(buf, sizeof buf, &len, "%s", "more") == -1);
  CHECK(len <= before + 1 && len < sizeof buf && strlen(buf) == len);
  /* a length past the end is clamped, not trusted */
  len = 1000;
  bd_fmt_at(buf, sizeof buf, &len, "x");
  CHECK(len < sizeof buf && strlen(buf) == len);
  /* nothing at all for a zero size */
  len = 0;
  CHECK(bd_fmt_at(buf, 0, &len, "x") == -1 && len == 0);
  CHECK(bd_fmt(NULL, 0, "x") == 0);
}

static void test_utf8_cut(void) {
  /* "é" is two bytes: a cut never leaves half of it before the dots. */
  char buf[10];
  size_t len = bd_fmt(buf, sizeof buf, "%s", "aaaa\xc3\xa9\xc3\xa9\xc3\xa9");
  CHECK(len < sizeof buf && strlen(buf) == len);
  CHECK(memcmp(buf + len - 3, "...", 3) == 0);
  for (size_t i = 0; i + 3 < len; i++)
    if ((unsigned char)buf[i] == 0xc3)
      CHECK(i + 1 < len - 3 && (unsigned char)buf[i + 1] == 0xa9);
}

static void test_alloc(void) {
  size_t len = 0;
  char *s = bd_afmt(0, &len, "%s-%d", "abc", 7);
  CHECK(s != NULL && len == 5 && contains(s, "-7"));
  CHECK_STR(s, "abc-7");
  free(s);
  char big[3000];
  memset(big, 'b', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  s = bd_afmt(100, &len, "<%s>", big);
  CHECK(s != NULL && len <= 100 && strlen(s) == len);
  CHECK(s != NULL && memcmp(s + len - 3, "...", 3) == 0);
  free(s);
  s = bd_afmt(0, &len, "<%s>", big);
  CHECK(s != NULL && len == sizeof big + 1);
  free(s);
  /* the default bound */
  char *huge = malloc(BD_TEXT_MAX + 100);
  if (huge != NULL) {
    memset(huge, 'h', BD_TEXT_MAX + 99);
    huge[BD_TEXT_MAX + 99] = '\0';
    s = bd_afmt(0, &len, "%s", huge);
    CHECK(s != NULL && len <= BD_TEXT_MAX && strlen(s) == len);
    free(s);
    free(huge);
  }
}

int main(void) {
  test_every_size();
  test_append();
  test_utf8_cut();
  test_alloc();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
