/*
 * Tests of the `Dir Plugin Options` parser and the secret masking
 * (csrc/options.c): consumed keys, the pass-through rest, escapes, every
 * error, and that nothing is truncated or read past the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "options.h"

/* Parses `text` expecting success. */
/* Parses `text` expecting success; a rejection is a counted failure (the
 * checks of the parsed result that follow are then skipped). */
static int parse_ok_at(const char *text, bd_options *o, int line) {
  char err[256];
  int rc = bd_options_parse(text, o, err, sizeof err);
  if (rc != 0) {
    failed++;
    fprintf(stderr, "%s:%d: parse of \"%s\" failed: %s\n", __FILE__, line,
            text, err);
  }
  return rc == 0;
}
#define parse_ok(text, o) parse_ok_at((text), (o), __LINE__)

/* Parses `text` expecting failure; checks that out is empty and the message
 * is one line and mentions `needle`. */
static void expect_error(const char *text, const char *needle, int line) {
  bd_options o;
  char err[256];
  memset(&o, 0x5a, sizeof o);
  if (bd_options_parse(text, &o, err, sizeof err) == 0) {
    failed++;
    fprintf(stderr, "%s:%d: \"%s\" parsed, expected an error with \"%s\"\n",
            __FILE__, line, text, needle);
    bd_options_free(&o);
    return;
  }
  if (!contains(err, needle) || strchr(err, '\n') != NULL) {
    failed++;
    fprintf(stderr, "%s:%d: error for \"%s\" is \"%s\", expected \"%s\"\n",
            __FILE__, line, text, err, needle);
    return;
  }
  if (o.plugin != NULL || o.rest != NULL || o.module_name != NULL ||
      o.module_path != NULL || o.instance != 0) {
    failed++;
    fprintf(stderr, "%s:%d: out not left empty after an error\n", __FILE__,
            line);
    return;
  }
  passed++;
}
#define EXPECT_ERROR(text, needle) expect_error(text, needle, __LINE__)

static void test_basic(void) {
  bd_options o;
  if (!parse_ok("python:instance=0:module_path=/usr/lib/bareos/plugins:"
                "module_name=bareos-dir-class-plugins:testoption=testparam1",
                &o)) {
    failed++;
    return;
  }
  CHECK_STR(o.plugin, "python");
  CHECK(o.instance == 0 && o.has_instance);
  CHECK_STR(o.module_path, "/usr/lib/bareos/plugins");
  CHECK_STR(o.module_name, "bareos-dir-class-plugins");
  CHECK_STR(o.rest, "testoption=testparam1:");
  CHECK(!o.has_interpreter && o.interpreter == BD_INTERP_ISOLATED);
  CHECK(!o.has_on_error && o.on_error == BD_ON_ERROR_FATAL);
  bd_options_free(&o);
  CHECK(o.plugin == NULL && o.rest == NULL);
  bd_options_free(&o); /* twice is harmless */
  bd_options_free(NULL);
}

static void test_rest(void) {
  bd_options o;
  if (parse_ok("python3:module_name=x", &o)) {
    CHECK_STR(o.rest, "");
    CHECK(!o.has_instance && o.instance == 0);
    CHECK(o.module_path == NULL);
    bd_options_free(&o);
  }
  if (parse_ok("python:", &o)) {
    CHECK_STR(o.plugin, "python");
    CHECK_STR(o.rest, "");
    CHECK(o.module_name == NULL);
    bd_options_free(&o);
  }
  if (parse_ok("python:a=1:module_name=m:b=2", &o)) {
    CHECK_STR(o.rest, "a=1:b=2:");
    bd_options_free(&o);
  }
  /* empty segments are skipped, trailing ':' too */
  if (parse_ok("python::a=b::c=d:::", &o)) {
    CHECK_STR(o.rest, "a=b:c=d:");
    bd_options_free(&o);
  }
  /* a value may hold '=' */
  if (parse_ok("python:k=a=b:e=", &o)) {
    CHECK_STR(o.rest, "k=a=b:e=:");
    bd_options_free(&o);
  }
  /* keys kept as written in rest */
  if (parse_ok("python:MyKey=Val:UPPER=X", &o)) {
    CHECK_STR(o.rest, "MyKey=Val:UPPER=X:");
    bd_options_free(&o);
  }
}

static void test_case_and_repeats(void) {
  bd_options o;
  if (parse_ok("PYTHON:Module_Name=one:MODULE_PATH=/p:Instance=5:"
               "module_name=two:INTERPRETER=Main:On_Error=WARNING",
               &o)) {
    CHECK_STR(o.plugin, "PYTHON");
    CHECK_STR(o.module_name, "two"); /* the last one wins */
    CHECK_STR(o.module_path, "/p");
    CHECK(o.instance == 5 && o.has_instance);
    CHECK(o.interpreter == BD_INTERP_MAIN && o.has_interpreter);
    CHECK(o.on_error == BD_ON_ERROR_WARNING && o.has_on_error);
    CHECK_STR(o.rest, "");
    bd_options_free(&o);
  }
  if (parse_ok("python:interpreter=isolated:on_error=fatal", &o)) {
    CHECK(o.interpreter == BD_INTERP_ISOLATED && o.has_interpreter);
    CHECK(o.on_error == BD_ON_ERROR_FATAL && o.has_on_error);
    bd_options_free(&o);
  }
}

