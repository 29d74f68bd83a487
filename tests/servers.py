"""Start and stop the real monitoring servers the bundled plugins talk to.

Each class runs the Debian package's own daemon in the foreground on
127.0.0.1, on a free port, with configuration, state and logs in a private
directory, and stops it again: `NscaServer` (package nsca), `Pushgateway`
(prometheus-pushgateway) and `CarbonCache` (graphite-carbon). Nothing here
listens on or connects to any other address. Use them as context managers;
`start()` waits (bounded) until the port accepts connections and raises
`ServerError` with the server's log if it does not. `missing_reason()` says
why a server cannot run here (its package is not installed), for
`pytest.fail`: a test that cannot run fails.

For the failure tests, `MisbehavingServer` is a local server that accepts
and then stays silent, trickles or hangs up, and `closed_port()` a port
where nothing listens. `Simulator` runs bareosdir-sim with the built shim
(tests "through the shim"), and `forget_plugin_modules()` keeps unit tests
from leaving plugin modules in the test process's sys.modules.
"""

import base64
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections import namedtuple

SYSTEM_PYTHON = "/usr/bin/python3"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class ServerError(RuntimeError):
    pass


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def stop_process_group(proc, sig):
    """Sends sig to the group proc leads (started with its own session),
    then SIGKILL if it has not ended within STOP_TIMEOUT; bounded."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)


def read_log(path):
    """A server's log, for an error message; "" when there is none."""
    try:
        with open(path, errors="replace") as log:
            return log.read()
    except OSError:
        return ""


