"""Keeping plugin instances apart when interpreters are reused or shared.

Two mechanisms, both installed by the host in every interpreter that runs
plugins:

* A code cache.  Source files are compiled once per interpreter and the
  code object is kept, keyed by path, modification time and size, so a job
  that imports the same plugin again skips compiling (the Director often
  cannot write ``__pycache__``) while an edited file is noticed at the next
  job.

* Private modules for ``interpreter=main``.  Several instances share the
  main interpreter, yet each must get its own module objects for its plugin
  module and everything it imports from ``module_path`` or the plugin
  directories (two class-based plugins keep their own
  ``BareosDirWrapper.bareos_dir_plugin_object``).  Python resolves a
  function's globals without asking the module, so this needs real module
  objects per instance: each is loaded outside ``sys.modules`` and given a
  ``__builtins__`` whose ``__import__`` resolves those names in the
  instance's own table first.  The standard library and site-packages stay
  shared.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import os
import sys

from . import _search

# Kept small on purpose: this module is in every plugin interpreter.

_PLUGINS_DIR = _search.PLUGINS_DIR
_SOURCE_SUFFIXES = tuple(importlib.machinery.SOURCE_SUFFIXES)
# Compiled code by path, kept while the file is the same file unchanged.
_code_cache: dict[str, tuple] = {}


def _file_key(st) -> tuple:
    # The inode too: a file replaced by another of the same size and
    # mtime (cp -p, rsync -t, a package's files) is not the same file.
    return (st.st_mtime_ns, st.st_size, st.st_dev, st.st_ino)
_MISSING = object()


class CachingSourceLoader(importlib.machinery.SourceFileLoader):
    """SourceFileLoader that keeps compiled code for unchanged files, never
    writes bytecode (the Director's user should not be able to write into
    plugin directories), and reads files under the administrator's
    directories through one judged descriptor (bareosdir._search)."""

    def get_code(self, fullname: str):
        path = self.get_filename(fullname)
        s = _search.for_loader()
        if s.is_judged(os.path.abspath(path)):
            return checked_code(self, fullname, path, s)
        try:
            st = os.stat(path)
        except OSError:
            return super().get_code(fullname)
        key = _file_key(st)
        hit = _code_cache.get(path)
        if hit is not None and hit[0] == key:
            code = hit[1]
        else:
            code = super().get_code(fullname)
            _code_cache[path] = (key, code)
        if s is _search.current and s.is_ours(path):
            _search.loaded(fullname, path)
        return code

    def set_data(self, path, data, *, _mode=0o666):
        pass  # bytecode: kept in memory only


def checked_code(loader, name: str, path: str, s):
    """Code of a file under the administrator's directories: judged and
    compiled from one open descriptor."""
    fd, st = _search.open_checked(name, path, s)
    try:
        key = _file_key(st)
        hit = _code_cache.get(path)
        if hit is not None and hit[0] == key:
            code = hit[1]
        else:
            code = loader.source_to_code(_search.read_all(fd), path)
            _code_cache[path] = (key, code)
    finally:
        os.close(fd)
    _search.loaded(name, path)
    return code


class CheckedSourcelessLoader(importlib.machinery.SourcelessFileLoader):
    """A bytecode-only module: under the administrator's directories,
    judged and read through one descriptor like a source file."""

    def get_code(self, fullname: str):
        path = self.get_filename(fullname)
        s = _search.for_loader()
        if not s.is_judged(os.path.abspath(path)):
            return super().get_code(fullname)
        fd, _ = _search.open_checked(fullname, path, s)
        try:
            data = _search.read_all(fd)
        finally:
            os.close(fd)
        # importlib.util's MAGIC_NUMBER is this one; importing importlib.util
        # would bring its ~0.6 MB of modules into the interpreter
        # (_search.exec_spec).
        import marshal
        from importlib._bootstrap_external import MAGIC_NUMBER
        if len(data) < 16 or data[:4] != MAGIC_NUMBER:
            raise ImportError(f"bad bytecode file {path}", name=fullname,
                              path=path)
        _search.loaded(fullname, path)
        return marshal.loads(memoryview(data)[16:])


class CheckedExtensionLoader(importlib.machinery.ExtensionFileLoader):
    """A C extension under the administrator's directories: judged, and
    the file loaded must be the file judged (device and inode compared
    just before loading: the dynamic loader opens it by name)."""

    def create_module(self, spec):
        path = self.path
        s = _search.for_loader()
        if s.is_judged(os.path.abspath(path)):
            fd, st = _search.open_checked(spec.name, path, s)
            try:
                now = os.stat(path)
            finally:
                os.close(fd)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                raise ImportError(f"{path} changed while it was checked",
                                  name=spec.name, path=path)
            _search.loaded(spec.name, path)
        return super().create_module(spec)


def _path_hook():
    return importlib.machinery.FileFinder.path_hook(
        (CheckedExtensionLoader, importlib.machinery.EXTENSION_SUFFIXES),
        (CachingSourceLoader, importlib.machinery.SOURCE_SUFFIXES),
        (CheckedSourcelessLoader, importlib.machinery.BYTECODE_SUFFIXES),
    )


def install(bytecode_off: bool = True) -> None:
    """Makes path-based imports in this interpreter use the code cache, and
    turns bytecode writing off: a plugin interpreter writes no __pycache__
    (the in-memory code cache serves instead)."""
    if bytecode_off:
        sys.dont_write_bytecode = True
    if not any(getattr(h, "_bareosdir", False) for h in sys.path_hooks):
        hook = _path_hook()
        try:
            hook._bareosdir = True  # a closure: attributes are allowed
        except AttributeError:
            pass
        sys.path_hooks.insert(0, hook)
        sys.path_importer_cache.clear()


def _shared_dirs() -> tuple[str, ...]:
    """Where the standard library and installed packages live: modules from
    there stay loaded between jobs (as in one long-running interpreter)."""
    dirs = {os.path.dirname(os.__file__)}
    for p in sys.path:
        if os.path.basename(p) in ("site-packages", "dist-packages",
                                   "lib-dynload"):
            dirs.add(p)
    pkg = os.path.dirname(os.path.abspath(__file__))
    dirs.add(pkg)
    return tuple(os.path.join(d, "") for d in dirs if d)


class Baseline:
    """What an isolated interpreter looks like before a plugin runs in it,
    and the reset that hands it on in that state (see the README, "What
    survives between jobs").  A reset that fails raises: the host then
    ends the interpreter instead of reusing it."""

    _SYS_HOOKS = ("excepthook", "unraisablehook", "displayhook",
                  "breakpointhook", "stdin", "stdout", "stderr")

    def __init__(self) -> None:
        import atexit
        import gc

        self.modules = frozenset(sys.modules)
        self.path = list(sys.path)
        self.shared = _shared_dirs()
        self.plugins = os.path.join(_PLUGINS_DIR, "")
        # The host's modules (bareosdir and its private parts): the objects
        # and their attributes.
        self.host = {name: (mod, dict(mod.__dict__))
                     for name, mod in sys.modules.items()
                     if name == "bareosdir" or name.startswith("bareosdir.")}
        ext = sys.modules["bareosdir._bareosdir"]
        # Kept here: a plugin may delete them from the module.
        self.restore_dict = ext._restore_dict
        self.new_epoch = ext._new_epoch
        self.constants = [(d, dict(d)) for d in
                          (ext.bRCs, ext.bJobMessageType, ext.bDirVariable,
                           ext.bwDirVariable, ext.bDirEventType)]
        self.builtins = dict(builtins.__dict__)
        self.meta_path = list(sys.meta_path)
        self.path_hooks = list(sys.path_hooks)
        self.recursion_limit = sys.getrecursionlimit()
        self.switch_interval = sys.getswitchinterval()
        self.int_max_str_digits = sys.get_int_max_str_digits()
        self.dlopen_flags = sys.getdlopenflags()
        self.dont_write_bytecode = sys.dont_write_bytecode
        self.sys_hooks = {name: getattr(sys, name, None)
                          for name in self._SYS_HOOKS}
        self.gc = (gc.isenabled(), gc.get_threshold())
        self.atexit = atexit._ncallbacks()
        # The warnings module's filters are this list, whether or not
        # warnings is imported yet.
        import _warnings
        self.warnings = list(_warnings.filters)
        # The built-in modules reset works with, kept rather than imported
        # at every reset (an import statement is a lookup and a call).
        self._mods = (atexit, gc, _warnings)

    def _is_plugin_code(self, module) -> bool:
        if not isinstance(module, type(sys)):
            # Something a plugin put in sys.modules in its module's place:
            # kept, the next instance would be handed it instead of loading
            # its own module.
            return True
        f = getattr(module, "__file__", None)
        if not f:
            return False  # built-in, frozen or namespace: not plugin code
        if f.startswith(self.plugins):
            return True  # the framework and bundled plugins
        return not f.startswith(self.shared)

    def reset(self) -> None:
        """Hands the interpreter on as it was when recorded: the host's
        modules (in sys.modules and their attributes), the constant dicts,
        builtins, sys.meta_path, sys.path_hooks, sys.path, the recursion
        limit and the other sys settings below, the sys hooks and streams,
        gc settings, warnings filters, trace and profile functions (this
        thread's here; other threads' at their next call, see
        _bareosdir's epoch), atexit callbacks (dropped, not run), the root
        logger's handlers; and drops every module loaded since that is not
        from the standard library or installed packages (the plugin
        module, the framework, anything from module_path or the plugin
        directory): the next instance starts with fresh plugin modules and
        globals."""
        atexit, gc, _warnings = self._mods

        # Output a plugin left without a newline goes out now, not at the
        # start of the next plugin's first line.
        restore = self.restore_dict
        hostio = self.host.get("bareosdir._hostio")
        # Modules loaded since: plugin code, and bareosdir's own (imported
        # afresh when needed again, so their package attributes match).
        # Only names not in the baseline are looked at (a set difference
        # first: most of sys.modules is the baseline), in sys.modules order.
        baseline = self.modules
        modules = sys.modules
        if modules.keys() - baseline:
            for name in [n for n in modules if n not in baseline]:
                module = modules.get(name, _MISSING)
                if module is not _MISSING and (
                        name.startswith("bareosdir.") or name == "bareosdir"
                        or self._is_plugin_code(module)):
                    del modules[name]
        for name, (mod, attrs) in self.host.items():
            sys.modules[name] = mod
            restore(mod.__dict__, attrs)
        if hostio is not None:
            hostio[0].flush_all()
        for d, saved in self.constants:
            restore(d, saved)
        restore(builtins.__dict__, self.builtins)
        changed_import = (sys.meta_path != self.meta_path
                          or sys.path_hooks != self.path_hooks)
        sys.meta_path[:] = self.meta_path
        sys.path_hooks[:] = self.path_hooks
        cache = sys.path_importer_cache
        if changed_import:
            cache.clear()
        else:
            for key in [k for k, v in cache.items()
                        if v is not None
                        and not isinstance(v, importlib.machinery.FileFinder)]:
                del cache[key]
        sys.setrecursionlimit(self.recursion_limit)
        sys.setswitchinterval(self.switch_interval)
        sys.set_int_max_str_digits(self.int_max_str_digits)
        sys.setdlopenflags(self.dlopen_flags)
        sys.dont_write_bytecode = self.dont_write_bytecode
        for name, value in self.sys_hooks.items():
            setattr(sys, name, value)
        sys.settrace(None)
        sys.setprofile(None)
        threading = sys.modules.get("threading")
        if threading is not None:
            threading.settrace(None)
            threading.setprofile(None)
            threading.excepthook = getattr(
                hostio[0] if hostio else None, "thread_excepthook",
                threading.__excepthook__)
        self.new_epoch()
        enabled, threshold = self.gc
        gc.set_threshold(*threshold)
        if enabled:
            gc.enable()
        else:
            gc.disable()
        if atexit._ncallbacks() != self.atexit:
            # No API lists them; the host registers none before a plugin
            # runs (self.atexit is 0), so dropping all drops only plugins'.
            atexit._clear()
        _warnings.filters[:] = self.warnings
        _warnings._filters_mutated()
        sys.path[:] = self.path
        logging = sys.modules.get("logging")
        if logging is not None:
            root = logging.getLogger()
            root.handlers[:] = [h for h in root.handlers
                                if getattr(h, "_bareosdir", False)]


_find_cache: dict[tuple, tuple] = {}


def _mtime(search: "_search.Search", path: str) -> int:
    # The stat the path check of this load makes of it too, shared.
    st = _search.stat_dir(search, path)
    return -1 if st is None else st.st_mtime_ns


class PrivateModules:
    """One main-mode instance's module table (see the module docstring)."""

    def __init__(self, search: "_search.Search", marker: object) -> None:
        self.search = search
        self.marker = marker
        self.modules: dict[str, object] = {}
        self.builtins = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import
        self.module = None
        self._views = None
        self._stamp = None

    @property
    def paths(self) -> tuple[str, ...]:
        return self.search.dirs

    def load(self, name: str):
        """The plugin module: from our search directories (the directory it
        is found in then comes first for its imports), else a source module
        of the standard library or site-packages, private too."""
        if "." in name:
            # Private modules are top-level files; looked up by its last
            # part, "pkg.mod" would run some top-level mod.py.
            raise ImportError(
                f"module_name={name}: interpreter=main loads a plugin module "
                f"from a top-level file only (interpreter=isolated imports "
                f"one from a package)")
        self.search.locate(name)
        self.search.begin_load()
        try:
            mod = self._load(name)
            if mod is None:
                spec = importlib.machinery.PathFinder.find_spec(name, sys.path)
                if (spec is not None and spec.origin is not None
                        and spec.origin.endswith(_SOURCE_SUFFIXES)
                        and spec.submodule_search_locations is None):
                    spec.loader = CachingSourceLoader(name, spec.origin)
                    mod = self._exec(name, spec)
        finally:
            self.search.end_load()
        if mod is None:
            raise ModuleNotFoundError(
                f"No module named {name!r} in {list(self.paths)} or on "
                f"sys.path", name=name)
        self.module = mod
        return mod

    def _find(self, name: str):
        """The spec of a plain source module `name` on our paths, or None;
        remembered while the directories are unchanged."""
        paths = self.paths
        key = (paths, name)
        if self._stamp is None or self._stamp[0] != paths:
            # Once per instance: os.stat drops the GIL, and with many jobs
            # at once every drop means waiting to get it back.
            self._stamp = (paths, tuple(_mtime(self.search, p)
                                        for p in paths))
        stamp = self._stamp[1]
        hit = _find_cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        spec = importlib.machinery.PathFinder.find_spec(name, list(paths))
        if (spec is not None and spec.origin is not None
                and spec.origin.endswith(_SOURCE_SUFFIXES)
                and spec.submodule_search_locations is None):
            spec.loader = CachingSourceLoader(name, spec.origin)
        else:
            spec = None
        if len(_find_cache) >= _search._CACHE_MAX:
            _find_cache.clear()  # every name a plugin imports is a key
        _find_cache[key] = (stamp, spec)
        return spec

    def _load(self, name: str):
        mod = self.modules.get(name)
        if mod is not None:
            return mod
        if name == "bareosdir":
            return None  # always ours, never a same-named file of theirs
        spec = self._find(name)
        if spec is None:
            return None  # not a plain source module of ours: shared
        return self._exec(name, spec)

    def _exec(self, name: str, spec):
        # What importlib's module_from_spec + exec_module do, without
        # recomputing the spec's attributes for every instance.
        origin = spec.origin
        if self.search.is_judged(os.path.abspath(origin)):
            code = checked_code(spec.loader, name, origin, self.search)
        else:
            code = spec.loader.get_code(name)
            _search.loaded(name, origin)
        mod = type(sys)(name)
        d = mod.__dict__
        d["__spec__"] = spec
        d["__loader__"] = spec.loader
        d["__file__"] = origin
        d["__builtins__"] = self.builtins
        d["__bareosdir_instance__"] = self.marker
        self.modules[name] = mod
        try:
            exec(code, d)
        except BaseException:
            del self.modules[name]
            raise
        return mod

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        # Modules of our paths are always the instance's own, even when some
        # other route put a module of that name into sys.modules.
        if level == 0 and "." not in name:
            mod = self._load(name)
            if mod is not None:
                return mod
        elif level == 0 and name.startswith("bareosdir.plugins"):
            view = self._package_views()
            if name == "bareosdir.plugins":
                return view[1] if fromlist else view[0]
            sub = name[len("bareosdir.plugins."):]
            mod = None if "." in sub else self._load(sub)
            if mod is not None:
                return mod if fromlist else view[0]
        if level == 0:
            self._shared_from_search(name.partition(".")[0])
        return builtins.__import__(name, globals, locals, fromlist, level)

    def _shared_from_search(self, top: str) -> None:
        """A package (or compiled module) on our search directories, which
        the main interpreter's sys.path may not name: imported once into
        sys.modules, shared (as the README says of packages)."""
        if top in sys.modules or top == "bareosdir":
            return
        spec = importlib.machinery.PathFinder.find_spec(top, list(self.paths))
        if spec is None or spec.loader is None:
            return
        _search.exec_spec(spec)

    def _package_views(self):
        """Per-instance stand-ins for the packages ``bareosdir`` and
        ``bareosdir.plugins``: ``import bareosdir.plugins.X`` and ``from
        bareosdir.plugins import X`` end in attribute lookups on them, and
        must find the instance's own X, as the top-level name does."""
        views = self._views
        if views is None:
            import bareosdir

            top = type(sys)("bareosdir")
            top.__dict__.update(
                (k, v) for k, v in vars(bareosdir).items() if k != "plugins")
            plugins = type(sys)("bareosdir.plugins")

            def plugin_attribute(name, load=self._load):
                mod = load(name)
                if mod is None:
                    raise AttributeError(
                        f"module 'bareosdir.plugins' has no attribute {name!r}")
                return mod

            plugins.__getattr__ = plugin_attribute
            top.plugins = plugins
            views = self._views = (top, plugins)
        return views

    def release(self) -> None:
        """The instance is over: API calls from code it left behind (its
        threads) find no instance any more."""
        for mod in self.modules.values():
            mod.__dict__["__bareosdir_instance__"] = None
        self.modules.clear()
        self.module = None
        self._views = None
