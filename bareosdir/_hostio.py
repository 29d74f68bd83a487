"""Routes a plugin interpreter's output to the Director.

The Director's own stdout is closed, so nothing a plugin prints may go
there.  The mapping (documented in the README):

* ``sys.stdout``: a debug message at level 100 per line;
* ``sys.stderr``: a job message M_WARNING per write of whole lines;
* ``logging``: records of level ERROR and above -> M_ERROR, WARNING ->
  M_WARNING, INFO -> M_INFO, below -> debug level 200;
* ``warnings``: through ``logging.captureWarnings`` -> M_WARNING.

With no job context (a thread the plugin left running after its job) the
text goes to the Director's log (a message with no job).  With no Director
at all it goes to the process's original stderr.
"""

from __future__ import annotations

import inspect
import io
import logging
import sys

from . import _bareosdir

STDOUT_DEBUG_LEVEL = 100
LOG_DEBUG_LEVEL = 200


def _send(is_job: bool, kind: int, text: str) -> None:
    if not _bareosdir._message(is_job, kind, text):
        try:
            sys.__stderr__.write(text if text.endswith("\n") else text + "\n")
        except Exception:  # the process's stderr may be closed as well
            pass


class DirectorStream(io.TextIOBase):
    """A text stream whose complete lines become Director messages."""

    def __init__(self, name: str, is_job: bool, kind: int) -> None:
        super().__init__()
        self.name = name
        self._is_job = is_job
        self._kind = kind
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        text = self._pending + s
        head, sep, tail = text.rpartition("\n")
        self._pending = tail
        if sep:
            _send(self._is_job, self._kind, head)
        return len(s)

    def flush(self) -> None:
        if self._pending:
            text, self._pending = self._pending, ""
            _send(self._is_job, self._kind, text)


class DirectorHandler(logging.Handler):
    """A logging handler that writes records as Director messages."""

    def emit(self, record: logging.LogRecord) -> None:
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


def install() -> None:
    """Called by the host in every interpreter that runs plugins."""
    sys.stdout = DirectorStream("<director stdout>", False, STDOUT_DEBUG_LEVEL)
    sys.stderr = DirectorStream("<director stderr>", True, _bareosdir.M_WARNING)
    root = logging.getLogger()
    if not any(isinstance(h, DirectorHandler) for h in root.handlers):
        handler = DirectorHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(handler)
    logging.captureWarnings(True)


class PluginContext:
    """The context object that old-style (Bareos 19 and older) plugins get as
    their first argument and pass back to every bareosdir call."""

    __slots__ = ("__weakref__",)

    def __repr__(self) -> str:
        return "<bareosdir plugin context>"


def legacy_context(module) -> PluginContext | None:
    """A context object when the module's load_bareos_plugin is old-style:
    exactly two required positional parameters (context, plugindef)."""
    fn = getattr(module, "load_bareos_plugin", None)
    if fn is None or not callable(fn):
        return None
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    required = [
        p for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.default is p.empty
    ]
    return PluginContext() if len(required) == 2 else None
