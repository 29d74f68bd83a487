/*
 * What the shim and the extension exchange, as the pointers of two
 * capsules: "bareosdir.director" (shim -> extension: the Director's
 * callbacks) and "bareosdir.plugin" (extension -> shim: the tables for the
 * Director).  Shared by shim/python-dir.c and csrc/; no Python here.
 */
#ifndef BAREOSDIR_BINDING_H
#define BAREOSDIR_BINDING_H

#include <stdint.h>

#include "director_abi.h"

#define BD_PLUGIN_CAPSULE "bareosdir.plugin"
#define BD_DIRECTOR_CAPSULE "bareosdir.director"

/* What the shim (or the mock director) hands the extension. */
typedef struct bd_director_binding {
  uint32_t size;                /* sizeof(bd_director_binding) */
  uint32_t api_version;         /* PluginApiDefinition.version */
  const CoreFunctions *core;
  /* Directories to add to every plugin interpreter's sys.path with
   * site.addsitedir (':'-separated; NULL or "" for none); the extension
   * adds them, the shim only collects them. */
  const char *extra_path;
  /* The name of the file the Director loaded, without ".so"
   * ("python-dir", "python3-dir", or whatever the administrator called
   * the copy): messages about this copy's instances begin with it.  NULL
   * or "" for BD_DEFAULT_FILE_NAME. */
  const char *file_name;
} bd_director_binding;

/* The name messages use when the loaded file's is not known. */
#define BD_DEFAULT_FILE_NAME "python-dir"

/* What the extension hands back: the tables for the Director and the
 * function that ends the binding (called by unloadPlugin, GIL not held). */
typedef struct bd_plugin_binding {
  uint32_t size;
  PluginInformation *info;
  PluginFunctions *functions;
  /* Returns 1 when this was the last binding and everything ended cleanly,
   * so the caller may finalize Python; 0 otherwise. */
  int (*unbind)(void);
} bd_plugin_binding;

#endif
