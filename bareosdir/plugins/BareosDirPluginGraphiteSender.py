"""Sends each job's result to Graphite (carbon) in its plaintext protocol
(loader module ``bareos-dir-graphite-sender``).

On JobEnd one line ``<path> <value> <timestamp>`` per metric goes to carbon's
line receiver, with the paths of Bareos's contrib Graphite sender:

    <metricPrefix>.bareos.jobs.<job>.status.success   1, for status T
    <metricPrefix>.bareos.jobs.<job>.status.warning   1, for status W
    <metricPrefix>.bareos.jobs.<job>.status.error     1, for status E and f
    <metricPrefix>.bareos.jobs.<job>.status.other     1, for any other status
    and for status T also
    <metricPrefix>.bareos.jobs.<job>.jobbytes, .jobfiles,
    .runningtime (seconds), .throughput (bytes per second)

``<job>`` is the job's name without the date suffix of its unique name
(``BackupClient1.2026-11-27_03.00.00_05`` -> ``BackupClient1``), with dots
(which separate path levels) and any character other than letters, digits,
``-``, ``_`` and ``:`` replaced by ``_``. Options, names and defaults as in
the contrib plugin:

    collectorHost  carbon's host (graphite)
    collectorPort  its line receiver port (2003)
    metricPrefix   first part of every metric path (apps)
    timeout        seconds for the whole exchange (10)

Override `evaluateJobStatus` (it fills ``metrics``, path below the prefix ->
value) or `transmitResult`.
"""

import re
import time

import bareosdir
import bareosdir_monitor
import bareosdir_netio
from bareosdir_monitor import Option

_STATUS_METRIC = {"T": "success", "W": "warning", "E": "error",
                  "f": "error"}
_UNSAFE = re.compile(r"[^\w:-]", re.UNICODE)


def metric_name(text):
    """`text` as one level of a Graphite metric path."""
    return _UNSAFE.sub("_", text) or "_"


def metric_prefix(value):
    if not value or any(c.isspace() for c in value) or "\0" in value:
        raise ValueError("empty or containing white space")
    return value.strip(".")


def format_value(value):
    value = float(value)
    if value.is_integer():
        return "%d" % value
    return repr(value)


class BareosDirPluginGraphiteSender(bareosdir_monitor.MonitoringPlugin):
    """Sends the job result to carbon's plaintext line receiver."""

    LABEL = "bareos-dir-graphite-sender"
    OPTIONS = {
        "collectorHost": Option("graphite"),
        "collectorPort": Option(2003, bareosdir_monitor.port),
        "metricPrefix": Option("apps", metric_prefix),
        "timeout": bareosdir_monitor.TIMEOUT,
    }

    def report(self):
        self.evaluateJobStatus()
        self.transmitResult()

    def evaluateJobStatus(self, *context):
        job = "bareos.jobs.%s" % metric_name(self.job_base_name())
        self.metrics = {}
        status = _STATUS_METRIC.get(self.jobStatus, "other")
        self.metrics["%s.status.%s" % (job, status)] = 1
        if self.jobStatus == "T":
            self.metrics[job + ".jobbytes"] = self.jobBytes
            self.metrics[job + ".jobfiles"] = self.jobFiles
            self.metrics[job + ".runningtime"] = self.jobRunningTime
            self.metrics[job + ".throughput"] = self.throughput
        bareosdir.DebugMessage(100, "%s: metrics %s\n"
                               % (self.LABEL, self.metrics))

    def lines(self, timestamp=None):
        """The plaintext protocol's lines for ``self.metrics``."""
        stamp = int(time.time() if timestamp is None else timestamp)
        return "".join("%s.%s %s %d\n" % (self.metricPrefix, path,
                                          format_value(value), stamp)
                       for path, value in self.metrics.items())

    def transmitResult(self, *context):
        where = "%s:%d" % (self.collectorHost, self.collectorPort)
        bareosdir.DebugMessage(100, "%s: sending %d metrics to %s\n"
                               % (self.LABEL, len(self.metrics), where))
        deadline = bareosdir_netio.Deadline(self.timeout)
        try:
            sock = bareosdir_netio.connect(self.collectorHost,
                                           self.collectorPort, deadline)
            try:
                bareosdir_netio.send_all(
                    sock, self.lines().encode("utf-8"), deadline)
            finally:
                sock.close()
        except OSError as error:
            self.warn("could not send metrics to carbon at %s: %s"
                      % (where,
                         bareosdir_netio.describe_error(error, self.timeout)))
