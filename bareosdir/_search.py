"""Where plugin code comes from: the one search order for a plugin module,
in both interpreter modes, and the check that no one but root or the
Director's user can change the files found in the administrator's
directories.

The search order, the administrator's files before ours as in Bareos 22+:
``module_path``; the Director's Plugin Directory; the ``BAREOSDIR_PATH`` and
``bareosdir-path.conf`` entries; the bundled ``bareosdir/plugins``; then
the standard library and site-packages.  The directory the plugin module
was found in is searched first for the plugin's own imports too (a contrib
loader gets its own companion module, not a bundled one of that name).

A source file under one of the administrator's directories is opened once,
judged by ``fstat`` of that descriptor and by every directory from it up to
the root, and compiled from the bytes read through the same descriptor: the
file judged is the file run.  Our own package (``bareosdir``, including
``bareosdir/plugins``), the standard library and site-packages are not
judged: they belong to the installed system.  A file of our package that
lies under one of the administrator's directories (the package installed
beside the shim, inside the Plugin Directory) is judged like theirs.
"""

from __future__ import annotations

import os
import stat
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
PLUGINS_DIR = os.path.join(_PACKAGE_DIR, "plugins")
DEBUG_LEVEL = 100


class UnsafePluginPath(ImportError):
    """BAREOSDIR_STRICT_PATHS=1 and a plugin file others can change."""


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(os.path.join(root, ""))


def _dedupe(dirs) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for d in dirs:
        if d and d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _within(path: str, dirs: frozenset) -> bool:
    """path lies in (or below) one of dirs: a walk up, not a scan of dirs
    (an administrator may list many)."""
    for d in _chain_of(os.path.dirname(path)):
        if d in dirs:
            return True
    return False


_CACHE_MAX = 4096
# The directories of a Search, by its (module_path, plugin_dir, extra).
_layouts: dict[tuple[str, str, str], tuple] = {}


class Search:
    """One plugin instance's search: the administrator's directories, then
    ours; which files were already reported for it."""

    def __init__(self, module_path: str = "", plugin_dir: str = "",
                 extra: str = "") -> None:
        key = (module_path, plugin_dir, extra)
        layout = _layouts.get(key)
        if layout is None:
            entries = [module_path, plugin_dir, *extra.split(":")]
            admin = tuple(_dedupe(os.path.abspath(d) for d in entries if d))
            # Judged: the administrator's directories, never our own package.
            layout = (admin, tuple(_dedupe([*admin, PLUGINS_DIR])),
                      frozenset(d for d in admin
                                if not _under(d, _PACKAGE_DIR)))
            # Kept only when it is pure string work: a relative entry
            # depends on the working directory.
            if all(not d or os.path.isabs(d) for d in entries):
                if len(_layouts) >= _CACHE_MAX:
                    _layouts.clear()
                _layouts[key] = layout
        self.admin, self.dirs, self.judged = layout
        self.found_in: str | None = None
        self._dirset: tuple = (None, frozenset())
        self.reported: set[str] = set()
        # While one load runs (load_module, PrivateModules.load): what each
        # directory above a judged file stat'ed as, and each chain's
        # verdicts, so the files a plugin imports from one directory stat
        # it once per load.  None otherwise: every later load (and an
        # import during an event) stats afresh.
        self.in_load: tuple[dict, dict] | None = None

    def begin_load(self) -> None:
        self.in_load = ({}, {})

    def end_load(self) -> None:
        self.in_load = None

    def locate(self, name: str):
        """The spec of `name` on our directories, or None; remembers the
        directory it was found in, which then comes first."""
        from importlib.machinery import PathFinder
        # A dotted name is found through its top-level package: PathFinder
        # given "pkg.mod" would look for a top-level mod.py.
        spec = PathFinder.find_spec(name.partition(".")[0], list(self.dirs))
        if spec is not None and spec.origin:
            d = os.path.dirname(spec.origin)
            if spec.submodule_search_locations is not None:
                d = os.path.dirname(d)  # a package: its parent was searched
            self.found_in = d
            self.dirs = tuple(_dedupe([d, *self.dirs]))
        return spec

    def is_ours(self, path: str) -> bool:
        """Found in one of our search directories (the loaded-from line)."""
        if self._dirset[0] is not self.dirs:
            self._dirset = (self.dirs, frozenset(self.dirs))
        return _within(path, self._dirset[1])

    def is_judged(self, path: str) -> bool:
        return _within(path, self.judged)

    def path_list(self, rest: list[str]) -> list[str]:
        """sys.path for isolated mode: our search, then the rest (standard
        library, site-packages) in its own order."""
        mine = list(self.dirs)
        seen = set(mine)
        return mine + [p for p in rest if p not in seen]


