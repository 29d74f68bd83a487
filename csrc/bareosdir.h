/*
 * The one project header that includes Python.h: the shared declarations of
 * the extension's parts (module, engine, interpreters, error reporting,
 * mock director).  Each part keeps its functions static and exports only
 * what is declared here, under its prefix (bd_mod_, bd_eng_, bd_ip_,
 * bd_err_, bd_test_).
 */
#ifndef BAREOSDIR_H
#define BAREOSDIR_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030B0000
#error "bareosdir needs Python 3.11 or later"
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "director_abi.h"
#include "options.h"
#include "binding.h"
#include "pyexc.h"
#include "textfmt.h"

#define BD_VERSION "0.1.0" /* keep in step with bareosdir/_version.py */

typedef struct bd_engine bd_engine;
typedef struct bd_interp bd_interp;
typedef struct bd_instance bd_instance;

/*
 * One plugin instance: a PluginContext of one job, holding what the
 * options said and, once loaded, the plugin module in its interpreter.
 */
struct bd_instance {
  PluginContext *ctx;
  const CoreFunctions *core;
  bd_interp *interp;       /* NULL until the module is loaded */
  PyObject *module;        /* the plugin module (in interp), new reference */
  PyObject *capsule;       /* main mode: its marker (bd_eng_marker) */
  PyObject *private_mods;  /* main mode: _isolation.PrivateModules */
  char *module_name;
  char *module_path;
  int interp_mode;         /* enum bd_interp_mode */
  int on_error;            /* enum bd_on_error */
  int loaded;
  int legacy;              /* old-style API: entry points take a context */
  PyObject *legacy_ctx;    /* the context object passed to old plugins */
  atomic_int refs;         /* the Director's, and API calls in flight */
  atomic_int closing;      /* freePlugin has begun */
  uintptr_t handle;        /* what markers carry: slot index + generation */
  int bare;                /* made by bd_eng_bare_instance */
  const char *file_name;   /* the loaded file, without ".so": prefixes
                            * reports (static storage, never freed, never
                            * NULL) */
};

/* module.c */
typedef struct bd_modstate {
  bd_instance *owner;      /* isolated mode: the instance served here */
  PyObject *tsd_key;       /* thread-dict key of the current instance */
  PyObject *marker_key;    /* "__bareosdir_instance__" in module globals */
  PyObject *str_load, *str_parse, *str_handle;
  PyObject *format_exception; /* traceback.format_exception, lazily */
  PyObject *mock_director_type, *mock_job_type;
  PyObject *legacy_ctx_type;
  PyObject *constdict_type;   /* the type of bRCs, bDirVariable, ... */
  PyObject *epoch_key;        /* thread-dict key: the epoch last seen */
  PyObject *epoch;            /* a new object at every reset for reuse */
  int output_pending;         /* a host stream holds text without newline */
  bd_instance *flushing;      /* bd_mod_flush_output in progress for it, */
  PyThreadState *flushing_ts; /* on this thread state */
} bd_modstate;

bd_modstate *bd_mod_state(PyObject *module);
bd_instance *bd_mod_current(PyObject *module, int raise);
/* End of a dispatch or job: the instance's unfinished output lines go out
 * (GIL held, in the instance's interpreter). */
void bd_mod_flush_output(bd_instance *inst);
/* A Director thread entered an isolated interpreter (GIL held). */
void bd_mod_thread_entered(PyObject *api_module);
/* Sends a message for inst (or with a NULL context) obeying our rules on
 * types, newlines and formats.  GIL held or not: never touches Python. */
void bd_mod_job_message(const CoreFunctions *core, PluginContext *ctx,
                        const char *file, int line, int type,
                        const char *text, size_t len);
void bd_mod_debug_message(const CoreFunctions *core, PluginContext *ctx,
                          const char *file, int line, int level,
                          const char *text, size_t len);

/* engine.c */
PyObject *bd_eng_bind(PyObject *module, PyObject *capsule);
int bd_eng_unbind(void);
const bd_plugin_binding *bd_eng_bind_direct(PyObject *module,
                                            const bd_director_binding *b,
                                            char *err, size_t errlen);
/* The PluginFunctions table for the copy of the shim loaded as file_name
 * (without ".so"; NULL or "" for BD_DEFAULT_FILE_NAME): its newPlugin
 * gives every instance that name for its messages. */
PluginFunctions *bd_eng_functions_for(const char *file_name);
bd_instance *bd_eng_bare_instance(const CoreFunctions *core,
                                  PluginContext *ctx);
void bd_eng_free_bare_instance(bd_instance *inst);
/* Lifetimes.  An instance found by the functions below (GIL held) stays
 * valid while the GIL is held; to use it with the GIL released, take a
 * reference first (bd_eng_ref) and drop it after (bd_eng_unref, which may
 * free it). */