def wait_until(predicate, timeout, interval=0.05):
    """Poll `predicate` until it returns something true or `timeout` ends."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= end:
            return value
        time.sleep(interval)


class _Daemon:
    """A server process in the foreground, its output in `self.log_path`."""

    name = "server"
    binary = None

    def __init__(self, workdir):
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.log_path = os.path.join(self.workdir, "server.log")
        self.proc = None
        self.port = None

    @classmethod
    def missing_reason(cls):
        if not os.access(cls.binary, os.X_OK):
            return "%s is not installed (%s missing)" % (cls.name, cls.binary)
        return None

    def command(self):
        raise NotImplementedError

    def configure(self):
        """Write the private configuration; called with self.port set."""

    def environment(self):
        return dict(os.environ)

    def start(self):
        reason = self.missing_reason()
        if reason:
            raise ServerError(reason)
        # A free port can be taken between our probe and the server's bind:
        # try again with another one.
        for _ in range(3):
            self.port = free_port()
            self.configure()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.command(), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, cwd=self.workdir,
                    env=self.environment(), start_new_session=True)
            if wait_until(lambda: self.proc.poll() is not None
                          or port_accepts(self.port), START_TIMEOUT):
                if self.proc.poll() is None:
                    return self
            self.stop()
        raise ServerError("%s did not start on 127.0.0.1; its log:\n%s"
                          % (self.name, self.log()))

    def stop(self):
        # Own session: a forked helper (twistd) goes down with it.
        stop_process_group(self.proc, signal.SIGTERM)
        self.proc = None

    def log(self):
        return read_log(self.log_path)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


CheckResult = namedtuple("CheckResult", "time host service code output")

_CHECK_LINE = re.compile(
    r"^\[(\d+)\] PROCESS_SERVICE_CHECK_RESULT;([^;]*);([^;]*);(-?\d+);(.*)$")


class NscaServer(_Daemon):
    """Debian's nsca daemon, single-process, in the foreground.

    nsca writes ``[time] PROCESS_SERVICE_CHECK_RESULT;host;service;code;
    output`` lines to its ``command_file``, which it opens without O_CREAT
    (normally the monitoring core's FIFO). A regular file created here with
    ``append_to_file=1`` collects them instead; without append nsca would
    write each line at offset 0 over the last one. nsca logs only to
    syslog, so its own log here is usually empty.
    """

    name = "nsca"
    binary = "/usr/sbin/nsca"

    def __init__(self, workdir, decryption_method=1, password=None):
        super().__init__(workdir)
        self.decryption_method = decryption_method
        self.password = password
        self.command_file = os.path.join(self.workdir, "nsca.cmd")
        self.config_path = os.path.join(self.workdir, "nsca.cfg")

    def configure(self):
        import grp
        import pwd
        open(self.command_file, "a").close()
        lines = [
            "pid_file=%s" % os.path.join(self.workdir, "nsca.pid"),
            "server_address=127.0.0.1",
            "server_port=%d" % self.port,
            # nsca drops privileges to these: name who we already are.
            "nsca_user=%s" % pwd.getpwuid(os.getuid()).pw_name,
            "nsca_group=%s" % grp.getgrgid(os.getgid()).gr_name,
            "debug=1",
            "command_file=%s" % self.command_file,
            "alternate_dump_file=%s" % os.path.join(self.workdir, "dump"),
            "aggregate_writes=0",
            "append_to_file=1",
            "max_packet_age=30",
            "decryption_method=%d" % self.decryption_method,
        ]
        if self.password is not None:
            lines.append("password=%s" % self.password)
        with open(self.config_path, "w") as config:
            config.write("\n".join(lines) + "\n")

    def command(self):
        return [self.binary, "-f", "-c", self.config_path, "--single"]

    def results(self):
        """Every check result written to the command file so far."""
        with open(self.command_file, encoding="utf-8",
                  errors="surrogateescape") as cmd:
            lines = cmd.read().splitlines()
        results = []
        for line in lines:
            match = _CHECK_LINE.match(line)
            if not match:
                raise AssertionError("unexpected command line: %r" % line)
            stamp, host, service, code, output = match.groups()
            results.append(CheckResult(int(stamp), host, service, int(code),
                                       output))
        return results

    def wait_for_results(self, count, timeout=10.0):
        """At least `count` results; fewer only when `timeout` runs out."""
        return wait_until(
            lambda: (lambda r: r if len(r) >= count else None)(self.results()),
            timeout) or self.results()


def _bcrypt(password):
    """A bcrypt hash for the Pushgateway's web config (python3-bcrypt)."""
    import bcrypt
    # Cost 4 (16 rounds), bcrypt's minimum: every request is checked, keep
    # the tests fast.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


class Pushgateway(_Daemon):
    """Debian's prometheus-pushgateway, persistence off.

    `users` ({name: password}) turns on HTTP basic auth and `tls` HTTPS with
    a self-signed certificate for 127.0.0.1 (`self.cafile`); both through
    ``--web.config.file``. Without ``--persistence.file=`` the package's
    default file under /var/lib would be written.
    """

    name = "prometheus-pushgateway"
    binary = "/usr/bin/prometheus-pushgateway"

    def __init__(self, workdir, users=None, tls=False):
        super().__init__(workdir)
        self.users = dict(users or {})
        self.tls = tls
        self.web_config = os.path.join(self.workdir, "web.yml")
        self.cafile = os.path.join(self.workdir, "cert.pem")
        self.keyfile = os.path.join(self.workdir, "key.pem")

    def configure(self):
        if self.tls and not os.path.exists(self.cafile):
            openssl = shutil.which("openssl")
            if openssl is None:
                raise ServerError("openssl is needed for a test certificate")
            subprocess.run(
                [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-keyout", self.keyfile, "-out", self.cafile, "-days", "2",
                 "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                check=True, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        lines = []
        if self.tls:
            lines += ["tls_server_config:",
                      "  cert_file: %s" % self.cafile,
                      "  key_file: %s" % self.keyfile]
        if self.users:
            lines.append("basic_auth_users:")
            for user, password in self.users.items():
                lines.append("  %s: '%s'" % (user, _bcrypt(password)))
        with open(self.web_config, "w") as config:
            config.write("\n".join(lines) + "\n")

    def command(self):
        command = [self.binary,
                   "--web.listen-address=127.0.0.1:%d" % self.port,
                   "--persistence.file=", "--log.level=debug"]
        if self.tls or self.users:
            command.append("--web.config.file=%s" % self.web_config)
        return command

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http",
                                      self.port)

    def metrics_text(self):
        """The Pushgateway's own /metrics page."""
        request = urllib.request.Request(self.url + "/metrics")
        if self.users:
            user, password = next(iter(self.users.items()))
            token = base64.b64encode(
                ("%s:%s" % (user, password)).encode()).decode()
            request.add_header("Authorization", "Basic " + token)
        context = None
        if self.tls:
            context = ssl.create_default_context(cafile=self.cafile)
        # No proxy: the request must go to 127.0.0.1 directly.
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=context))
        with opener.open(request, timeout=10) as response:
            return response.read().decode("utf-8")

    def samples(self, prefix="bareos_"):
        """[(name, labels, value)] of the pushed metrics starting with
        `prefix`, read through Debian's prometheus_client text parser."""
        from prometheus_client.parser import text_string_to_metric_families
        found = []
        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                if sample.name.startswith(prefix):
                    found.append((sample.name, dict(sample.labels),
                                  sample.value))
        return found


