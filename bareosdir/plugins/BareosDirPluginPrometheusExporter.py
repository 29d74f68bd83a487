"""Pushes each job's result to a Prometheus Pushgateway (loader module
``bareos-dir-prometheus-exporter``), with Debian's python3-prometheus-client.

On JobEnd a fresh CollectorRegistry gets the metrics of Bareos's contrib
exporter, each labelled with ``instance`` (the job's name without the date
suffix of its unique name), ``jobid`` and ``client``:

    bareos_job_status        Enum: Terminated, Error, Fatal error, ...
    bareos_job_running_time  Histogram of the running time in seconds
    bareos_job_files         Gauge
    bareos_job_bytes         Gauge
    bareos_job_throughput    Gauge, bytes per running second
    bareos_job_priority      Gauge
    bareos_job_level         Enum: Full, Incremental, Differential, ...
    bareos_job_type          Enum: Backup, Restore, ...
    bareos_job_client        Info {client="..."}, exposed as
                             bareos_job_client_info (labels instance, jobid)

and push_to_gateway replaces the group ``job="bareos"``,
``instance="<job name>"`` with them, so the gateway keeps the last run of
every job. Options, names and defaults as in the contrib plugin:

    gateway_host   the Pushgateway's host (localhost); an http:// or
                   https:// URL is accepted too
    gateway_port   its port (9091)
    use_tls        https instead of http (no); the server's certificate is
                   checked against the system's CAs (SSL_CERT_FILE applies)
    username       with password: HTTP basic auth (none)
    password
    report_failed  push jobs that failed too, status E, f or A (no)
    timeout        seconds for the whole push (10)

The push connects directly, never through an HTTP proxy.
"""

import base64
import ssl
import urllib.parse

import bareosdir
import bareosdir_monitor
import bareosdir_netio
from bareosdir_monitor import Option

# Without the library the plugin warns in every job instead of failing it.
try:
    from prometheus_client import (CollectorRegistry, Enum, Gauge, Histogram,
                                   Info, push_to_gateway)
    _IMPORT_ERROR = None
except ImportError as error:
    _IMPORT_ERROR = error

# State names as the contrib exporter publishes them (dashboards match on
# them), spelling included; codes from Bareos's job_level.h, job_types.h
# and jcr status letters.
JOB_LEVELS = {
    "F": "Full", "I": "Incremental", "D": "Differential", "S": "Unknown",
    "C": "Verify catalog", "V": "Verify init",
    "O": "Verfiy volume to catalog", "d": "Verify disk to catalog",
    "A": "Verify Data", "B": "Base", " ": "None", "f": "Virtual full",
}
JOB_STATUS = {
    "A": "Canceled", "B": "Blocked", "C": "Created", "D": "Differences",
    "E": "Error", "F": "Wait FD", "I": "Incomplete", "L": "Commiting data",
    "M": "Wait mount", "R": "Running", "S": "Wait SD", "T": "Terminated",
    "W": "Warning", "a": "SD despooling", "c": "Wait FD resource",
    "d": "Wait max jobs", "e": "Non-fatal error", "f": "Fatal error",
    "i": "Attr insertion", "j": "Wait job resource", "l": "Despooling",
    "m": "Wait media", "p": "Wait priority", "q": "Wait device",
    "s": "Wait SD resource", "t": "Wait start time",
}
JOB_TYPES = {
    "B": "Backup", "M": "Backup migrated", "V": "Verify", "R": "Restore",
    "U": "Console", "I": "Internal", "D": "Admin", "A": "Archive",
    "C": "Copy of a job", "c": "Copy job", "g": "Migration", "S": "Scan",
    "O": "Consolidate",
}
# For a code missing from a table.
UNKNOWN = "Unknown"
FAILED_STATUS = ("E", "f", "A")
TIME_BUCKETS = (6, 60, 600, 1800, 3600, 10800, 18000, 28800, 86400)
LABELS = ("instance", "jobid", "client")


def _states(table):
    states = list(dict.fromkeys(table.values()))
    if UNKNOWN not in states:
        states.append(UNKNOWN)
    return states


def http_handler(username=None, password=None):
    """A push_to_gateway handler doing the whole HTTP exchange under one
    deadline of `timeout` seconds (urllib bounds each socket call only), with
    HTTP basic auth when `username` and `password` are given."""

    def handler(url, method, timeout, headers, data):
        def handle():
            extra = list(headers)
            if username is not None and password is not None:
                token = base64.b64encode(
                    ("%s:%s" % (username, password)).encode("utf-8"))
                extra.append(("Authorization",
                              "Basic " + token.decode("ascii")))
            status, reason, body = http_request(
                url, method, extra, data, timeout)
            if status >= 400:
                raise OSError("the Pushgateway answered HTTP %d %s%s"
                              % (status, reason,
                                 (": " + body) if body else ""))
        return handle

    return handler


