"""A private PostgreSQL server for the catalog replay tests, and a Bareos
catalog schema in it (written by us from the column facts of Bareos's
PostgreSQL DDL, schema version 2250: the tables and columns the replay
reads, with Bareos's types, defaults and nullability).

The server is Debian's (`/usr/lib/postgresql/<N>/bin`, the highest N
installed), initdb'd in a temporary directory, listening on 127.0.0.1 on a
free port and on a socket in that directory. initdb and postgres refuse to
run as root: as root the server runs as the `postgres` user (else
`nobody`) through setpriv. `stop()` ends it on every path (the fixtures
use it as a context manager).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

from servers import (START_TIMEOUT, free_port, read_log, stop_process_group,
                     wait_until)

SUPERUSER = "pgadmin"
SUPERUSER_PASSWORD = "admin-pw-7Gq"
OWNER = "bareos"
OWNER_PASSWORD = "owner-pw-Xk2"
READER = "bareos_reader"
READER_PASSWORD = "Rd-s3cret-9Zt"
SCHEMA_VERSION = 2250

SCHEMA = """
CREATE TABLE Version (VersionId INTEGER NOT NULL);
CREATE TABLE Client (
    ClientId      SERIAL   NOT NULL,
    Name          TEXT     NOT NULL,
    UName         TEXT     NOT NULL,
    AutoPrune     SMALLINT DEFAULT 0,
    FileRetention BIGINT   DEFAULT 0,
    JobRetention  BIGINT   DEFAULT 0,
    PRIMARY KEY (ClientId));
CREATE UNIQUE INDEX client_name_idx ON Client (Name);
CREATE TABLE Pool (
    PoolId        SERIAL   NOT NULL,
    Name          TEXT     NOT NULL,
    NumVols       INTEGER  DEFAULT 0,
    PoolType      TEXT,
    LabelFormat   TEXT     NOT NULL,
    PRIMARY KEY (PoolId));
CREATE TABLE Job (
    JobId           SERIAL    NOT NULL,
    Job             TEXT      NOT NULL,
    Name            TEXT      NOT NULL,
    Type            CHAR(1)   NOT NULL,
    Level           CHAR(1)   NOT NULL,
    ClientId        INTEGER   DEFAULT 0,
    JobStatus       CHAR(1)   NOT NULL,
    SchedTime       TIMESTAMP WITHOUT TIME ZONE,
    StartTime       TIMESTAMP WITHOUT TIME ZONE,
    EndTime         TIMESTAMP WITHOUT TIME ZONE,
    RealEndTime     TIMESTAMP WITHOUT TIME ZONE,
    JobTDate        BIGINT    DEFAULT 0,
    VolSessionId    INTEGER   DEFAULT 0,
    VolSessionTime  INTEGER   DEFAULT 0,
    JobFiles        INTEGER   DEFAULT 0,
    JobBytes        BIGINT    DEFAULT 0,
    ReadBytes       BIGINT    DEFAULT 0,
    JobErrors       INTEGER   DEFAULT 0,
    JobMissingFiles INTEGER   DEFAULT 0,
    PoolId          INTEGER   DEFAULT 0,
    FilesetId       INTEGER   DEFAULT 0,
    PriorJobId      INTEGER   DEFAULT 0,
    PurgedFiles     SMALLINT  DEFAULT 0,
    HasBase         SMALLINT  DEFAULT 0,
    HasCache        SMALLINT  DEFAULT 0,
    Reviewed        SMALLINT  DEFAULT 0,
    Comment         TEXT,
    PRIMARY KEY (JobId));
CREATE INDEX job_name_idx ON Job (Name);
"""

# Bareos's job types, levels and status letters (its Status table and
# job type/level definitions).
JOB_TYPES = "BMVRUIDACcgSO"
JOB_LEVELS = "FIDSCVOdABf "
JOB_STATUSES = "CRBTWEefDAIFSmMsjcdtpaiLq"


def postgres_bindir():
    """Debian's server binaries: /usr/lib/postgresql/<N>/bin, highest N."""
    found = []
    for path in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        match = re.search(r"/postgresql/(\d+)/bin/", path)
        if match:
            found.append((int(match.group(1)), os.path.dirname(path)))
    if not found:
        raise RuntimeError("PostgreSQL's server is not installed "
                           "(/usr/lib/postgresql/<N>/bin/initdb; Debian "
                           "package postgresql): the catalog tests need it")
    return max(found)[1]