class CarbonCache(_Daemon):
    """Debian's carbon-cache (twistd) in the foreground, storing whisper
    files under the private directory with a 1-second retention.

    The pickle receiver is off and the cache query port is an ephemeral
    one; tags are off, because carbon would otherwise post every new metric
    to a graphite-web at 127.0.0.1:80. carbon writes points from its cache
    to whisper files asynchronously, so `values()` polls.
    """

    name = "graphite-carbon (carbon-cache)"
    binary = "/usr/bin/carbon-cache"

    def __init__(self, workdir):
        super().__init__(workdir)
        self.conf_dir = os.path.join(self.workdir, "conf")
        self.storage_dir = os.path.join(self.workdir, "storage")
        self.whisper_dir = os.path.join(self.storage_dir, "whisper")
        self.pidfile = os.path.join(self.workdir, "carbon-cache.pid")

    @classmethod
    def missing_reason(cls):
        reason = super().missing_reason()
        if reason is None:
            try:
                import whisper  # noqa: F401
            except ImportError:
                reason = "python3-whisper is not installed"
        return reason

    def configure(self):
        os.makedirs(self.conf_dir, exist_ok=True)
        os.makedirs(self.whisper_dir, exist_ok=True)
        settings = {
            "STORAGE_DIR": self.storage_dir,
            "LOCAL_DATA_DIR": self.whisper_dir,
            "WHITELISTS_DIR": os.path.join(self.storage_dir, "lists"),
            "CONF_DIR": self.conf_dir,
            "LOG_DIR": os.path.join(self.storage_dir, "log"),
            "PID_DIR": self.workdir,
            "DATABASE": "whisper",
            "USER": "",
            "MAX_CACHE_SIZE": "inf",
            "MAX_UPDATES_PER_SECOND": "10000",
            "MAX_CREATES_PER_MINUTE": "inf",
            "LINE_RECEIVER_INTERFACE": "127.0.0.1",
            "LINE_RECEIVER_PORT": str(self.port),
            "ENABLE_UDP_LISTENER": "False",
            "PICKLE_RECEIVER_INTERFACE": "127.0.0.1",
            "PICKLE_RECEIVER_PORT": "0",
            "CACHE_QUERY_INTERFACE": "127.0.0.1",
            "CACHE_QUERY_PORT": "0",
            "ENABLE_TAGS": "False",
            "CARBON_METRIC_INTERVAL": "0",
            "LOG_LISTENER_CONNECTIONS": "False",
            "WHISPER_FALLOCATE_CREATE": "False",
        }
        with open(os.path.join(self.conf_dir, "carbon.conf"), "w") as conf:
            conf.write("[cache]\n")
            for key, value in settings.items():
                conf.write("%s = %s\n" % (key, value))
        with open(os.path.join(self.conf_dir, "storage-schemas.conf"),
                  "w") as schemas:
            schemas.write("[everything]\npattern = .*\nretentions = 1s:1h\n")

    def command(self):
        return [SYSTEM_PYTHON, self.binary,
                "--config=%s" % os.path.join(self.conf_dir, "carbon.conf"),
                "--pidfile=%s" % self.pidfile, "--nodaemon", "start"]

    def environment(self):
        env = dict(os.environ)
        env["GRAPHITE_ROOT"] = self.workdir
        env["GRAPHITE_STORAGE_DIR"] = self.storage_dir
        env["PYTHONWARNINGS"] = "ignore"
        return env

    def whisper_file(self, metric):
        return os.path.join(self.whisper_dir, *metric.split(".")) + ".wsp"

    def metrics(self):
        """Every metric path that has a whisper file."""
        found = []
        for root, _, files in os.walk(self.whisper_dir):
            for name in files:
                if name.endswith(".wsp"):
                    rel = os.path.relpath(os.path.join(root, name[:-4]),
                                          self.whisper_dir)
                    found.append(rel.replace(os.sep, "."))
        return sorted(found)

    def values(self, metric, timeout=15.0):
        """The values stored for `metric` in the last hour, waiting (bounded)
        for carbon to create and write its whisper file."""
        import whisper
        path = self.whisper_file(metric)

        def stored():
            if not os.path.exists(path):
                return None
            try:
                _, points = whisper.fetch(path, time.time() - 3600)
            except Exception:
                return None
            return [v for v in points if v is not None] or None

        return wait_until(stored, timeout) or []


