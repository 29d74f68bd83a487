"""Routes a plugin interpreter's output to the Director.

The Director's own stdout is closed, so nothing a plugin prints may go
there.  The mapping (documented in the README):

* ``sys.stdout``: a debug message at level 100 per line;
* ``sys.stderr``: a job message M_WARNING per write of whole lines;
* ``logging`` (when the plugin module imports it): records of level ERROR
  and above -> M_ERROR, WARNING -> M_WARNING, INFO -> M_INFO, below ->
  debug level 200; ``warnings`` then go through logging -> M_WARNING;
* without logging, ``warnings`` are written to stderr -> M_WARNING.

Output belongs to the instance whose code wrote it (_bareosdir._current,
and thread_excepthook for a thread's uncaught exception); text without a
final newline is kept per instance until its call or job ends.  With no
job context (a thread the plugin left running after its job) the text
goes to the Director's log (a message with no job).  With no Director
at all it goes to the process's original stderr.
"""

from __future__ import annotations

import _thread
import io
import sys

from . import _bareosdir

STDOUT_DEBUG_LEVEL = 100
LOG_DEBUG_LEVEL = 200


#: Text without a newline kept per instance at most; longer goes out as is.
MAX_PENDING = 64 * 1024

_UNSET = object()
_streams: list["DirectorStream"] = []
# Thread id -> token, while thread_excepthook reports for a known instance.
_forced: dict[int, object] = {}


def _send(is_job: bool, kind: int, text: str, token: object = None) -> None:
    if not _bareosdir._message(is_job, kind, text, token):
        try:
            sys.__stderr__.write(text if text.endswith("\n") else text + "\n")
        except Exception:  # the process's stderr may be closed as well
            pass


def _token() -> object:
    """Which instance output written now belongs to (see _bareosdir._current)."""
    token = _forced.get(_thread.get_ident(), _UNSET) if _forced else _UNSET
    return _bareosdir._current() if token is _UNSET else token


class DirectorStream(io.TextIOBase):
    """A text stream whose complete lines become Director messages.  Text
    without a newline is kept per instance and sent when that instance's
    dispatch or job ends (the engine calls flush_instance), so it never
    starts another job's message."""

    def __init__(self, name: str, is_job: bool, kind: int) -> None:
        super().__init__()
        self.name = name
        self._is_job = is_job
        self._kind = kind
        self._pending: dict[object, str] = {}
        _streams.append(self)

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        token = _token()
        text = self._pending.pop(token, "") + s
        head, sep, tail = text.rpartition("\n")
        if len(tail) > MAX_PENDING:
            head, sep, tail = text, "\n", ""
        if tail:
            self._pending[token] = tail
            _bareosdir._output_pending()
        if sep:
            _send(self._is_job, self._kind, head, token)
        return len(s)

    def flush(self) -> None:
        self.flush_for(_token())

    def flush_for(self, token: object) -> None:
        text = self._pending.pop(token, None)
        if text:
            _send(self._is_job, self._kind, text, token)


def flush_instance(token: object) -> bool:
    """The end of a dispatch or job of the instance `token` names (None: an
    isolated interpreter's instance): its unfinished lines go out.  True
    while other instances' text is still kept."""
    for stream in _streams:
        stream.flush_for(token)
    return any(stream._pending for stream in _streams)


def flush_all() -> None:
    """Before an interpreter is reused: whatever is kept goes out."""
    for stream in _streams:
        for token in list(stream._pending):
            stream.flush_for(token)


def thread_excepthook(args) -> None:
    """threading.excepthook: the traceback of a plugin thread's uncaught
    exception is reported for the instance whose code the thread ran (the
    outermost frame with a marker), not as output of the threading
    module."""
    import threading

    token = None
    tb = args.exc_traceback
    while tb is not None:
        mark = tb.tb_frame.f_globals.get("__bareosdir_instance__", _UNSET)
        if mark is not _UNSET:
            token = mark
            break
        tb = tb.tb_next
    if token is None:
        threading.__excepthook__(args)
        return
    ident = _thread.get_ident()
    _forced[ident] = token
    try:
        threading.__excepthook__(args)
        sys.stderr.flush()
    finally:
        _forced.pop(ident, None)


def _make_handler(logging):
    class DirectorHandler(logging.Handler):
        """Writes log records as Director messages."""

        def emit(self, record):
            try:
                text = self.format(record)
                if record.levelno >= logging.ERROR:
                    _send(True, _bareosdir.M_ERROR, text)
                elif record.levelno >= logging.WARNING:
                    _send(True, _bareosdir.M_WARNING, text)
                elif record.levelno >= logging.INFO:
                    _send(True, _bareosdir.M_INFO, text)
                else:
                    _send(False, LOG_DEBUG_LEVEL, text)
            except Exception:
                self.handleError(record)

    handler = DirectorHandler()
    handler._bareosdir = True
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    return handler


def install() -> None:
    """Called by the host in every interpreter that runs plugins.  Until a
    plugin imports logging, log records and warnings reach the Director
    through stderr; see after_load()."""
    sys.stdout = DirectorStream("<director stdout>", False, STDOUT_DEBUG_LEVEL)
    sys.stderr = DirectorStream("<director stderr>", True, _bareosdir.M_WARNING)
    if _bareosdir._in_main_interpreter():
        # interpreter=main instances share this interpreter: a thread's
        # uncaught exception is reported for the instance whose code the
        # thread ran, even when the plugin imports threading late.  (An
        # isolated interpreter's output is its one instance's anyway, and
        # threading costs memory in each.)
        import threading

        threading.excepthook = thread_excepthook


def after_load() -> None:
    """Called after a plugin module is loaded: when it uses threading, its
    threads' uncaught exceptions are reported for it (thread_excepthook);
    when it uses logging, its records get their own message types.  logging is not imported for
    plugins that do not use it (it costs about 1 MB per interpreter)."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.excepthook is threading.__excepthook__:
        threading.excepthook = thread_excepthook
    logging = sys.modules.get("logging")
    if logging is None:
        return
    root = logging.getLogger()
    if not any(getattr(h, "_bareosdir", False) for h in root.handlers):
        root.addHandler(_make_handler(logging))
    logging.captureWarnings(True)


class PluginContext:
    """The context object that old-style (Bareos 19 and older) plugins get as
    their first argument and pass back to every bareosdir call."""

    __slots__ = ("__weakref__",)

    def __repr__(self) -> str:
        return "<bareosdir plugin context>"


def legacy_context(module):
    """A context object when the module's load_bareos_plugin is old-style:
    exactly two required positional parameters (context, plugindef)."""
    fn = getattr(module, "load_bareos_plugin", None)
    if fn is None or not callable(fn):
        return None
    code = getattr(fn, "__code__", None)
    if code is not None and hasattr(fn, "__defaults__"):
        # A plain function: read the code object (inspect costs ~1 MB).
        required = code.co_argcount - len(fn.__defaults__ or ())
        if hasattr(fn, "__self__"):
            required -= 1
    else:
        import inspect
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return None
        required = sum(
            1 for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.default is p.empty)
    return PluginContext() if required == 2 else None