static void test_escapes(void) {
  bd_options o;
  /* an escaped ':' does not separate; backslashes leave consumed values but
   * stay in the rest */
  if (parse_ok("python:module_path=C\\:/dir\\:x:k=v\\:w:module_name=a\\b",
               &o)) {
    CHECK_STR(o.module_path, "C:/dir:x");
    CHECK_STR(o.module_name, "ab");
    CHECK_STR(o.rest, "k=v\\:w:");
    bd_options_free(&o);
  }
  /* a trailing backslash is kept in the rest, never read past */
  if (parse_ok("python:k=v\\", &o)) {
    CHECK_STR(o.rest, "k=v\\:");
    bd_options_free(&o);
  }
  if (parse_ok("python:module_name=\\", &o)) {
    CHECK_STR(o.module_name, "");
    bd_options_free(&o);
  }
  if (parse_ok("python:instance=1\\2", &o)) {
    CHECK(o.instance == 12);
    bd_options_free(&o);
  }
}

static void test_instance(void) {
  bd_options o;
  if (parse_ok("python:instance=127", &o)) {
    CHECK(o.instance == 127);
    bd_options_free(&o);
  }
  if (parse_ok("python:instance=007", &o)) {
    CHECK(o.instance == 7);
    bd_options_free(&o);
  }
  EXPECT_ERROR("python:instance=abc", "instance=abc is not a number");
  EXPECT_ERROR("python:instance=200", "instance=200 is above 127");
  EXPECT_ERROR("python:instance=128", "instance=128 is above 127");
  EXPECT_ERROR("python:instance=99999999999999999999999999", "is above 127");
  EXPECT_ERROR("python:instance=", "instance= is not a number");
  EXPECT_ERROR("python:instance=-1", "instance=-1");
  EXPECT_ERROR("python:instance= 1", "not a number");
  EXPECT_ERROR("python:instance=0x10", "instance=0x10 is not a number");
  EXPECT_ERROR("python:INSTANCE=1a", "INSTANCE=1a is not a number");
}

static void test_errors(void) {
  char err[256];
  bd_options o;
  EXPECT_ERROR("python", "missing ':' after plugin name");
  EXPECT_ERROR("", "missing ':' after plugin name");
  EXPECT_ERROR(":module_name=x", "empty plugin name");
  EXPECT_ERROR("python:foo", "\"foo\"");
  EXPECT_ERROR("python:a=b:noequals:c=d", "noequals");
  EXPECT_ERROR("python:=x", "empty key");
  EXPECT_ERROR("python:=x", "=x");
  EXPECT_ERROR("python:=", "empty key");
  EXPECT_ERROR("python:interpreter=foo", "interpreter=foo");
  EXPECT_ERROR("python:interpreter=foo", "isolated, main");
  EXPECT_ERROR("python:interpreter=", "interpreter=");
  EXPECT_ERROR("python:on_error=ignore", "on_error=ignore");
  EXPECT_ERROR("python:on_error=ignore", "fatal, warning");
  /* user text in errors stays on one line */
  EXPECT_ERROR("python:bad\nkey", "bad?key");

  CHECK(bd_options_parse(NULL, &o, err, sizeof err) == -1 && err[0] != '\0');
  CHECK(bd_options_parse("python:a=b", NULL, err, sizeof err) == -1);
  /* err may be NULL or tiny */
  CHECK(bd_options_parse("python", &o, NULL, 0) == -1);
  memset(err, 'x', sizeof err);
  CHECK(bd_options_parse("python:instance=abc", &o, err, 8) == -1);
  CHECK(memchr(err, '\0', 8) != NULL && err[8] == 'x');
}

static void test_long_input(void) {
  size_t n = 100000, i;
  char *text = malloc(n + 64), *expect = malloc(n + 64);
  bd_options o;
  char err[256];
  CHECK(text != NULL && expect != NULL);
  if (text == NULL || expect == NULL) return;
  memcpy(text, "python:module_name=", 19);
  for (i = 0; i < n; i++) text[19 + i] = (char)('a' + i % 26);
  memcpy(text + 19 + n, ":k=v", sizeof ":k=v");
  CHECK(bd_options_parse(text, &o, err, sizeof err) == 0);
  if (o.module_name != NULL) CHECK(strlen(o.module_name) == n);
  CHECK_STR(o.rest, "k=v:");
  bd_options_free(&o);

  /* a long value in an error: the message stays short and terminated */
  memcpy(text, "python:interpreter=", 19);
  CHECK(bd_options_parse(text, &o, err, sizeof err) == -1);
  CHECK(strlen(err) < 200 && contains(err, "..."));

  /* a long rest is kept whole */
  memcpy(text, "python:x=", 9);
  for (i = 0; i < n; i++) text[9 + i] = 'q';
  text[9 + n] = '\0';
  memcpy(expect, text + 7, n + 2);
  memcpy(expect + n + 2, ":", sizeof ":");
  CHECK(bd_options_parse(text, &o, err, sizeof err) == 0);
  CHECK_STR(o.rest, expect);
  bd_options_free(&o);
  free(text);
  free(expect);
}