#define BD_MARKER_NAME "bareosdir.instance"
void bd_eng_ref(bd_instance *inst);
void bd_eng_unref(bd_instance *inst);
/* The live instance of a handle, or NULL (stale, made up, closing). */
bd_instance *bd_eng_lookup(uintptr_t handle);
/* A new marker object for inst (a capsule holding its handle). */
PyObject *bd_eng_marker(bd_instance *inst);
/* The live instance a marker names, or NULL with *why (may be NULL) saying
 * why: not a marker at all, or its instance has ended. */
bd_instance *bd_eng_marker_instance(PyObject *marker, const char **why);
PyObject *bd_eng_stats(void);
/* The bound Director's callbacks, or NULL. */
const CoreFunctions *bd_eng_core(void);
const char *bd_eng_event_name(int event);

/* interp.c: entering interpreters from any OS thread. */
struct bd_interp {
  PyInterpreterState *interp;
  int is_main;
  PyObject *api_module;      /* bareosdir._bareosdir there, new reference */
  PyObject *baseline;        /* bareosdir._isolation.Baseline, new ref */
  bd_interp *next;           /* in the idle or set-aside list */
  struct bd_tsref *tstates;  /* every cached thread state of this interp */
  atomic_int ntstates;       /* how many (changed under the lock) */
  int dead;                  /* of those, ones whose OS thread has exited */
  bd_interp *all_next;       /* in the list of every live sub-interpreter */
  /* Director calls in progress (low bits) and when their number last went
   * from 0 to 1 (high bits), in one word so that entering and leaving
   * take no lock (interp.c, busy_enter). */
  _Atomic uint64_t busy;
  atomic_int has_threads;    /* plugin threads were seen at the last leave */
  uint64_t counted_head;     /* id of the newest thread state then (GIL) */
  int nudger;                /* a GIL nudger thread is running for it */
  PyThreadState *_Atomic nudger_ts; /* its thread state, once it has one */
  int nudge_stop;            /* asks the nudger to stop, forbids a new one */
  char *holder;              /* set aside: the module that left threads */
};

typedef struct bd_ip_config {
  char *package_parent;      /* directory holding the bareosdir package */
  char *plugins_dir;         /* bareosdir/plugins */
  char *extra_path;          /* ':'-separated, for site.addsitedir; or NULL */
  char *main_path;           /* the binder's sys.path, '\n'-separated */
} bd_ip_config;

int bd_ip_init(const bd_ip_config *cfg);        /* GIL not held */
/* site.addsitedir for each of the ':'-separated dirs, in the current
 * interpreter (GIL held); a directory that fails is skipped, as site does
 * with a bad .pth line. */
void bd_ip_add_site_dirs(const char *dirs);
/* What unloading had to leave behind, for the Director's log. */
typedef struct bd_ip_leftovers {
  int aside;            /* interpreters whose plugin threads still run */
  char holders[256];    /* their modules, once each, ", "-separated */
  int main_threads;     /* plugin threads in the main interpreter */
  int atexit_skipped;   /* atexit callbacks dropped unrun */
} bd_ip_leftovers;
/* Ends what can be ended, giving plugin threads until `deadline`
 * (monotonic seconds) to finish; 1 when nothing is left over (Python may
 * then be finalized without waiting for any plugin code). GIL not held. */
int bd_ip_fini(bd_ip_leftovers *left, double deadline);
bd_interp *bd_ip_main(void);
/* Makes a thread state of ip current on this thread, taking the GIL. */
PyThreadState *bd_ip_enter(bd_interp *ip);
void bd_ip_leave(PyThreadState *ts);
/* Gets an interpreter for a new isolated instance of `module` (GIL not
 * held).  NULL with a reason in err, also when `module` holds interpreters
 * set aside and their number has reached BAREOSDIR_ASIDE_MAX. */
bd_interp *bd_ip_acquire(const char *module, char *err, size_t errlen);
/* Gives it back (GIL not held): reset for reuse or ended, or set aside
 * when `module` left threads behind (returns 1 then). */
int bd_ip_release(bd_interp *ip, const char *module);
int bd_ip_set_aside_count(void);
int bd_ip_idle_count(void);
/* Thread states cached for the main interpreter. */
int bd_ip_main_tstates(void);
/* Interpreters created / reused so far. */
void bd_ip_counters(long *created, long *reused);

/* errors.c */
/* Reports the pending exception as one job message and one debug message;
 * clears it.  Returns the bRC the call answers (per inst->on_error). */
bRC bd_err_report(bd_instance *inst, const char *what);
/* A plugin's return value as a bRC, or (bRC)-1 when it is not one to pass
 * on (then bd_err_result reports it).  Touches nothing else. */
bRC bd_err_result_fast(PyObject *result);
/* Converts a plugin's return value; reports junk.  Steals nothing. */
bRC bd_err_result(bd_instance *inst, const char *what, PyObject *result);
/* A host failure (no Python exception) reported like a plugin error. */
bRC bd_err_host(bd_instance *inst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* testing.c */
int bd_test_add_types(PyObject *module, bd_modstate *st);

#endif
