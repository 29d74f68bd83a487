/*
 * unloadPlugin while a job thread is still inside a plugin call, then
 * dlclose, as the Director does at shutdown: the call in progress must
 * finish and return, nothing may crash, and the unload must not wait
 * beyond its bound.  Driven by tests/test_shim_lifecycle.py.
 *
 *   shim_unload_race PLUGIN_DIR OPTIONS FLAG_FILE
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "director_model.h"
#include "textfmt.h"

static dm_job *g_job;
static int g_rc = -1;

static void sink(void *arg, const dm_message *m) {
  (void)arg;
  printf("%s %d JobId %u: %s", m->kind == DM_MSG_JOB ? "job" : "debug",
         m->type, m->jobid, m->text);
  fflush(stdout);
}

static void *job_thread(void *arg) {
  (void)arg;
  g_rc = dm_job_event(g_job, bDirEventJobRun, NULL);
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  char path[4096], err[256];
  if (bd_fmt_whole(path, sizeof path, "%s/python-dir.so", argv[1]) != 0)
    return 2;
  dm_director *dir = dm_director_new("bareos-dir", argv[1]);
  dm_director_set_sink(dir, sink, NULL);
  void *h = dlopen(path, RTLD_LAZY | RTLD_GLOBAL);
  if (h == NULL) return 3;
  bd_loadPlugin_fn load = (bd_loadPlugin_fn)dlsym(h, "loadPlugin");
  bd_unloadPlugin_fn unload = (bd_unloadPlugin_fn)dlsym(h, "unloadPlugin");
  PluginApiDefinition api;
  dm_api_definition(&api);
  PluginInformation *info;
  PluginFunctions *funcs;
  if (load(&api, (CoreFunctions *)dm_core_functions(), &info, &funcs) != bRC_OK)
    return 4;
  if (dm_director_add_plugin(dir, "python", info, funcs, unload, err,
                             sizeof err) < 0)
    return 5;
  g_job = dm_job_new(dir, "BackupClient1", 1);
  dm_job_new_plugins(g_job);
  dm_job_plugin_options(g_job, argv[2]);
  pthread_t t;
  pthread_create(&t, NULL, job_thread, NULL);
  for (int i = 0; i < 3000 && access(argv[3], F_OK) != 0; i++) usleep(1000);
  double t0 = now();
  unload();
  double took = now() - t0;
  dlclose(h);
  printf("unload returned after %.2f s while the job was in the plugin\n",
         took);
  fflush(stdout);
  pthread_join(t, NULL);
  printf("event returned %d\n", g_rc);
  dm_job_free_plugins(g_job);
  dm_job_free(g_job);
  dm_director_free(dir);
  printf("clean exit\n");
  return 0;
}
