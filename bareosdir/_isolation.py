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
import importlib.util
import logging
import os
import sys
from typing import Any

_PLUGINS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins")
_SOURCE_SUFFIXES = tuple(importlib.machinery.SOURCE_SUFFIXES)
_code_cache: dict[str, tuple[int, int, Any]] = {}


class CachingSourceLoader(importlib.machinery.SourceFileLoader):
    """SourceFileLoader that keeps compiled code for unchanged files."""

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        try:
            st = os.stat(path)
        except OSError:
            return super().get_code(fullname)
        hit = _code_cache.get(path)
        if hit is not None and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
            return hit[2]
        code = super().get_code(fullname)
        _code_cache[path] = (st.st_mtime_ns, st.st_size, code)
        return code


def _path_hook() -> Any:
    return importlib.machinery.FileFinder.path_hook(
        (importlib.machinery.ExtensionFileLoader,
         importlib.machinery.EXTENSION_SUFFIXES),
        (CachingSourceLoader, importlib.machinery.SOURCE_SUFFIXES),
        (importlib.machinery.SourcelessFileLoader,
         importlib.machinery.BYTECODE_SUFFIXES),
    )


def install() -> None:
    """Makes path-based imports in this interpreter use the code cache."""
    if not any(getattr(h, "_bareosdir", False) for h in sys.path_hooks):
        hook = _path_hook()
        try:
            hook._bareosdir = True  # a closure: attributes are allowed
        except AttributeError:
            pass
        sys.path_hooks.insert(0, hook)
        sys.path_importer_cache.clear()


class Baseline:
    """What an isolated interpreter looks like before a plugin runs in it."""

    def __init__(self) -> None:
        self.modules = frozenset(sys.modules)
        self.path = list(sys.path)
        self.handlers = list(logging.getLogger().handlers)

    def reset(self) -> None:
        """Drops every module imported since, restores sys.path and the root
        logger's handlers: the next instance starts with fresh plugin
        modules, as in a new interpreter."""
        for name in [n for n in sys.modules if n not in self.modules]:
            del sys.modules[name]
        sys.path[:] = self.path
        logging.getLogger().handlers[:] = self.handlers


class PrivateModules:
    """One main-mode instance's module table (see the module docstring)."""

    def __init__(self, paths: list[str], marker: Any) -> None:
        self.paths = [p for p in paths if p] + [_PLUGINS_DIR]
        self.marker = marker
        self.modules: dict[str, Any] = {}
        self.builtins = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import
        self.module: Any = None

    def load(self, name: str) -> Any:
        mod = self._load(name)
        if mod is None:
            raise ModuleNotFoundError(
                f"No module named {name!r} in {self.paths}", name=name)
        self.module = mod
        return mod

    def _load(self, name: str) -> Any:
        mod = self.modules.get(name)
        if mod is not None:
            return mod
        spec = importlib.machinery.PathFinder.find_spec(name, self.paths)
        if (spec is None or spec.origin is None
                or not spec.origin.endswith(_SOURCE_SUFFIXES)
                or spec.submodule_search_locations is not None):
            return None  # not a plain source module of ours: shared
        spec.loader = CachingSourceLoader(name, spec.origin)
        mod = importlib.util.module_from_spec(spec)
        mod.__dict__["__builtins__"] = self.builtins
        mod.__dict__["__bareosdir_instance__"] = self.marker
        self.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            del self.modules[name]
            raise
        return mod

    def _import(self, name: str, globals: Any = None, locals: Any = None,
                fromlist: Any = (), level: int = 0) -> Any:
        if level == 0 and "." not in name:
            mod = self._load(name)
            if mod is not None:
                return mod
        return builtins.__import__(name, globals, locals, fromlist, level)

    def release(self) -> None:
        """The instance is over: API calls from code it left behind (its
        threads) find no instance any more."""
        for mod in self.modules.values():
            mod.__dict__["__bareosdir_instance__"] = None
        self.modules.clear()
        self.module = None