# Isolated mode: the search of the instance this interpreter serves now.
current: Search | None = None
# Main mode, for files reached through sys.path rather than an instance's
# private modules: every administrator's directory seen in this process.
_main = Search()


def prepare(name: str, module_path: str, plugin_dir: str, extra: str,
            rest: list[str]):
    """Isolated mode, before importing the plugin module `name`: puts this
    instance's search order on sys.path.  Returns the spec the search
    found (None: not on our directories)."""
    global current
    s = Search(module_path, plugin_dir, extra)
    spec = s.locate(name)
    sys.path[:] = s.path_list(rest)
    current = s
    return spec


def load_module(name: str, module_path: str, plugin_dir: str, extra: str,
                rest: list[str]):
    """Isolated mode: the plugin module `name`, imported into sys.modules.
    The file the search found is the one run: its spec is loaded as it
    is, not searched for again by the import system (which could find
    another file of that name, and would search twice)."""
    spec = prepare(name, module_path, plugin_dir, extra, rest)
    s = current
    s.begin_load()
    try:
        mod = sys.modules.get(name)
        if mod is not None:
            return mod  # as an import statement would (`bareosdir` is ours)
        if spec is None or spec.loader is None or "." in name:
            # Not ours (the standard library, site-packages), a namespace
            # package or a submodule: the import system's own way.
            import importlib
            return importlib.import_module(name)
        return exec_spec(spec)
    finally:
        s.end_load()


def exec_spec(spec):
    """What the import system does with a top-level module's spec once it
    has found it (also main mode's shared packages, _isolation)."""
    # importlib.util.module_from_spec is this function; importing
    # importlib.util would bring collections, functools, contextlib and
    # more into every sub-interpreter (about 0.6 MB each).
    import importlib._bootstrap
    name = spec.name
    mod = importlib._bootstrap.module_from_spec(spec)
    spec._initializing = True  # "partially initialized" in circular imports
    try:
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        # Last in sys.modules, and whatever the module put in its place.
        mod = sys.modules.pop(name)
        sys.modules[name] = mod
        return mod
    finally:
        spec._initializing = False


def remember_main(s: Search) -> None:
    """Main mode: files under s's directories reached through sys.path are
    judged as well."""
    if not s.judged <= _main.judged:
        _main.judged = _main.judged | s.judged


def for_loader() -> Search:
    return current if current is not None else _main


def strict() -> bool:
    return os.environ.get("BAREOSDIR_STRICT_PATHS", "") == "1"


def _owner(uid: int) -> str:
    try:
        import pwd
        return "%s (uid %d)" % (pwd.getpwuid(uid).pw_name, uid)
    except (ImportError, KeyError):
        return "uid %d" % uid


def _problem(path: str, st, searched: bool) -> str | None:
    """What is wrong with path (stat st), or None.  `searched`: a directory
    modules are looked up in, where a sticky bit does not help (anyone may
    add a file)."""
    euid = os.geteuid()
    what = "file" if stat.S_ISREG(st.st_mode) else "directory"
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid not in (0, euid):
        return ("%s %s is owned by %s, mode %04o: only root or the Director's "
                "user (%s) may own it; change its owner (chown root %s)"
                % (what, path, _owner(st.st_uid), mode, _owner(euid), path))
    w = mode & 0o022
    if w and stat.S_ISDIR(st.st_mode) and mode & stat.S_ISVTX and not searched:
        return None  # others cannot rename or remove what they do not own
    if w:
        who = {0o020: "group", 0o002: "others", 0o022: "group and others"}[w]
        flag = {0o020: "g-w", 0o002: "o-w", 0o022: "go-w"}[w]
        sticky = (" (a sticky bit does not help where modules are looked "
                  "up: anyone may add one)" if mode & stat.S_ISVTX else "")
        return ("%s %s (owner %s, mode %04o) is writable by %s%s: make it "
                "writable only by its owner (chmod %s %s)"
                % (what, path, _owner(st.st_uid), mode, who, sticky, flag,
                   path))
    return None


# Every file loaded is judged afresh at every load: its descriptor and
# every directory above it are stat'ed each time (a directory once per
# load, Search.in_load), so a chmod, chown or replacement since the last
# job is always seen.  What is remembered is
# only what follows from those stats without any further system call:
# the chain of directories above a directory (string work), and the
# verdict on a path given its owner, mode and the Director's user
# (_problem).  Both tables are bounded (_CACHE_MAX).
_ancestors: dict[str, tuple[str, ...]] = {}
_verdicts: dict[tuple, str | None] = {}


