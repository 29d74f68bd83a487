/*
 * The Bareos Director plugin interface, version 4, as the Director sees it:
 * the C types and enumerations that bareos-dir and a director plugin
 * exchange (see spec/director-abi.md).  No Python here: the options parser,
 * the director model and the simulator include this too.
 */
#ifndef BAREOSDIR_DIRECTOR_ABI_H
#define BAREOSDIR_DIRECTOR_ABI_H

#include <stdint.h>

#define BD_DIR_PLUGIN_INTERFACE_VERSION 4
#define BD_DIR_PLUGIN_MAGIC "*DirPluginData*"
#define BD_MAX_INSTANCES 128

typedef enum {
  bRC_OK = 0,
  bRC_Stop = 1,
  bRC_Error = 2,
  bRC_More = 3,
  bRC_Term = 4,
  bRC_Seen = 5,
  bRC_Core = 6,
  bRC_Skip = 7,
  bRC_Cancel = 8
} bRC;

typedef struct {
  uint32_t size;
  uint32_t version;
} PluginApiDefinition;

typedef struct Plugin {
  char *file;
  int32_t file_len;
  bRC (*unloadPlugin)(void);
  void *plugin_information;
  void *plugin_functions;
  void *plugin_handle;
} Plugin;

typedef struct PluginContext {
  uint32_t instance;
  Plugin *plugin;
  void *core_private_context;
  void *plugin_private_context;
} PluginContext;

typedef struct {
  uint32_t size;
  uint32_t version;
  const char *plugin_magic;
  const char *plugin_license;
  const char *plugin_author;
  const char *plugin_date;
  const char *plugin_version;
  const char *plugin_description;
  const char *plugin_usage;
} PluginInformation;

typedef struct {
  uint32_t size;
  uint32_t version;
  bRC (*registerBareosEvents)(PluginContext *ctx, int nr_events, ...);
  bRC (*unregisterBareosEvents)(PluginContext *ctx, int nr_events, ...);
  bRC (*getInstanceCount)(PluginContext *ctx, int *ret);
  bRC (*getBareosValue)(PluginContext *ctx, int var, void *value);
  bRC (*setBareosValue)(PluginContext *ctx, int var, void *value);
  bRC (*JobMessage)(PluginContext *ctx, const char *file, int line, int type,
                    int64_t mtime, const char *fmt, ...);
  bRC (*DebugMessage)(PluginContext *ctx, const char *file, int line,
                      int level, const char *fmt, ...);
} CoreFunctions;

typedef struct {
  uint32_t eventType;
} bDirEvent;

typedef struct {
  uint32_t size;
  uint32_t version;
  bRC (*newPlugin)(PluginContext *ctx);
  bRC (*freePlugin)(PluginContext *ctx);
  bRC (*getPluginValue)(PluginContext *ctx, int var, void *value);
  bRC (*setPluginValue)(PluginContext *ctx, int var, void *value);
  bRC (*handlePluginEvent)(PluginContext *ctx, bDirEvent *event, void *value);
} PluginFunctions;

typedef bRC (*bd_loadPlugin_fn)(PluginApiDefinition *core_version,
                                CoreFunctions *core_functions,
                                PluginInformation **plugin_info,
                                PluginFunctions **plugin_functions);
typedef bRC (*bd_unloadPlugin_fn)(void);

/* Read variables (getBareosValue). */
enum {
  bDirVarJob = 1,
  bDirVarLevel = 2,
  bDirVarType = 3,
  bDirVarJobId = 4,
  bDirVarClient = 5,
  bDirVarNumVols = 6,
  bDirVarPool = 7,
  bDirVarStorage = 8,
  bDirVarWriteStorage = 9,
  bDirVarReadStorage = 10,
  bDirVarCatalog = 11,
  bDirVarMediaType = 12,
  bDirVarJobName = 13,
  bDirVarJobStatus = 14,
  bDirVarPriority = 15,
  bDirVarVolumeName = 16,
  bDirVarCatalogRes = 17,
  bDirVarJobErrors = 18,
  bDirVarJobFiles = 19,
  bDirVarSDJobFiles = 20,
  bDirVarSDErrors = 21,
  bDirVarFDJobStatus = 22,
  bDirVarSDJobStatus = 23,
  bDirVarPluginDir = 24,
  bDirVarLastRate = 25,
  bDirVarJobBytes = 26,
  bDirVarReadBytes = 27
};
#define BD_DIR_VAR_MAX 27

/* Write variables (setBareosValue). */
enum {
  bwDirVarJobReport = 1,
  bwDirVarVolumeName = 2,
  bwDirVarPriority = 3,
  bwDirVarJobLevel = 4
};

enum {
  bDirEventJobStart = 1,
  bDirEventJobEnd = 2,
  bDirEventJobInit = 3,
  bDirEventJobRun = 4,
  bDirEventVolumePurged = 5,
  bDirEventNewVolume = 6,
  bDirEventNeedVolume = 7,
  bDirEventVolumeFull = 8,
  bDirEventRecyle = 9,
  bDirEventGetScratch = 10,
  bDirEventNewPluginOptions = 11
};
#define BD_DIR_EVENT_MAX 11

enum {
  M_ABORT = 1,
  M_DEBUG = 2,
  M_FATAL = 3,
  M_ERROR = 4,
  M_WARNING = 5,
  M_INFO = 6,
  M_SAVED = 7,
  M_NOTSAVED = 8,
  M_SKIPPED = 9,
  M_MOUNT = 10,
  M_ERROR_TERM = 11,
  M_TERM = 12,
  M_RESTORED = 13,
  M_SECURITY = 14,
  M_ALERT = 15,
  M_VOLMGMT = 16,
  M_AUDIT = 17,
  M_CONFIG_ERROR = 18
};

#endif
