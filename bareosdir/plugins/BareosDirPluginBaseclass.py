"""The base class of class-based Director plugins.

A plugin class derives from `BareosDirPluginBaseclass`, its loader module
installs an instance as ``BareosDirWrapper.bareos_dir_plugin_object`` in
``load_bareos_plugin``, and `BareosDirWrapper` forwards the Director's calls
to the instance's methods. The base class registers the job events, reads
the job's values and on JobEnd computes times and throughput, so a subclass
only adds what it does with them (see the bundled monitoring plugins).

Attributes, as in Bareos's own base class:

- from the constructor: ``jobName`` (the unique job name, with its date
  suffix), ``jobLevel`` (one character, ``"F"``), ``jobType`` (the
  character code as int, ``66`` for ``"B"``), ``jobId`` (int),
  ``jobClient``, ``jobStatus`` (one character), ``Priority`` (int);
- from ``parse_plugin_definition``: ``options``, a dict of every
  ``key=value`` with a non-empty value;
- wall-clock times (``time.time()``) ``jobInitTime``, ``jobStartTime``,
  ``jobRunTime``, ``jobEndTime`` when those events arrive (None before);
- on JobEnd: ``jobLevel``, ``jobStatus`` (read again), ``jobErrors``,
  ``jobBytes``, ``jobFiles``, ``jobNumVols`` (ints), ``jobPool``,
  ``jobStorage``, ``jobMediaType`` (str, or None where the job has none),
  ``jobTotalTime`` (end - init), ``jobRunningTime`` (end - run) in seconds
  and ``throughput`` (bytes per running second, 0 when the running time
  is 0).

A value the Director does not answer is None (a character or a string) or
0 (a count), where Bareos's class raised.

Both calling conventions are accepted: the current one,
``BareosDirPluginBaseclass(plugindef)``, ``parse_plugin_definition(plugindef)``
and ``handle_plugin_event(event)``, and the one of Bareos 19 and older with a
context first, ``BareosDirPluginBaseclass(context, plugindef)`` and so on.
The context is not needed here: the ``bareosdir`` functions find the
instance without it.

Option values of secret keys are shown as ``****`` in debug messages, by
the host's own rule: a key is secret when it contains, in any case, one of
`SECRET_WORDS` (password, passwd, pass, pwd, secret, token, key,
credential, auth).
"""

import time

import bareosdir
from bareosdir import _bareosdir

# Keys whose values debug output never shows: one definition, the host's
# (csrc/options.c), so the host's options line and ours agree.
SECRET_WORDS = _bareosdir._SECRET_WORDS

_EVENT_NAMES = {
    bareosdir.bDirEventJobStart: "JobStart",
    bareosdir.bDirEventJobEnd: "JobEnd",
    bareosdir.bDirEventJobInit: "JobInit",
    bareosdir.bDirEventJobRun: "JobRun",
}


def _without_context(args, function, name):
    """The one real argument of the current form ``(x)`` or of the legacy
    form ``(context, x)``."""
    if len(args) == 1:
        return args[0]
    if len(args) == 2:
        return args[1]
    raise TypeError("%s() takes (%s) or (context, %s), not %d arguments"
                    % (function, name, name, len(args)))


def split_options(plugindef):
    """``"a=1:b=x\\:y:"`` -> [("a", "1"), ("b", "x:y")], in order; pieces
    without ``=`` come back with an empty value."""
    pairs = []
    for piece in _split_unescaped(plugindef or ""):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        pairs.append((key, value.replace("\\:", ":")))
    return pairs


def _split_unescaped(text):
    """Splits at every ":" not preceded by a backslash."""
    pieces, start, i = [], 0, text.find(":")
    while i >= 0:
        if i == 0 or text[i - 1] != "\\":
            pieces.append(text[start:i])
            start = i + 1
        i = text.find(":", i + 1)
    pieces.append(text[start:])
    return pieces


def redacted(key, value):
    return "****" if _bareosdir._is_secret_key(key) else value


def describe_options(options):
    """``options`` for a debug message, secret values hidden."""
    return ", ".join("%s=%s" % (key, redacted(key, value))
                     for key, value in options.items())


def _get(var):
    return bareosdir.GetValue(var)


def _get_char(var):
    """A character-code variable as a one-character str (None if unset)."""
    value = bareosdir.GetValue(var)
    if isinstance(value, int) and 0 < value < 0x110000:
        return chr(value)
    return None


def _get_int(var):
    value = bareosdir.GetValue(var)
    return value if isinstance(value, int) else 0