def _chain_of(start: str) -> tuple[str, ...]:
    """start and every directory above it, up to the root."""
    chain = _ancestors.get(start)
    if chain is None:
        dirs = [start]
        d = start
        while True:
            up = os.path.dirname(d)
            if up == d:
                break
            dirs.append(up)
            d = up
        chain = tuple(dirs)
        if len(_ancestors) >= _CACHE_MAX:
            _ancestors.clear()
        _ancestors[start] = chain
    return chain


def _verdict(path: str, st, searched: bool, euid: int) -> str | None:
    """_problem(path, st, searched), remembered by everything it depends
    on: the path, the owner and mode stat'ed just now, `searched` and the
    Director's user."""
    key = (path, st.st_uid, st.st_mode, searched, euid)
    try:
        return _verdicts[key]
    except KeyError:
        pass
    p = _problem(path, st, searched)
    if len(_verdicts) >= _CACHE_MAX:
        _verdicts.clear()
    _verdicts[key] = p
    return p


def stat_dir(s: Search, d: str) -> os.stat_result | None:
    """os.stat(d), None if that fails; once per directory while a load of
    s runs."""
    load = s.in_load
    if load is not None and d in load[0]:
        return load[0][d]
    try:
        st = os.stat(d)
    except OSError:
        st = None
    if load is not None:
        load[0][d] = st
    return st


def _chain(start: str, s: Search, euid: int) -> tuple:
    """(directory, problem or None) for start and every directory above
    it; the first is where modules are looked up."""
    load = s.in_load
    if load is not None:
        hit = load[1].get(start)
        if hit is not None:
            return hit
    out = []
    first = True
    admin = s.admin
    for d in _chain_of(start):
        st = stat_dir(s, d)
        p = None
        if st is not None:
            p = _verdict(d, st, first or d in admin, euid)
        out.append((d, p))
        first = False
    chain = tuple(out)
    if load is not None:
        load[1][start] = chain
    return chain


def _judge(path: str, fd: int, s: Search):
    """judge(), and the fstat of fd it judged."""
    findings: dict[str, str | None] = {}
    st = os.fstat(fd)
    try:
        real = os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        real = os.path.realpath(path)
    euid = os.geteuid()
    p = _verdict(real, st, False, euid)
    if p:
        findings[real] = p
    start = os.path.dirname(os.path.abspath(path))
    real_start = os.path.dirname(real)
    if real_start == start:  # the usual case: one chain
        found = [(d, q) for d, q in _chain(start, s, euid) if q]
        if p:
            found.insert(0, (real, p))
        return found, st
    # A directory in both chains is judged as the first one saw it.
    for d, q in _chain(start, s, euid):
        findings.setdefault(d, q)
    for d, q in _chain(real_start, s, euid):
        findings.setdefault(d, q)
    return [(k, v) for k, v in findings.items() if v], st


def judge(path: str, fd: int, s: Search) -> list[tuple[str, str]]:
    """(offending path, text) for the file open as fd (found as `path`) and
    every directory above it and above where it really is."""
    return _judge(path, fd, s)[0]


def _message(kind: int, text: str) -> None:
    try:
        import bareosdir
        if kind:
            bareosdir.JobMessage(kind, text)
        else:
            bareosdir.DebugMessage(DEBUG_LEVEL, text)
    except Exception:  # no instance here (a thread after its job): say nothing
        pass


def open_checked(name: str, path: str, s: Search) -> tuple[int, object]:
    """Opens the source file of module `name` for loading: reports what
    others could change (once per instance and path), or refuses in strict
    mode.  Returns (fd, fstat result); the caller closes fd."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        found, st = _judge(path, fd, s)
        if found and strict():
            text = "; ".join(t for _, t in found)
            raise UnsafePluginPath(
                "bareosdir: refusing to load module %r from %s "
                "(BAREOSDIR_STRICT_PATHS=1): %s" % (name, path, text),
                name=name, path=path)
        for where, text in found:
            if where not in s.reported:
                s.reported.add(where)
                import bareosdir
                _message(bareosdir.M_WARNING,
                         "bareosdir: module %r (%s) comes from a place others "
                         "can change: %s" % (name, path, text))
        # The stat the file was judged by: what the caller compiles is
        # what was judged (read through the same descriptor).
        return fd, st
    except BaseException:
        os.close(fd)
        raise


def read_all(fd: int) -> bytes:
    parts = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            return b"".join(parts)
        parts.append(b)


def loaded(name: str, path: str) -> None:
    """The level-100 line naming the file a module of the plugin came
    from."""
    _message(0, "bareosdir: module %s loaded from %s" % (name, path))
