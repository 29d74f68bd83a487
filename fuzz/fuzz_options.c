/*
 * libFuzzer target for the `Dir Plugin Options` parser and the secret
 * masking (csrc/options.c).  Besides crashes and sanitizer reports it checks
 * what callers rely on: a parse either fills every field or leaves `out`
 * empty with a one-line error; masking keeps the parse result and leaves no
 * secret value in the rest the plugin would see.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#define REQUIRE(cond)     \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

/* Every key=value of `rest` whose key is secret has the value "****". */
static void require_rest_masked(const char *rest) {
  const char *p = rest;
  char prev = ':';
  while (*p != '\0') {
    const char *end = p;
    const char *eq;
    while (*end != '\0' && !(*end == ':' && prev != '\\')) prev = *end++;
    eq = memchr(p, '=', (size_t)(end - p));
    if (eq != NULL && bd_options_key_is_secret(p, (size_t)(eq - p))) {
      REQUIRE((size_t)(end - eq - 1) == 4 && memcmp(eq + 1, "****", 4) == 0);
    }
    if (*end == '\0') break;
    prev = ':';
    p = end + 1;
  }
}

static int same(const char *a, const char *b) {
  if (a == NULL || b == NULL) return a == b;
  return strcmp(a, b) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  char err[128], err2[128];
  bd_options o, m;
  char *masked;
  int rc, rc2;

  if (text == NULL) return 0;
  memcpy(text, data, size);
  text[size] = '\0'; /* embedded NULs just end the string early */

  rc = bd_options_parse(text, &o, err, sizeof err);
  if (rc == 0) {
    size_t rl;
    REQUIRE(o.plugin != NULL && o.plugin[0] != '\0');
    REQUIRE(strchr(o.plugin, ':') == NULL);
    REQUIRE(o.rest != NULL);
    rl = strlen(o.rest);
    REQUIRE(rl == 0 || o.rest[rl - 1] == ':');
    REQUIRE(rl <= strlen(text) + 1);
    REQUIRE(o.instance >= 0 && o.instance <= 127);
    REQUIRE(o.has_instance || o.instance == 0);
    REQUIRE(o.interpreter == BD_INTERP_ISOLATED ||
            o.interpreter == BD_INTERP_MAIN);
    REQUIRE(o.on_error == BD_ON_ERROR_FATAL ||
            o.on_error == BD_ON_ERROR_WARNING);
    REQUIRE(o.module_name == NULL || strchr(o.module_name, '\\') == NULL);
    REQUIRE(o.module_path == NULL || strchr(o.module_path, '\\') == NULL);
  } else {
    REQUIRE(rc == -1);
    REQUIRE(memchr(err, '\0', sizeof err) != NULL);
    REQUIRE(err[0] != '\0' && strchr(err, '\n') == NULL);
    REQUIRE(o.plugin == NULL && o.rest == NULL && o.module_name == NULL &&
            o.module_path == NULL);
  }

  masked = bd_options_mask_secrets(text);
  REQUIRE(masked != NULL);
  {
    /* masking is idempotent */
    char *twice = bd_options_mask_secrets(masked);
    REQUIRE(twice != NULL && strcmp(twice, masked) == 0);
    free(twice);
  }
  /* the consumed keys are never secret, so masking changes no outcome */
  rc2 = bd_options_parse(masked, &m, err2, sizeof err2);
  REQUIRE(rc2 == rc);
  if (rc == 0) {
    /* (a "plugin name" holding a secret-looking key=value is masked too) */
    REQUIRE(strchr(o.plugin, '=') != NULL || same(o.plugin, m.plugin));
    REQUIRE(same(o.module_name, m.module_name) &&
            same(o.module_path, m.module_path) && o.instance == m.instance &&
            o.interpreter == m.interpreter && o.on_error == m.on_error);
    require_rest_masked(m.rest);
    bd_options_free(&m);
    bd_options_free(&o);
  }

  /* bounds: any error buffer size, including none */
  rc2 = bd_options_parse(text, &m, err2, (size_t)(size % 5));
  REQUIRE(rc2 == rc);
  if (rc2 == 0) bd_options_free(&m);

  (void)bd_options_key_is_secret(text, strlen(text));
  free(masked);
  free(text);
  return 0;
}