static void check_mask(const char *in, const char *want, int line) {
  char *got = bd_options_mask_secrets(in);
  if (got != NULL && strcmp(got, want) == 0) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "%s:%d: mask(\"%s\") = \"%s\", expected \"%s\"\n", __FILE__,
            line, in, got ? got : "(null)", want);
  }
  free(got);
}
#define CHECK_MASK(in, want) check_mask(in, want, __LINE__)

static void test_mask(void) {
  CHECK_MASK("python:module_name=x:password=abc:testoption=1",
             "python:module_name=x:password=****:testoption=1");
  CHECK_MASK("python:apikey=1:api_key=2:ssh_key=3:key=4:KEY=5",
             "python:apikey=****:api_key=****:ssh_key=****:key=****:KEY=****");
  CHECK_MASK("python:Token=t:mySecret=s:DB_PASSWORD=p",
             "python:Token=****:mySecret=****:DB_PASSWORD=****");
  CHECK_MASK("python:monitorHost=h:module_path=/p:instance=1:user=bob",
             "python:monitorHost=h:module_path=/p:instance=1:user=bob");
  /* an escaped ':' belongs to the value */
  CHECK_MASK("python:password=a\\:b:x=y", "python:password=****:x=y");
  /* everything else byte for byte: empty segments, no '=', trailing ':' */
  CHECK_MASK("python::a=b::noeq:secret=:", "python::a=b::noeq:secret=****:");
  CHECK_MASK("", "");
  CHECK_MASK("python", "python");
  CHECK_MASK(":::", ":::");
  /* without the plugin-name prefix */
  CHECK_MASK("password=x", "password=****");
  CHECK_MASK("python:k=v\\", "python:k=v\\");
  /* the plugin name ends at the first ':', escaped or not, as in the parser */
  CHECK_MASK("p=q\\:token=s:x=1", "p=q\\:token=****:x=1");
  CHECK_MASK("py\\:password=s", "py\\:password=****");
  CHECK_MASK("python:token=v\\", "python:token=****");
  {
    char *m = bd_options_mask_secrets(NULL);
    CHECK(m != NULL && m[0] == '\0');
    free(m);
  }

  CHECK(bd_options_key_is_secret("password", 8));
  CHECK(bd_options_key_is_secret("PassWord", 8));
  CHECK(bd_options_key_is_secret("key", 3));
  CHECK(bd_options_key_is_secret("ssh_key", 7));
  CHECK(bd_options_key_is_secret("client_secret", 13));
  CHECK(bd_options_key_is_secret("access_token", 12));
  CHECK(!bd_options_key_is_secret("module_name", 11));
  CHECK(!bd_options_key_is_secret("module_path", 11));
  CHECK(!bd_options_key_is_secret("monitorHost", 11));
  CHECK(!bd_options_key_is_secret("instance", 8));
  CHECK(!bd_options_key_is_secret("ke", 2));
  /* len bounds the key: "keyboard" cut to "ke" is not secret */
  CHECK(!bd_options_key_is_secret("keyboard", 2));
  CHECK(!bd_options_key_is_secret(NULL, 0));
  /* the whole rule: password passwd pass pwd secret token key credential
   * auth, anywhere in the key, any case */
  CHECK(bd_options_key_is_secret("passwd", 6));
  CHECK(bd_options_key_is_secret("pass", 4));
  CHECK(bd_options_key_is_secret("db_PWD", 6));
  CHECK(bd_options_key_is_secret("credentials", 11));
  CHECK(bd_options_key_is_secret("AuthHeader", 10));
  CHECK(!bd_options_key_is_secret("user", 4));
  CHECK(!bd_options_key_is_secret("pas", 3));
  CHECK_MASK("python:passwd=a:pass=b:pwd=c:credentials=d:auth=e:user=f",
             "python:passwd=****:pass=****:pwd=****:credentials=****:"
             "auth=****:user=f");
}

/* parse_ok itself: a wrong rejection must be a counted failure (it was only
 * printed, and "96 passed, 0 failed" followed). */
static void test_parse_ok_counts_rejections(void) {
  bd_options o;
  int before = failed, counted;
  fprintf(stderr, "  (the next parse failure is expected)\n");
  if (parse_ok("no colon here", &o)) bd_options_free(&o);
  counted = failed - before;
  failed = before;
  CHECK(counted == 1);
}

int main(void) {
  test_parse_ok_counts_rejections();
  test_basic();
  test_rest();
  test_case_and_repeats();
  test_escapes();
  test_instance();
  test_errors();
  test_long_input();
  test_mask();
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
