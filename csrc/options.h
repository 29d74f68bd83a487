/*
 * The `Dir Plugin Options` parser: splits "python:key=value:..." into the
 * keys the host consumes and the remainder handed to the Python plugin.
 * Plain C with no Python, so it can be unit-tested and fuzzed on its own.
 */
#ifndef BAREOSDIR_OPTIONS_H
#define BAREOSDIR_OPTIONS_H

#include <stddef.h>

enum bd_interp_mode { BD_INTERP_ISOLATED = 0, BD_INTERP_MAIN = 1 };
enum bd_on_error { BD_ON_ERROR_FATAL = 0, BD_ON_ERROR_WARNING = 1 };

typedef struct bd_options {
  char *plugin;      /* text before the first ':' */
  int instance;      /* 0..127; 0 when not given */
  int has_instance;
  char *module_path; /* NULL when not given; backslashes removed */
  char *module_name; /* NULL when not given; backslashes removed */
  int interpreter;   /* enum bd_interp_mode */
  int has_interpreter;
  int on_error;      /* enum bd_on_error */
  int has_on_error;
  char *rest;        /* unconsumed "k1=v1:k2=v2:" ("" when none) */
} bd_options;

/*
 * Parses `text`.  Returns 0 and fills `out` (release with bd_options_free),
 * or -1 with a one-line reason in `err` (always NUL-terminated) and `out`
 * left empty.  Never reads past the terminating NUL.
 */
int bd_options_parse(const char *text, bd_options *out, char *err,
                     size_t errlen);
void bd_options_free(bd_options *opts);

/*
 * Copies `text` to a new malloc'd string with the values of secret keys
 * (bd_options_key_is_secret) replaced by "****".  For debug output.  NULL
 * only on ENOMEM.
 */
char *bd_options_mask_secrets(const char *text);

/* 1 when `key` (not NUL-terminated, `len` bytes) names a secret: it
 * contains, in any case, one of bd_options_secret_words() (password,
 * passwd, pass, pwd, secret, token, key, credential, auth). */
int bd_options_key_is_secret(const char *key, size_t len);

/* Those words, NULL-terminated. */
const char *const *bd_options_secret_words(void);

#endif
