/*
 * libFuzzer target for the simulator's configuration reader (sim/config.c),
 * fed through bd_config_parse_buffer with includes off.  Besides crashes
 * and sanitizer reports it checks what the simulator relies on: an error is
 * one line "fuzz.conf:N: ..."; a success holds only named Jobs that lookup
 * finds again, with their JobDefs resolved and their codes set.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define REQUIRE(cond)     \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

static void check_job(const bd_config *cfg, const bd_config_job *j,
                      int is_job)
{
  const bd_config_job *found;

  REQUIRE(j->name != NULL && j->file != NULL && j->line >= 1);
  found = is_job ? bd_config_find_job(cfg, j->name)
                 : bd_config_find_jobdefs(cfg, j->name);
  REQUIRE(found != NULL && strcmp(found->name, j->name) == 0);
  REQUIRE((j->type_name == NULL) == (j->type == 0));
  REQUIRE((j->level_name == NULL) == (j->level == 0));
  if (j->type_name) REQUIRE(bd_config_type_code(j->type_name) == j->type);
  if (j->jobdefs) REQUIRE(bd_config_find_jobdefs(cfg, j->jobdefs) != NULL);
  REQUIRE(j->has_plugin_options || j->plugin_options_count == 0);
  for (size_t i = 0; i < j->plugin_options_count; i++)
    REQUIRE(j->plugin_options[i] != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char err[512];
  bd_config *cfg = bd_config_parse_buffer("fuzz.conf", (const char *)data,
                                          size, BD_CONFIG_NO_INCLUDE, err,
                                          sizeof err);

  if (!cfg) {
    REQUIRE(err[0] != '\0');
    REQUIRE(strchr(err, '\n') == NULL);
    REQUIRE(strncmp(err, "fuzz.conf:", 10) == 0 ||
            strcmp(err, "out of memory") == 0);
    return 0;
  }
  REQUIRE(!cfg->has_director || cfg->director_name != NULL);
  for (size_t i = 0; i < cfg->plugin_names_count; i++)
    REQUIRE(cfg->plugin_names[i] != NULL);
  for (size_t i = 0; i < cfg->jobs_count; i++) check_job(cfg, &cfg->jobs[i], 1);
  for (size_t i = 0; i < cfg->jobdefs_count; i++)
    check_job(cfg, &cfg->jobdefs[i], 0);
  for (size_t i = 0; i < cfg->warnings_count; i++)
    REQUIRE(strchr(cfg->warnings[i], '\n') == NULL);
  bd_config_free(cfg);
  return 0;
}
