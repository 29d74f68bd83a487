"""A mock Bareos Director for testing plugins without a Director.

It runs jobs through the same PluginFunctions table (newPlugin,
handlePluginEvent, freePlugin) that bareos-dir calls, with the Director's
rules and threads, and records what the plugins did::

    from bareosdir.testing import Director

    with Director(plugin_dir="/usr/lib/bareos/plugins") as director:
        job = director.job("BackupClient1", client="client1-fd")
        job.run(["python3:module_name=my-plugin:level=debug"],
                status="T", bytes=1_000_000, files=12)
        assert job.messages == []

A plain unit test can also call ``bareosdir`` functions directly, as a
plugin would, by binding its thread to a job::

    with director.job("BackupClient1").bind():
        assert bareosdir.GetValue(bareosdir.bDirVarJob) == "BackupClient1"
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import bareosdir
from . import _bareosdir

__all__ = ["Director", "Job", "JobMessage", "DebugMessage", "Call",
           "PLUGINS_DIR", "STEP_TIMEOUT"]

#: The directory of the framework and bundled plugins shipped with bareosdir.
PLUGINS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins")

#: Seconds a lifecycle step may take before run() gives up on it.
STEP_TIMEOUT = 120.0

_MSG_JOB, _MSG_DEBUG = 1, 2
_NEW_PLUGIN_OPTIONS = bareosdir.bDirEventNewPluginOptions


class JobMessage(NamedTuple):
    type: int
    text: str
    plugin: str | None = None
    instance: int = 0


class DebugMessage(NamedTuple):
    level: int
    text: str
    plugin: str | None = None
    instance: int = 0


class Call(NamedTuple):
    """One call of the Director into a plugin: event 0 is newPlugin, -1
    freePlugin, others handlePluginEvent."""
    plugin: str | None
    instance: int
    event: int
    rc: int


_V = bareosdir.bDirVariable
# keyword -> (variable, kind): 'c' one character code, 'i' int, 's' str
_FIELDS: dict[str, tuple[int, str]] = {
    "level": (_V["bDirVarLevel"], "c"),
    "type": (_V["bDirVarType"], "c"),
    "status": (_V["bDirVarJobStatus"], "c"),
    "fd_status": (_V["bDirVarFDJobStatus"], "c"),
    "sd_status": (_V["bDirVarSDJobStatus"], "c"),
    "client": (_V["bDirVarClient"], "s"),
    "pool": (_V["bDirVarPool"], "s"),
    "storage": (_V["bDirVarWriteStorage"], "s"),
    "write_storage": (_V["bDirVarWriteStorage"], "s"),
    "read_storage": (_V["bDirVarReadStorage"], "s"),
    "catalog": (_V["bDirVarCatalog"], "s"),
    "media_type": (_V["bDirVarMediaType"], "s"),
    "volume_name": (_V["bDirVarVolumeName"], "s"),
    "priority": (_V["bDirVarPriority"], "i"),
    "num_vols": (_V["bDirVarNumVols"], "i"),
    "errors": (_V["bDirVarJobErrors"], "i"),
    "files": (_V["bDirVarJobFiles"], "i"),
    "sd_files": (_V["bDirVarSDJobFiles"], "i"),
    "sd_errors": (_V["bDirVarSDErrors"], "i"),
    "last_rate": (_V["bDirVarLastRate"], "i"),
    "bytes": (_V["bDirVarJobBytes"], "i"),
    "read_bytes": (_V["bDirVarReadBytes"], "i"),
}

# Level names as bareos-dir's configuration takes them (VirtualFull is 'f';
# 'V' is InitCatalog).
_LEVELS = {"full": "F", "incremental": "I", "differential": "D",
           "virtualfull": "f", "base": "B", "since": "S"}


_LEVEL_NAMES = ("Full", "Incremental", "Differential", "VirtualFull", "Base",
                "Since")


class Director:
    """A mock Director bound to this process's bareosdir engine.

    ``plugins`` are the short names of the loaded plugin files; by default
    both ``python`` and ``python3``, as a Director that found both files.
    ``job_message_delay`` (seconds) makes each JobMessage with a job take
    that long inside the Director, as one busy mailing or writing its
    catalog (for tests of plugin threads outliving their job).
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, name: str = "bareos-dir", plugin_dir: str = PLUGINS_DIR,
                 plugins: Sequence[str] = ("python", "python3"),
                 job_message_delay: float = 0.0) -> None:
        self.name = name
        self.plugin_dir = plugin_dir
        self._d = _bareosdir.MockDirector(name, plugin_dir, tuple(plugins))
        if job_message_delay:
            self._d.set_job_message_delay(job_message_delay)
        self._jobs: list[Job] = []
        self._next_jobid = 1
        self._lock = threading.Lock()

    def __enter__(self) -> "Director":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Frees the plugins of every job not yet freed, then unbinds."""
        for job in self._jobs:
            job.free_plugins()
        self._d.close()

    def job(self, name: str = "BackupClient1", jobid: int | None = None,
            **values: Any) -> "Job":
        """A new job of Job resource ``name``; ``values`` as in :meth:`Job.set`
        (defaults: level F, type B, status C, priority 10)."""
        with self._lock:
            if jobid is None:
                jobid = self._next_jobid
            self._next_jobid = max(self._next_jobid, jobid) + 1
        job = Job(self, self._d.job(name, jobid))
        job.set(**values)
        self._jobs.append(job)
        return job

    @property
    def messages(self) -> list[JobMessage]:
        """Job messages sent with no job context (the Director's log)."""
        return [JobMessage(t, text, p, i)
                for kind, t, text, i, p, _f, _l in self._d.messages()
                if kind == _MSG_JOB]

    @property
    def debug_messages(self) -> list[DebugMessage]:
        return [DebugMessage(t, text, p, i)
                for kind, t, text, i, p, _f, _l in self._d.messages()
                if kind == _MSG_DEBUG]


class Job:
    """A job of the mock Director.  Steps can be run one by one
    (:meth:`new_plugins`, :meth:`plugin_options`, :meth:`event`,
    :meth:`free_plugins`) or all at once with :meth:`run`."""

    def __init__(self, director: Director, job: Any) -> None:
        self.director = director
        self._j = job
        self._freed = False
        self._last_contexts: list[tuple[str, int, int]] = []
        self.rcs: dict[str, int] = {}

    @property
    def jobid(self) -> int:
        return self._j.jobid

    # ---- values ----

    def set(self, **values: Any) -> "Job":
        """Sets job values: level ('F' or 'Full'), type, status, fd_status,
        sd_status (one-character codes), client, pool, storage,
        read_storage, catalog, media_type, volume_name (str), priority,
        num_vols, errors, files, sd_files, sd_errors, last_rate, bytes,
        read_bytes (int)."""
        for key, value in values.items():
            if key not in _FIELDS:
                raise TypeError(f"unknown job value {key!r}; known: "
                                f"{', '.join(sorted(_FIELDS))}")
            var, kind = _FIELDS[key]
            if kind == "c":
                if isinstance(value, str):
                    if key == "level" and value.lower() in _LEVELS:
                        value = _LEVELS[value.lower()]
                    if len(value) != 1:
                        if key == "level":
                            raise ValueError(
                                f"level must be one character (F, I, D, f, "
                                f"B, S, ...) or one of "
                                f"{', '.join(_LEVEL_NAMES)} (any case), "
                                f"not {value!r}")
                        raise ValueError(f"{key} must be one character, not {value!r}")
                    value = ord(value)
                self._j.set_int(var, int(value))
            elif kind == "i":
                self._j.set_int(var, int(value))
            else:
                self._j.set_str(var, None if value is None else str(value))
        return self

    def get(self, var: int) -> int | str | None:
        """A job value as the model holds it (by bDirVar number)."""
        return self._j.get(var)

    @property
    def name(self) -> str:
        return self._j.get(_V["bDirVarJobName"])

    @property
    def values_set(self) -> dict[str, Any]:
        """What plugins set with SetValue: JobReport (a count), VolumeName,
        Priority, JobLevel (only those that were set)."""
        w = bareosdir.bwDirVariable
        out: dict[str, Any] = {}
        if self._j.set_count(w["bwDirVarJobReport"]):
            out["JobReport"] = self._j.set_count(w["bwDirVarJobReport"])
        if self._j.set_count(w["bwDirVarVolumeName"]):
            out["VolumeName"] = self._j.get(_V["bDirVarVolumeName"])
        if self._j.set_count(w["bwDirVarPriority"]):
            out["Priority"] = self._j.get(_V["bDirVarPriority"])
        if self._j.set_count(w["bwDirVarJobLevel"]):
            out["JobLevel"] = chr(self._j.get(_V["bDirVarLevel"]))
        return out

    # ---- steps ----

    def new_plugins(self) -> int:
        return self._j.new_plugins()

    def plugin_options(self, options: str) -> int:
        """Dispatches one ``Dir Plugin Options`` string; -1 when the Director
        rejects it (bad instance)."""
        return self._j.plugin_options(options)

    def event(self, event: int) -> int:
        """Delivers one event to every context that registered it."""
        return self._j.event(int(event))

    def free_plugins(self) -> int:
        if self._freed:
            return 0
        self._freed = True
        # What the contexts had registered stays readable after the free.
        self._last_contexts = self._j.contexts()
        return self._j.free_plugins()

    def cancel(self) -> None:
        self._j.cancel()

    def run(self, options: Iterable[str] = (), status: str = "T",
            threads: bool = True, run_time: float = 0.0,
            **end_values: Any) -> "Job":
        """Runs the whole lifecycle as the Director does: NewPlugins, the
        option strings, JobStart and JobInit on a setup thread; status 'R',
        JobRun, ``run_time`` seconds (plugins time the job with their own
        clocks), then ``status`` and ``end_values`` and JobEnd on the job's
        thread; freePlugin on a third thread.  Answers are in ``rcs``."""
        if not 0 <= run_time <= 3600:
            raise ValueError(f"run_time must be 0 to 3600 seconds, not {run_time!r}")
        options = [options] if isinstance(options, str) else list(options)
        E = bareosdir.bDirEventType

        def setup() -> None:
            self.rcs["new_plugins"] = self.new_plugins()
            for i, opt in enumerate(options):
                self.rcs[f"options[{i}]"] = self.plugin_options(opt)
            self.rcs["JobStart"] = self.event(E["bDirEventJobStart"])
            self.rcs["JobInit"] = self.event(E["bDirEventJobInit"])

        def job() -> None:
            self.set(status="R")
            self.rcs["JobRun"] = self.event(E["bDirEventJobRun"])
            if run_time:
                time.sleep(run_time)
            self.set(status=status, **end_values)
            self.rcs["JobEnd"] = self.event(E["bDirEventJobEnd"])

        def free() -> None:
            self.rcs["free_plugins"] = self.free_plugins()

        # Each step's thread lives until the job is freed, like the
        # Director's console and job threads (and so no two steps can share
        # a recycled thread id).
        done = threading.Event()
        try:
            for step in (setup, job, free):
                if threads:
                    _run_on_thread(step, f"bareos-{step.__name__}-{self.jobid}", done)
                else:
                    step()
        finally:
            done.set()
        return self

    # ---- what happened ----

    @property
    def messages(self) -> list[JobMessage]:
        """Job messages of this job, in order."""
        return [JobMessage(t, text, p, i)
                for kind, t, text, i, p, _f, _l in self._j.messages()
                if kind == _MSG_JOB]

    @property
    def debug_messages(self) -> list[DebugMessage]:
        return [DebugMessage(t, text, p, i)
                for kind, t, text, i, p, _f, _l in self._j.messages()
                if kind == _MSG_DEBUG]

    @property
    def calls(self) -> list[Call]:
        return [Call(*c) for c in self._j.calls()]

    def events(self, instance: int | None = None,
               plugin: str | None = None) -> set[int]:
        """The event numbers the plugin's ``handle_plugin_event`` received
        in this job (a set; order and repeats are in :attr:`calls`).

        Without ``plugin``/``instance``: the context that ran a plugin (got
        a ``Dir Plugin Options`` string); a ``ValueError`` when several did
        and the arguments leave it open, a ``KeyError`` when none did.  The
        host's own registration of bDirEventNewPluginOptions (11) is not in
        the answer: the host handles that event itself (the options go to
        ``parse_plugin_definition``), never through
        ``handle_plugin_event``."""
        calls = self.calls
        known = {(p, i) for p, i in self.contexts}
        if plugin is not None and instance is not None:
            if (plugin, instance) not in known:
                raise KeyError(f"no context {plugin}:instance={instance} "
                               f"in this job; contexts: {sorted(known)}")
            key = (plugin, instance)
        else:
            ran = sorted({(c.plugin, c.instance) for c in calls
                          if c.event == _NEW_PLUGIN_OPTIONS
                          and (plugin is None or c.plugin == plugin)
                          and (instance is None or c.instance == instance)})
            if not ran:
                raise KeyError(
                    "no plugin ran in this job"
                    + (f" for plugin={plugin!r}" if plugin is not None else "")
                    + (f" instance={instance}" if instance is not None else "")
                    + f"; contexts: {sorted(known)}")
            if len(ran) > 1:
                raise ValueError(
                    "several contexts ran a plugin in this job "
                    f"({', '.join(f'{p}:instance={i}' for p, i in ran)}): "
                    "say which with plugin= and instance=")
            key = ran[0]
        return {c.event for c in calls
                if (c.plugin, c.instance) == key
                and c.event not in (0, -1, _NEW_PLUGIN_OPTIONS)}

    def registered(self, instance: int = 0, plugin: str = "python") -> set[int]:
        """The event numbers a context has registered with the Director
        (the host's own 11 included): the Director's bitmask, read at
        the end of the job or now."""
        for p, inst, mask in self._j.contexts() or self._last_contexts:
            if p == plugin and inst == instance:
                return {n for n in range(64) if mask >> n & 1}
        raise KeyError(f"no context {plugin}:instance={instance} in this job")

    @property
    def contexts(self) -> list[tuple[str, int]]:
        return [(p, i) for p, i, _m in self._j.contexts() or self._last_contexts]

    @property
    def fatal_count(self) -> int:
        return self._j.counts()[0]

    @property
    def error_count(self) -> int:
        return self._j.counts()[1]

    @property
    def warning_count(self) -> int:
        return self._j.counts()[2]

    @contextlib.contextmanager
    def bind(self) -> Iterator["Job"]:
        """Makes ``bareosdir`` calls made on this thread answer for this job,
        for unit tests that call plugin code directly."""
        previous = self._j.bind()
        try:
            yield self
        finally:
            self._j.unbind(previous)


def _run_on_thread(fn: Any, name: str, linger: threading.Event) -> None:
    errors: list[BaseException] = []
    finished = threading.Event()

    def target() -> None:
        try:
            fn()
        except BaseException as e:  # handed to the caller below
            errors.append(e)
        finally:
            finished.set()
        linger.wait(STEP_TIMEOUT)

    t = threading.Thread(target=target, name=name, daemon=True)
    t.start()
    if not finished.wait(STEP_TIMEOUT):
        raise TimeoutError(f"{name} did not finish within {STEP_TIMEOUT} s")
    if errors:
        raise errors[0]
