"""Reports each job's result to Icinga or Nagios as a passive service check,
through NSCA (loader module ``bareos-dir-nsca-sender``).

On JobEnd the job status becomes the check state (T -> OK; W, and A for a
canceled job -> WARNING; E and f -> CRITICAL; anything else -> UNKNOWN), with
a message naming the job, client, id, level, errors, bytes, files and status,
and performance data (errors, bytes, files, throughput, running and total
time). Options, names and defaults as in Bareos's contrib NSCA sender:

    monitorHost   the nsca server (required)
    monitorPort   its port (5667)
    checkHost     host name of the check result (bareos)
    checkService  service name of the check result (backup_job)
    encryption    0 none, 1 XOR (1, nsca's default)
    password      nsca's password (none)
    timeout       seconds for the whole exchange (10)

Override `evaluateJobStatus` to change the state or text (it sets
``nagiosResult``, ``nagiosMessage`` and ``perfstring``) and
`transmitResult` to send it another way.
"""

import bareosdir
import bareosdir_monitor
import bareosdir_netio
import bareosdir_nsca
from bareosdir_monitor import Option

# Job status -> (Nagios return code, the state's name that starts the text).
_STATES = {
    "T": (bareosdir_nsca.OK, "OK"),
    "W": (bareosdir_nsca.WARNING, "WARNING"),
    "A": (bareosdir_nsca.WARNING, "WARNING"),
    "E": (bareosdir_nsca.CRITICAL, "CRITICAL"),
    "f": (bareosdir_nsca.CRITICAL, "CRITICAL"),
}


class BareosDirPluginNscaSender(bareosdir_monitor.MonitoringPlugin):
    """Sends the job result to an nsca server."""

    LABEL = "bareos-dir-nsca-sender"
    OPTIONS = {
        "monitorHost": Option(None, required=True),
        "monitorPort": Option(5667, bareosdir_monitor.port),
        "checkHost": Option("bareos"),
        "checkService": Option("backup_job"),
        "encryption": Option(bareosdir_nsca.ENCRYPT_XOR,
                             bareosdir_monitor.one_of(
                                 *bareosdir_nsca.SUPPORTED_ENCRYPTION)),
        "password": Option(None, secret=True),
        "timeout": bareosdir_monitor.TIMEOUT,
    }

    def report(self):
        self.evaluateJobStatus()
        self.transmitResult()

    def evaluateJobStatus(self, *context):
        summary = (
            "Bareos job %s on %s with id %d level %s, %d errors, "
            "%d jobBytes, %d files terminated with status %s"
            % (self.jobName, self.jobClient, self.jobId, self.jobLevel,
               self.jobErrors, self.jobBytes, self.jobFiles, self.jobStatus))
        state, name = _STATES.get(self.jobStatus,
                                  (bareosdir_nsca.UNKNOWN, "UNKNOWN"))
        self.nagiosResult = state
        self.nagiosMessage = "%s: %s" % (name, summary)
        if self.jobStatus == "A":
            self.nagiosMessage += " CANCELED"
        # Nagios plugin performance data: label=value[unit];warn;crit;min;max
        self.perfstring = (
            "|Errors=%d;;;; Bytes=%dB;;;; Files=%d;;;; Throughput=%d;;;; "
            "jobRuntime=%ds;;;; jobTotalTime=%ds;;;;"
            % (self.jobErrors, self.jobBytes, self.jobFiles,
               round(self.throughput), round(self.jobRunningTime),
               round(self.jobTotalTime)))
        bareosdir.DebugMessage(100, "%s: state %d, %s%s\n" % (
            self.LABEL, self.nagiosResult, self.nagiosMessage,
            self.perfstring))

    def plugin_output(self):
        """Message and performance data, cut to what nsca carries: the
        message is shortened rather than the performance data."""
        room = bareosdir_nsca.OUTPUT_SIZE - 1 - len(
            self.perfstring.encode("utf-8"))
        message = bareosdir_nsca.fit(self.nagiosMessage, room + 1)
        return message.decode("utf-8") + self.perfstring

    def transmitResult(self, *context):
        where = "%s:%d" % (self.monitorHost, self.monitorPort)
        bareosdir.DebugMessage(
            100, "%s: sending check result for %s/%s to %s, encryption %d, "
            "timeout %g s\n" % (self.LABEL, self.checkHost,
                                self.checkService, where, self.encryption,
                                self.timeout))
        try:
            bareosdir_nsca.send_service_check(
                self.monitorHost, self.monitorPort, self.checkHost,
                self.checkService, self.nagiosResult, self.plugin_output(),
                encryption=self.encryption, password=self.password,
                timeout=self.timeout)
        except (OSError, ValueError) as error:
            self.warn("could not send the check result to nsca at %s: %s"
                      % (where,
                         bareosdir_netio.describe_error(error, self.timeout)))