class BareosDirPluginBaseclass(object):
    """Bareos Director Python plugin base class."""

    def __init__(self, *args):
        # The options string is parsed by parse_plugin_definition, which the
        # host calls next; here only the arguments are checked.
        _without_context(args, "BareosDirPluginBaseclass", "plugindef")
        bareosdir.DebugMessage(
            100, "%s.%s: constructing\n"
            % (type(self).__module__, type(self).__name__))
        self.options = {}
        self.jobInitTime = None
        self.jobStartTime = None
        self.jobRunTime = None
        self.jobEndTime = None
        bareosdir.RegisterEvents([
            bareosdir.bDirEventJobStart,
            bareosdir.bDirEventJobEnd,
            bareosdir.bDirEventJobInit,
            bareosdir.bDirEventJobRun,
        ])
        self.jobName = _get(bareosdir.bDirVarJobName)
        self.jobLevel = _get_char(bareosdir.bDirVarLevel)
        self.jobType = _get(bareosdir.bDirVarType)
        self.jobId = _get_int(bareosdir.bDirVarJobId)
        self.jobClient = _get(bareosdir.bDirVarClient)
        self.jobStatus = _get_char(bareosdir.bDirVarJobStatus)
        self.Priority = _get_int(bareosdir.bDirVarPriority)
        bareosdir.DebugMessage(
            100, "JobName = %s - level = %s - type = %s - Id = %s - "
            "Client = %s - jobStatus = %s - Priority = %s\n"
            % (self.jobName, self.jobLevel, self.jobType, self.jobId,
               self.jobClient, self.jobStatus, self.Priority))

    def __str__(self):
        return "<%s: jobName=%s jobId=%s client=%s>" % (
            type(self).__name__, self.jobName, self.jobId, self.jobClient)

    def parse_plugin_definition(self, *args):
        """Fill ``self.options`` from the options string.

        Override it to check your options, calling this first (as
        ``super().parse_plugin_definition(plugindef)``); return
        ``bareosdir.bRC_Error`` to refuse them.
        """
        plugindef = _without_context(args, "parse_plugin_definition",
                                     "plugindef")
        self.options = {}
        for key, value in split_options(plugindef):
            if value == "":
                continue
            self.options[key] = value
        bareosdir.DebugMessage(
            100, "%s options: %s\n"
            % (type(self).__name__, describe_options(self.options)))
        return bareosdir.bRC_OK

    def handle_plugin_event(self, *args):
        """Record the event's time; on JobEnd read the job's results.

        Override it to act on events, calling this first so that the
        attributes are up to date.
        """
        event = _without_context(args, "handle_plugin_event", "event")
        now = time.time()
        if event == bareosdir.bDirEventJobInit:
            self.jobInitTime = now
            self.jobStatus = _get_char(bareosdir.bDirVarJobStatus)
        elif event == bareosdir.bDirEventJobStart:
            self.jobStartTime = now
            self.jobStatus = _get_char(bareosdir.bDirVarJobStatus)
        elif event == bareosdir.bDirEventJobRun:
            self.jobRunTime = now
        elif event == bareosdir.bDirEventJobEnd:
            self.jobEndTime = now
            self._read_job_results()
        if event in _EVENT_NAMES:
            bareosdir.DebugMessage(
                100, "%s: %s at %.3f\n"
                % (type(self).__name__, _EVENT_NAMES[event], now))
        return bareosdir.bRC_OK

    def _read_job_results(self):
        self.jobLevel = _get_char(bareosdir.bDirVarLevel)
        self.jobStatus = _get_char(bareosdir.bDirVarJobStatus)
        self.jobErrors = _get_int(bareosdir.bDirVarJobErrors)
        self.jobBytes = _get_int(bareosdir.bDirVarJobBytes)
        self.jobFiles = _get_int(bareosdir.bDirVarJobFiles)
        self.jobNumVols = _get_int(bareosdir.bDirVarNumVols)
        self.jobPool = _get(bareosdir.bDirVarPool)
        self.jobStorage = _get(bareosdir.bDirVarStorage)
        self.jobMediaType = _get(bareosdir.bDirVarMediaType)
        end = self.jobEndTime
        # An event this instance did not see (it was created after it) counts
        # from the next one it did see.
        init = _first(self.jobInitTime, self.jobStartTime, self.jobRunTime,
                      end)
        run = _first(self.jobRunTime, self.jobInitTime, self.jobStartTime,
                     end)
        self.jobTotalTime = max(0.0, end - init)
        self.jobRunningTime = max(0.0, end - run)
        self.throughput = 0
        if self.jobRunningTime > 0:
            self.throughput = self.jobBytes / self.jobRunningTime
        bareosdir.DebugMessage(
            100, "%s: job %s ended: status %s, level %s, %d errors, %d files, "
            "%d bytes, running %.3f s of %.3f s, %.0f bytes/s\n"
            % (type(self).__name__, self.jobName, self.jobStatus,
               self.jobLevel, self.jobErrors, self.jobFiles, self.jobBytes,
               self.jobRunningTime, self.jobTotalTime, self.throughput))


def _first(*values):
    for value in values:
        if value is not None:
            return value
    return None
