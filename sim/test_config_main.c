/*
 * bareosdir-config-dump: the test driver of the configuration reader.  It
 * loads a configuration (or parses standard input as a buffer) and prints
 * what the simulator would see, one JSON array per line, for the pytest
 * tests (tests/test_sim_config.py).  Not installed.
 *
 *   bareosdir-config-dump [--find NAME]... [--level TEXT]... CONFIG
 *   bareosdir-config-dump --stdin [--name NAME] [--no-include] [--find ...]
 *
 * Exit status 0 when the configuration reads, 1 with ["error", text].
 */
#include "config.h"
#include "textfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_str(const char *s)
{
  if (!s) {
    fputs("null", stdout);
    return;
  }
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

/* The first three fields of a line: [a, b, key */
static void line_head(const char *a, const char *b, const char *key)
{
  printf("[");
  json_str(a);
  printf(", ");
  json_str(b);
  printf(", ");
  json_str(key);
}

static void line_str(const char *a, const char *b, const char *key,
                     const char *val)
{
  line_head(a, b, key);
  printf(", ");
  json_str(val);
  printf("]\n");
}

static void line_int(const char *a, const char *b, const char *key, long v)
{
  line_head(a, b, key);
  printf(", %ld]\n", v);
}

static void line_list(const char *a, const char *b, const char *key,
                      char *const *v, size_t n)
{
  line_head(a, b, key);
  printf(", [");
  for (size_t i = 0; i < n; i++) {
    if (i) printf(", ");
    json_str(v[i]);
  }
  printf("]]\n");
}

static void dump_job(const char *kind, const bd_config_job *j)
{
  char code[2] = {0, 0};
  char where[4096];

  bd_fmt(where, sizeof where, "%s:%d", j->file, j->line);
  line_str(kind, j->name, "defined_at", where);
  if (j->jobdefs) line_str(kind, j->name, "jobdefs", j->jobdefs);
  if (j->type) {
    code[0] = (char)j->type;
    line_str(kind, j->name, "type", code);
    line_str(kind, j->name, "type_name", j->type_name);
  }
  if (j->level) {
    code[0] = (char)j->level;
    line_str(kind, j->name, "level", code);
    line_str(kind, j->name, "level_name", j->level_name);
  }
  if (j->client) line_str(kind, j->name, "client", j->client);
  if (j->pool) line_str(kind, j->name, "pool", j->pool);
  if (j->storage) line_str(kind, j->name, "storage", j->storage);
  if (j->has_priority) line_int(kind, j->name, "priority", j->priority);
  if (j->has_plugin_options)
    line_list(kind, j->name, "plugin_options", j->plugin_options,
              j->plugin_options_count);
}

static char *read_all(FILE *f, size_t *len)
{
  size_t cap = 4096, n = 0, got;
  char *buf = malloc(cap);

  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        return NULL;
      }
      buf = nb;
      cap *= 2;
    }
  }
  *len = n;
  return buf;
}

int main(int argc, char **argv)
{
  const char *path = NULL, *name = "<stdin>";
  const char *finds[64], *levels[64];
  size_t nfinds = 0, nlevels = 0;
  int use_stdin = 0, flags = 0;
  char err[1024];
  bd_config *cfg;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--find") == 0 && i + 1 < argc && nfinds < 64) {
      finds[nfinds++] = argv[++i];
    } else if (strcmp(argv[i], "--level") == 0 && i + 1 < argc &&
               nlevels < 64) {
      levels[nlevels++] = argv[++i];
    } else if (strcmp(argv[i], "--stdin") == 0) {
      use_stdin = 1;
    } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
      name = argv[++i];
    } else if (strcmp(argv[i], "--no-include") == 0) {
      flags |= BD_CONFIG_NO_INCLUDE;
    } else if (argv[i][0] != '-' && !path) {
      path = argv[i];
    } else {
      fprintf(stderr,
              "usage: %s [--find NAME]... [--level TEXT]... CONFIG\n"
              "       %s --stdin [--name NAME] [--no-include] [--find NAME]...\n",
              argv[0], argv[0]);
      return 2;
    }
  }
  if (!use_stdin && !path) {
    fprintf(stderr, "%s: no CONFIG given\n", argv[0]);
    return 2;
  }

  if (use_stdin) {
    size_t len;
    char *data = read_all(stdin, &len);
    if (!data) {
      fprintf(stderr, "%s: cannot read standard input\n", argv[0]);
      return 2;
    }
    cfg = bd_config_parse_buffer(name, data, len, flags, err, sizeof err);
    free(data);
  } else {
    cfg = bd_config_load(path, err, sizeof err);
  }

  for (size_t i = 0; i < nlevels; i++) {
    char code[2] = {(char)bd_config_level_code(levels[i]), 0};
    printf("[\"level_code\", ");
    json_str(levels[i]);
    printf(", ");
    json_str(code);
    printf("]\n");
  }
  if (!cfg) {
    printf("[\"error\", ");
    json_str(err);
    printf("]\n");
    return 1;
  }
  for (size_t i = 0; i < cfg->warnings_count; i++) {
    printf("[\"warning\", ");
    json_str(cfg->warnings[i]);
    printf("]\n");
  }
  if (cfg->has_director) {
    char where[4096];
    bd_fmt(where, sizeof where, "%s:%d", cfg->director_file,
             cfg->director_line);
    line_str("director", cfg->director_name, "defined_at", where);
    if (cfg->plugin_dir)
      line_str("director", cfg->director_name, "plugin_directory",
               cfg->plugin_dir);
    if (cfg->has_plugin_names)
      line_list("director", cfg->director_name, "plugin_names",
                cfg->plugin_names, cfg->plugin_names_count);
  }
  for (size_t i = 0; i < cfg->jobdefs_count; i++)
    dump_job("jobdefs", &cfg->jobdefs[i]);
  for (size_t i = 0; i < cfg->jobs_count; i++) dump_job("job", &cfg->jobs[i]);
  for (size_t i = 0; i < nfinds; i++) {
    const bd_config_job *j = bd_config_find_job(cfg, finds[i]);
    printf("[\"find\", ");
    json_str(finds[i]);
    printf(", ");
    json_str(j ? j->name : NULL);
    printf("]\n");
  }
  bd_config_free(cfg);
  return 0;
}