def http_request(url, method, headers, data, timeout):
    """(status, reason, start of the body) of one HTTP/1.1 request."""
    parts = urllib.parse.urlsplit(url)
    tls = parts.scheme == "https"
    host = parts.hostname
    port = parts.port or (443 if tls else 80)
    deadline = bareosdir_netio.Deadline(timeout)
    sock = bareosdir_netio.connect(host, port, deadline)
    try:
        if tls:
            context = ssl.create_default_context()
            deadline.arm(sock)
            sock = context.wrap_socket(sock, server_hostname=host)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        head = ["%s %s HTTP/1.1" % (method, target),
                "Host: %s" % parts.netloc,
                "User-Agent: bareos-dir-prometheus-exporter",
                "Content-Length: %d" % len(data),
                "Connection: close"]
        head += ["%s: %s" % (key, value) for key, value in headers]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data
        bareosdir_netio.send_all(sock, request, deadline)
        response = b""
        while b"\r\n\r\n" not in response and len(response) < 65536:
            deadline.arm(sock)
            chunk = sock.recv(4096)
            if not chunk:
                break
            response += chunk
    finally:
        sock.close()
    status_line, _, rest = response.partition(b"\r\n")
    fields = status_line.decode("latin-1").split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") \
            or not fields[1].isdigit():
        raise OSError("no HTTP answer from the Pushgateway")
    body = rest.partition(b"\r\n\r\n")[2]
    return (int(fields[1]), fields[2] if len(fields) > 2 else "",
            body[:200].decode("utf-8", "replace").strip())


class BareosDirPluginPrometheusExporter(bareosdir_monitor.MonitoringPlugin):
    """Pushes the job's metrics to a Prometheus Pushgateway."""

    LABEL = "bareos-dir-prometheus-exporter"
    OPTIONS = {
        "gateway_host": Option("localhost"),
        "gateway_port": Option(9091, bareosdir_monitor.port),
        "use_tls": Option(False, bareosdir_monitor.boolean),
        "username": Option(None),
        "password": Option(None, secret=True),
        "report_failed": Option(False, bareosdir_monitor.boolean),
        "timeout": bareosdir_monitor.TIMEOUT,
    }

    def check_options(self):
        # A URL is accepted for the host (its colons written \:), as the
        # Pushgateway is usually known by one.
        if "://" in (self.gateway_host or ""):
            url = urllib.parse.urlsplit(self.gateway_host)
            if url.scheme not in ("http", "https") or not url.hostname:
                self.problem("option gateway_host=%s is invalid: not a host "
                             "name or an http(s) URL" % self.gateway_host)
                return
            self.use_tls = self.use_tls or url.scheme == "https"
            if url.port and "gateway_port" not in self.options:
                self.gateway_port = url.port
            self.gateway_host = url.hostname
        if _IMPORT_ERROR is not None:
            self.problem("the Python module prometheus_client is missing "
                         "(install python3-prometheus-client): %s"
                         % _IMPORT_ERROR)
        self.use_basic_auth = (self.username is not None
                               and self.password is not None)
        if (self.username is None) != (self.password is None):
            self.warn("basic auth needs both username and password; "
                      "pushing without it")
        bareosdir.DebugMessage(
            100, "%s: basic auth %s\n" % (
                self.LABEL, "as user %s" % self.username
                if self.use_basic_auth else "off"))

    @property
    def gateway(self):
        host = self.gateway_host
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host
        return "%s://%s:%d" % ("https" if self.use_tls else "http", host,
                               self.gateway_port)

    def report(self):
        self.push_job_information()

    def registry(self):
        """A CollectorRegistry holding this job's metrics."""
        registry = CollectorRegistry()
        job_name = self.job_base_name()
        labels = {"instance": job_name, "jobid": str(self.jobId),
                  "client": self.jobClient or ""}

        def enum(name, doc, table, code):
            metric = Enum(name, doc, labelnames=LABELS,
                          states=_states(table), registry=registry)
            metric.labels(**labels).state(table.get(code, UNKNOWN))

        def gauge(name, doc, value):
            Gauge(name, doc, labelnames=LABELS,
                  registry=registry).labels(**labels).set(value)

        job_type = (chr(self.jobType) if isinstance(self.jobType, int)
                    and 0 < self.jobType < 0x110000 else None)
        enum("bareos_job_status", "Job status", JOB_STATUS, self.jobStatus)
        enum("bareos_job_level", "Job level", JOB_LEVELS, self.jobLevel)
        enum("bareos_job_type", "Job type", JOB_TYPES, job_type)
        Histogram("bareos_job_running_time", "Job running time in seconds",
                  labelnames=LABELS, buckets=TIME_BUCKETS,
                  registry=registry).labels(**labels).observe(
                      self.jobRunningTime)
        gauge("bareos_job_files", "Files in the job", self.jobFiles)
        gauge("bareos_job_bytes", "Bytes in the job", self.jobBytes)
        gauge("bareos_job_throughput",
              "Bytes per second of the job's running time", self.throughput)
        gauge("bareos_job_priority", "Job priority", self.Priority)
        Info("bareos_job_client", "The job's client",
             labelnames=("instance", "jobid"), registry=registry).labels(
                 instance=job_name, jobid=str(self.jobId)).info(
                     {"client": self.jobClient or ""})
        return registry

    def push_job_information(self, *context):
        if self.jobStatus in FAILED_STATUS and not self.report_failed:
            bareosdir.DebugMessage(
                100, "%s: job status %s, failed jobs are not pushed "
                "(report_failed is off)\n" % (self.LABEL, self.jobStatus))
            return
        registry = self.registry()
        bareosdir.DebugMessage(100, "%s: pushing metrics to %s\n"
                               % (self.LABEL, self.gateway))
        handler = http_handler(
            self.username if self.use_basic_auth else None,
            self.password if self.use_basic_auth else None)
        try:
            push_to_gateway(self.gateway, job="bareos", registry=registry,
                            grouping_key={"instance": self.job_base_name()},
                            timeout=self.timeout, handler=handler)
        except (OSError, ValueError) as error:
            self.warn("could not push metrics to the Pushgateway at %s: %s"
                      % (self.gateway,
                         bareosdir_netio.describe_error(error, self.timeout)))