class MisbehavingServer:
    """A TCP server on 127.0.0.1 for the failure tests, in a thread of the
    test process: ``silent`` accepts and never answers, ``trickle`` sends
    `data` one byte every `interval` seconds, ``close`` closes each
    connection at once. `accepted` counts connections."""

    def __init__(self, behaviour, data=b"", interval=0.2):
        import threading
        if behaviour not in ("silent", "trickle", "close"):
            raise ValueError(behaviour)
        self.behaviour = behaviour
        self.data = data
        self.interval = interval
        self.accepted = 0
        self._stop = threading.Event()
        self._connections = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.behaviour == "close":
                conn.close()
                continue
            self._connections.append(conn)
            if self.behaviour == "trickle":
                for byte in self.data:
                    if self._stop.wait(self.interval):
                        break
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        self._listener.close()
        for conn in self._connections:
            conn.close()


def closed_port():
    """A port on 127.0.0.1 where nothing listens: connecting is refused."""
    return free_port()


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BAREOSDIR_BUILD") or os.path.join(REPO, "build")
# Our own Director configuration in Bareos's default layout (tests/data).
DEFAULT_CONFIG = os.path.join(REPO, "tests", "data", "bareos-dir.d")


class Simulator:
    """bareosdir-sim, the Director in miniature, loading the real shim
    (python3-dir.so from the build directory, BAREOSDIR_BUILD) with a copy
    of Bareos's default configuration in `workdir`."""

    def __init__(self, workdir, build=BUILD):
        self.workdir = os.path.abspath(workdir)
        self.build = build
        self.binary = os.path.join(build, "bareosdir-sim")
        self.plugin_dir = os.path.join(build, "plugins")
        if not os.path.exists(os.path.join(self.plugin_dir,
                                           "python3-dir.so")):
            self.plugin_dir = build
        self.config_dir = os.path.join(self.workdir, "bareos-dir.d")
        self.default_config = DEFAULT_CONFIG

    def missing_reason(self):
        if not os.access(self.binary, os.X_OK):
            return ("%s not built (set BAREOSDIR_BUILD or run cmake --build)"
                    % self.binary)
        if not os.path.exists(os.path.join(self.plugin_dir,
                                           "python3-dir.so")):
            return "the shim python3-dir.so is not built in %s" % self.build
        return None

    def stale_plugin_files(self):
        """Plugin files of the repository that differ from the build's copy
        (the shim imports the copy beside it)."""
        import filecmp
        source = os.path.join(REPO, "bareosdir", "plugins")
        copy = os.path.join(self.plugin_dir, "bareosdir", "plugins")
        if not os.path.isdir(copy):
            return []
        names = [n for n in os.listdir(source)
                 if n.endswith((".py", ".template"))]
        return [n for n in names
                if not os.path.exists(os.path.join(copy, n))
                or not filecmp.cmp(os.path.join(source, n),
                                   os.path.join(copy, n), shallow=False)]

    def configure(self, job_resources=""):
        """The default configuration, with our Plugin Directory and Plugin
        Names and `job_resources` (configuration text) added."""
        if os.path.exists(self.config_dir):
            shutil.rmtree(self.config_dir)
        shutil.copytree(self.default_config, self.config_dir)
        director = os.path.join(self.config_dir, "director",
                                "bareos-dir.conf")
        with open(director) as conf:
            text = conf.read()
        assert "  Messages = Daemon\n" in text, director
        text = text.replace(
            "  Messages = Daemon\n",
            '  Messages = Daemon\n  Plugin Directory = "%s"\n'
            '  Plugin Names = "python3"\n' % self.plugin_dir, 1)
        with open(director, "w") as conf:
            conf.write(text)
        if job_resources:
            with open(os.path.join(self.config_dir, "job",
                                   "test-jobs.conf"), "w") as conf:
                conf.write(job_resources)
        return self

    def run(self, job, options=(), status="T", jobs=1, concurrent=1,
            debug=0, timeout=120):
        command = [self.binary, "-c", self.workdir, "-j", job,
                   "--status", status, "--jobs", str(jobs),
                   "--concurrent", str(concurrent)]
        for line in options:
            command += ["-o", line]
        if debug:
            command += ["-d", str(debug)]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PYTHON")}
        return subprocess.run(command, capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=self.workdir)