def client_bin(name):
    return os.path.join(postgres_bindir(), name)


def server_env(**extra):
    """The environment of PostgreSQL's own programs: without libpq's PG*
    settings, and without the sanitizer stage's preloaded runtime (meant
    for our code, not for PostgreSQL)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "ASAN_", "UBSAN_"))
           and k != "LD_PRELOAD"}
    env.update(extra)
    return env


class PostgresServer:
    """A throw-away PostgreSQL cluster; use as a context manager."""

    def __init__(self):
        self.bindir = postgres_bindir()
        self.dir = None
        self.proc = None
        self.port = None
        self.run_as = None
        if os.geteuid() == 0:
            for user in ("postgres", "nobody"):
                try:
                    self.run_as = pwd.getpwnam(user)
                    break
                except KeyError:
                    continue
            if self.run_as is None:
                raise RuntimeError("running as root, and neither a postgres "
                                   "nor a nobody user exists to run the "
                                   "PostgreSQL server")

    def _as_user(self, command):
        if self.run_as is None:
            return command
        return ["setpriv", "--reuid=%d" % self.run_as.pw_uid,
                "--regid=%d" % self.run_as.pw_gid, "--clear-groups",
                "--"] + command

    @property
    def socket_dir(self):
        return self.dir

    @property
    def log_path(self):
        return os.path.join(self.dir, "server.log")

    def log(self):
        return read_log(self.log_path)

    def start(self):
        # Not under pytest's tmp_path: the server's user must reach it.
        self.dir = tempfile.mkdtemp(prefix="bareosdir-pg-")
        os.chmod(self.dir, 0o755)
        data = os.path.join(self.dir, "data")
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(SUPERUSER_PASSWORD + "\n")
        if self.run_as is not None:
            os.chown(self.dir, self.run_as.pw_uid, self.run_as.pw_gid)
            os.chown(pwfile, self.run_as.pw_uid, self.run_as.pw_gid)
        try:
            subprocess.run(
                self._as_user([os.path.join(self.bindir, "initdb"), "-D",
                               data, "-U", SUPERUSER, "--pwfile", pwfile,
                               "--auth-local=scram-sha-256",
                               "--auth-host=scram-sha-256", "-E", "UTF8",
                               "--locale=C", "--no-sync"]),
                check=True, capture_output=True, timeout=120,
                cwd=self.dir, env=server_env())
        except subprocess.CalledProcessError as error:
            self.stop()
            raise RuntimeError("initdb failed: %s" % error.stderr.decode(
                errors="replace"))
        except BaseException:
            self.stop()
            raise
        for _ in range(3):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self._as_user([
                        os.path.join(self.bindir, "postgres"), "-D", data,
                        "-h", "127.0.0.1", "-p", str(self.port),
                        "-k", self.dir, "-c", "fsync=off",
                        "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off",
                        "-c", "track_counts=on"]),
                    stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, cwd=self.dir,
                    env=server_env(), start_new_session=True)
            if wait_until(lambda: self.proc.poll() is not None
                          or self._ready(), START_TIMEOUT):
                if self.proc.poll() is None:
                    return self
            self._kill()
        log = self.log()
        self.stop()
        raise RuntimeError("PostgreSQL did not start; its log:\n" + log)

    def _ready(self):
        result = subprocess.run(
            [os.path.join(self.bindir, "pg_isready"), "-q", "-h",
             "127.0.0.1", "-p", str(self.port)], timeout=10, env=server_env())
        return result.returncode == 0

    def _kill(self):
        # SIGINT: PostgreSQL's fast shutdown (ends sessions).
        stop_process_group(self.proc, signal.SIGINT)
        self.proc = None

    def stop(self):
        self._kill()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- SQL through psql ----

    def psql(self, sql, db="postgres", user=SUPERUSER,
             password=SUPERUSER_PASSWORD, stdin=None, check=True):
        """Runs `sql` (several statements allowed); returns the output rows
        as lists of fields (unaligned, tab-separated)."""
        env = server_env(PGPASSWORD=password)
        command = [client_bin("psql"), "-X", "-q", "-A", "-t", "-F", "\t",
                   "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                   str(self.port), "-U", user, "-d", db, "-c", sql]
        result = subprocess.run(command, input=stdin, capture_output=True,
                                text=True, env=env, timeout=300)
        if check and result.returncode != 0:
            raise RuntimeError("psql failed: %s\n%s" % (sql[:200],
                                                       result.stderr))
        return [line.split("\t") for line in result.stdout.splitlines()
                if line]

    def create_catalog(self, db, version=SCHEMA_VERSION, schema=SCHEMA):
        """A Bareos catalog owned by OWNER, readable by READER (SELECT
        only)."""
        self.psql("CREATE DATABASE %s OWNER %s" % (db, OWNER))
        self.psql(schema + ("INSERT INTO Version VALUES (%d);" % version
                            if version is not None else ""),
                  db=db, user=OWNER, password=OWNER_PASSWORD)
        self.psql("GRANT CONNECT ON DATABASE %s TO %s;" % (db, READER))
        self.psql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s;"
                  % READER, db=db, user=OWNER, password=OWNER_PASSWORD)

    def create_roles(self):
        self.psql("CREATE ROLE %s LOGIN PASSWORD '%s';"
                  "CREATE ROLE %s LOGIN PASSWORD '%s';"
                  % (OWNER, OWNER_PASSWORD, READER, READER_PASSWORD))

    def copy_rows(self, db, table, columns, rows):
        """Bulk insert through COPY (text format)."""
        def field(value):
            if value is None:
                return "\\N"
            text = str(value)
            return (text.replace("\\", "\\\\").replace("\t", "\\t")
                    .replace("\n", "\\n"))
        data = "".join("\t".join(field(v) for v in row) + "\n"
                       for row in rows)
        self.psql("COPY %s (%s) FROM STDIN" % (table, ", ".join(columns)),
                  db=db, user=OWNER, password=OWNER_PASSWORD, stdin=data)


JOB_COLUMNS = ("JobId", "Job", "Name", "Type", "Level", "ClientId",
               "JobStatus", "SchedTime", "StartTime", "EndTime", "JobFiles",
               "JobBytes", "ReadBytes", "JobErrors", "PoolId")


def job_row(jobid, name, type="B", level="F", status="T", client=1, pool=1,
            files=10, bytes=1000, readbytes=1200, errors=0,
            start="2026-11-30 21:00:00", end="2026-11-30 21:05:00"):
    unique = "%s.%s_%02d" % (name, (start or "2026-11-30 21:00:00")
                             .replace(" ", "_").replace(":", "."),
                             jobid % 100)
    return (jobid, unique, name, type, level, client, status, start, start,
            end, files, bytes, readbytes, errors, pool)


def stats_snapshot(server, db):
    """What would show a write: every table's row count and its insert,
    update and delete counters."""
    server.psql("SELECT pg_stat_clear_snapshot()", db=db)
    counts = {}
    for (table,) in server.psql(
            "SELECT relname FROM pg_stat_user_tables ORDER BY relname",
            db=db):
        [[n]] = server.psql("SELECT count(*) FROM %s" % table, db=db)
        counts[table] = int(n)
    stats = server.psql(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd "
        "FROM pg_stat_user_tables ORDER BY relname", db=db)
    return counts, stats


def wait_stats_flushed(server, db, timeout=10.0):
    """PostgreSQL flushes table counters up to a second after a session
    ends; wait until two snapshots agree."""
    previous = stats_snapshot(server, db)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        time.sleep(1.2)
        current = stats_snapshot(server, db)
        if current == previous:
            return current
        previous = current
    return previous


def run_with_peak_rss(command, env=None, cwd=None, keep=lambda line: False,
                      timeout=1800):
    """Runs `command`, returning (exit status, kept stdout lines, last
    stdout line, peak RSS in KiB). The peak is the process's own VmHWM,
    sampled while it runs: wait4's ru_maxrss would also count the memory of
    the Python process that spawned it (Linux keeps the high-water mark of
    the address space a process had before exec)."""
    import threading
    proc = subprocess.Popen(command, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    kept, last, peak = [], [b""], [0]

    def sample():
        try:
            with open("/proc/%d/status" % proc.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
        except (OSError, ValueError):
            pass

    def read():
        for line in proc.stdout:
            last[0] = line
            if keep(line):
                kept.append(line.decode(errors="replace"))
                del kept[:-50]

    reader = threading.Thread(target=read)
    reader.start()
    end = time.monotonic() + timeout
    while reader.is_alive() and time.monotonic() < end:
        sample()
        reader.join(0.05)
    if reader.is_alive():
        proc.kill()
        reader.join()
    status = proc.wait()
    return status, kept, last[0].decode(errors="replace"), peak[0]