def forget_plugin_modules():
    """Drop the plugin directory's modules from this process's sys.modules.

    Unit tests import them into the test process, which is also the main
    interpreter that ``interpreter=main`` plugin instances run in; the host
    lets a module already in sys.modules win over an instance's private
    copy, so a leftover would be shared by every later main-mode instance.
    The package ``bareosdir.plugins`` itself stays."""
    from bareosdir.testing import PLUGINS_DIR
    prefix = os.path.join(os.path.abspath(PLUGINS_DIR), "")

    def ours(name, module):
        path = getattr(module, "__file__", None) or ""
        return name != "bareosdir.plugins" and path.startswith(prefix)

    for name, module in list(sys.modules.items()):
        if ours(name, module):
            del sys.modules[name]
    plugins = sys.modules.get("bareosdir.plugins")
    if plugins is not None:
        for name, value in list(vars(plugins).items()):
            if isinstance(value, type(sys)) and ours(name, value):
                delattr(plugins, name)


# ---- running one job of a bundled plugin through the mock director ----

def run_job(director, option_lines, name="BackupClient1", status="T", jobid=5,
            **values):
    """One job with the usual values (1000 bytes, 10 files, no errors)."""
    job = director.job(name, jobid=jobid, level="F", type="B",
                       client="client1-fd", pool="Full", storage="File",
                       priority=10)
    job.run(option_lines if isinstance(option_lines, list) else [option_lines],
            status=status, **dict(dict(bytes=1000, files=10, errors=0),
                                  **values))
    return job


def assert_job_ok(job):
    import bareosdir
    assert all(rc == bareosdir.bRC_OK for rc in job.rcs.values()), job.rcs


def warnings_of(job):
    import bareosdir
    return [m.text for m in job.messages if m.type == bareosdir.M_WARNING]


def option_line(module, host_key, host, port_key, port, extra="",
                prefix="python3"):
    """A Dir Plugin Options line for a bundled plugin; `port` None leaves
    the port option out (the plugin's default)."""
    line = "%s:module_name=%s:%s=%s" % (prefix, module, host_key, host)
    if port is not None:
        line += ":%s=%d" % (port_key, port)
    return line + (":" + extra if extra else "")


def job_with_invalid_option(director, line_for_port, name="BackupClient1"):
    """Runs a job whose options a plugin must refuse; `line_for_port(port)`
    gives the options line for a server that records connections: nothing
    may reach it, the job stays OK, and its one warning is returned."""
    import time
    with MisbehavingServer("close") as server:
        job = run_job(director, line_for_port(server.port), name)
        time.sleep(0.2)
        assert server.accepted == 0
    assert_job_ok(job)
    [warning] = warnings_of(job)
    return warning
