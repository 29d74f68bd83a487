"""bareosdir-sim --catalog: replaying the jobs of a Bareos catalog through
the real shim, against a real PostgreSQL server the tests start themselves
(tests/catalogdb.py) and a real nsca (tests/servers.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time

import pytest

import catalogdb
from catalogdb import (JOB_COLUMNS, JOB_LEVELS, JOB_STATUSES, JOB_TYPES,
                       OWNER, OWNER_PASSWORD, READER, READER_PASSWORD,
                       PostgresServer, job_row, run_with_peak_rss,
                       wait_stats_flushed)
from servers import (MisbehavingServer, NscaServer, Simulator, closed_port,
                     option_line)

pytestmark = pytest.mark.usefixtures("no_plugin_modules_left_behind")

# A plugin that reports every value it can read, one M_INFO line on JobEnd.
VALUES_PLUGIN = """
import bareosdir

V = bareosdir
NAMES = [("jobid", V.bDirVarJobId), ("job", V.bDirVarJobName),
         ("name", V.bDirVarJob), ("type", V.bDirVarType),
         ("level", V.bDirVarLevel), ("status", V.bDirVarJobStatus),
         ("files", V.bDirVarJobFiles), ("bytes", V.bDirVarJobBytes),
         ("readbytes", V.bDirVarReadBytes), ("errors", V.bDirVarJobErrors),
         ("client", V.bDirVarClient), ("pool", V.bDirVarPool)]

def load_bareos_plugin(plugindef):
    bareosdir.RegisterEvents([bareosdir.bDirEventJobStart,
                              bareosdir.bDirEventJobEnd])
    return bareosdir.bRC_OK

def parse_plugin_definition(plugindef):
    return bareosdir.bRC_OK

def handle_plugin_event(event):
    if event == bareosdir.bDirEventJobStart:
        bareosdir.JobMessage(bareosdir.M_INFO, "start %r" % ([
            bareosdir.GetValue(var) for var in (
                V.bDirVarJobFiles, V.bDirVarJobBytes, V.bDirVarReadBytes,
                V.bDirVarJobErrors, V.bDirVarJobStatus)],))
        return bareosdir.bRC_OK
    values = {}
    for key, var in NAMES:
        value = bareosdir.GetValue(var)
        if isinstance(value, int) and key in ("type", "level", "status"):
            value = chr(value)
        values[key] = value
    bareosdir.JobMessage(bareosdir.M_INFO, "values %r" % (values,))
    if values["name"] == "FailingJob":
        return bareosdir.bRC_Error
    return bareosdir.bRC_OK
"""


@pytest.fixture(scope="module")
def pg():
    with PostgresServer() as server:
        server.create_roles()
        yield server


_db_counter = [0]


@pytest.fixture
def catalog(pg):
    """A fresh, empty catalog database; its name."""
    _db_counter[0] += 1
    name = "cat%d_%d" % (os.getpid(), _db_counter[0])
    pg.create_catalog(name)
    pg.copy_rows(name, "Client", ("ClientId", "Name", "UName"),
                 [(1, "client1-fd", "u"), (2, "klïent-二-fd", "u")])
    pg.copy_rows(name, "Pool", ("PoolId", "Name", "LabelFormat"),
                 [(1, "Full", "f"), (2, "Incremental", "i")])
    return name


def add_jobs(pg, db, rows):
    pg.copy_rows(db, "Job", JOB_COLUMNS, rows)


class CatalogSim:
    """The simulator with the default configuration, our Job resources and
    a Catalog resource pointing at the test server."""

    def __init__(self, tmp_path, pg, db, plugin_dir):
        self.sim = Simulator(tmp_path / "sim")
        reason = self.sim.missing_reason()
        assert reason is None, reason
        self.pg = pg
        self.db = db
        self.plugin_dir = plugin_dir

    def options(self, module="catalog_values", extra=""):
        line = "python3:module_path=%s:module_name=%s" % (self.plugin_dir,
                                                          module)
        return line + (":" + extra if extra else "")

    def configure(self, jobs=("BackupClient1",), catalog=None,
                  options=None):
        resources = ""
        for name in jobs:
            resources += ('Job {\n  Name = "%s"\n  JobDefs = DefaultJob\n'
                          '  Dir Plugin Options = "%s"\n}\n'
                          % (name, options or self.options()))
        self.sim.configure(resources)
        # BackupClient1 is in the default configuration already.
        default = os.path.join(self.sim.config_dir, "job",
                               "backup-bareos-fd.conf")
        if "BackupClient1" in jobs and os.path.exists(default):
            os.remove(default)
        self.write_catalog(catalog if catalog is not None else
                           self.catalog_text())
        return self

    def catalog_text(self, user=READER, password=READER_PASSWORD,
                     db=None, spelling=("DB Name", "DB User", "DB Password",
                                        "DB Address", "DB Port"),
                     address="127.0.0.1", port=None):
        k_name, k_user, k_pw, k_addr, k_port = spelling
        return ('Catalog {\n  Name = MyCatalog\n  %s = "%s"\n  %s = "%s"\n'
                '  %s = "%s"\n  %s = "%s"\n  %s = %d\n}\n'
                % (k_name, db or self.db, k_user, user, k_pw, password,
                   k_addr, address, k_port,
                   port if port is not None else self.pg.port))

    def write_catalog(self, text):
        path = os.path.join(self.sim.config_dir, "catalog", "MyCatalog.conf")
        with open(path, "w") as f:
            f.write(text)

    def run(self, *args, timeout=300):
        command = [self.sim.binary, "-c", self.sim.workdir, "--catalog"]
        command += list(args)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "PG"))}
        return subprocess.run(command, capture_output=True, text=True,
                              timeout=timeout, env=env,
                              cwd=self.sim.workdir)


@pytest.fixture
def plugin_dir(tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "catalog_values.py").write_text(VALUES_PLUGIN)
    return d


@pytest.fixture
def csim(tmp_path, pg, catalog, plugin_dir):
    return CatalogSim(tmp_path, pg, catalog, plugin_dir)


def seen_values(stdout):
    """JobId -> the values the plugin read, from the job log."""
    import ast
    seen = {}
    for line in stdout.splitlines():
        m = re.match(r"^bareos-dir JobId (\d+): values (\{.*\})$", line)
        if m:
            seen[int(m.group(1))] = ast.literal_eval(m.group(2))
    return seen


def expected_values(row, clients={1: "client1-fd", 2: "klïent-二-fd"},
                    pools={1: "Full", 2: "Incremental"}):
    (jobid, unique, name, type_, level, client, status, _, _, _, files,
     bytes_, readbytes, errors, pool) = row
    return {"jobid": jobid, "job": unique, "name": name, "type": type_,
            "level": level, "status": status, "files": files or 0,
            "bytes": bytes_ or 0, "readbytes": readbytes or 0,
            "errors": errors or 0, "client": clients.get(client),
            "pool": pools.get(pool)}


# ---- the replay ---------------------------------------------------------

def test_every_type_level_and_status_reaches_the_plugin(csim, pg):
    names = ["BackupClient1", "Nightly-Ünïcødé-作业"]
    rows, jobid = [], 0
    for t in JOB_TYPES:
        for level in JOB_LEVELS:
            jobid += 1
            rows.append(job_row(jobid, names[jobid % 2], type=t, level=level,
                                status=JOB_STATUSES[jobid % len(
                                    JOB_STATUSES)]))
    for status in JOB_STATUSES:
        jobid += 1
        rows.append(job_row(jobid, names[0], status=status))
    # NULL and zero and dangling client/pool; bytes above 2**32; NULL counts.
    rows.append(job_row(jobid + 1, names[0], client=None, pool=None))
    rows.append(job_row(jobid + 2, names[0], client=0, pool=0))
    rows.append(job_row(jobid + 3, names[1], client=2, pool=2,
                        bytes=2**32 + 7, readbytes=2**40 + 3, files=2**31 - 1,
                        errors=3))
    rows.append(job_row(jobid + 4, names[0], client=99, pool=99, files=None,
                        bytes=None, readbytes=None, errors=None, start=None,
                        end=None))
    add_jobs(pg, csim.db, rows)
    csim.configure(jobs=names)
    result = csim.run()
    assert result.returncode == 0, result.stdout + result.stderr
    seen = seen_values(result.stdout)
    assert sorted(seen) == [r[0] for r in rows]
    for row in rows:
        assert seen[row[0]] == expected_values(row), row
    # The counts are the job's end values: 0 while it starts, status 'C'.
    starts = re.findall(r"^bareos-dir JobId \d+: start (.*)$", result.stdout,
                        re.M)
    assert starts == ["[0, 0, 0, 0, %d]" % ord("C")] * len(rows)
    # JobId order, and the summary.
    ids = [int(m) for m in re.findall(r"^bareos-dir JobId (\d+): values",
                                      result.stdout, re.M)]
    assert ids == sorted(ids)
    assert ("%d jobs selected, %d replayed: %d OK, 0 FAILED"
            % (len(rows), len(rows), len(rows))) in result.stdout
    head = [line for line in result.stdout.splitlines()
            if line.startswith("bareosdir-sim: JobId %d: Job " % (jobid + 3))]
    assert head == [
        "bareosdir-sim: JobId %d: Job %s, Backup, level Full, status T, "
        "2147483647 files, 4294967303 bytes (1099511627779 read), 3 errors, "
        "client klïent-二-fd, pool Incremental, 2026-11-30 21:00:00 to "
        "2026-11-30 21:05:00" % (jobid + 3, rows[-2][1])]


def test_filters(csim, pg):
    rows = [job_row(i, "BackupClient1" if i % 3 else "Other",
                    status="TEf"[i % 3],
                    start="2026-11-%02d 21:00:00" % (1 + i % 28))
            for i in range(1, 301)]
    add_jobs(pg, csim.db, rows)
    csim.configure(jobs=["BackupClient1", "Other"])

    def ids(*args):
        result = csim.run(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        return sorted(seen_values(result.stdout))

    assert ids() == list(range(1, 301))
    assert ids("--jobid", "10-20") == list(range(10, 21))
    assert ids("--jobid", "290-") == list(range(290, 301))
    assert ids("--jobid", "-5") == [1, 2, 3, 4, 5]
    assert ids("--jobid", "7") == [7]
    assert ids("-j", "Other") == [i for i in range(1, 301) if i % 3 == 0]
    assert ids("--job-status", "E") == [i for i in range(1, 301)
                                        if i % 3 == 1]
    assert ids("--job-status", "Tf", "--limit", "4") == [2, 3, 5, 6]
    assert ids("--since", "2026-11-28") == [i for i in range(1, 301)
                                            if 1 + i % 28 >= 28]
    assert ids("--since", "2026-11-27 22:00") == [
        i for i in range(1, 301) if 1 + i % 28 >= 28]
    # batches of 500 rows: a limit beyond one batch, and the keyset.
    assert ids("--limit", "250", "--jobid", "20-") == list(range(20, 270))


def test_since_an_age_is_relative_to_now(csim, pg):
    now = time.time()
    fmt = "%Y-%m-%d %H:%M:%S"
    rows = [job_row(1, "BackupClient1",
                    start=time.strftime(fmt, time.localtime(now - 3 * 86400))),
            job_row(2, "BackupClient1",
                    start=time.strftime(fmt, time.localtime(now - 3600))),
            job_row(3, "BackupClient1", start=None)]
    add_jobs(pg, csim.db, rows)
    csim.configure()
    for since, expected in (("24h", [2]), ("2d", [2]), ("4d", [1, 2]),
                            ("90m", [2]), ("30 minutes", []), ("1w", [1, 2])):
        result = csim.run("--since", since)
        assert result.returncode == 0, result.stderr
        assert sorted(seen_values(result.stdout)) == expected, since


def test_job_gone_from_the_configuration_is_skipped_unless_dash_o(csim, pg):
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1"),
                           job_row(2, "RetiredJob"),
                           job_row(3, "RetiredJob")])
    csim.configure()
    result = csim.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(seen_values(result.stdout)) == [1]
    assert ("bareosdir-sim: JobId 2 (RetiredJob.2026-11-30_21.00.00_02): "
            "skipped: the configuration has no Job resource named "
            "\"RetiredJob\" now (give -o to replay it anyway)"
            in result.stdout)
    assert ("2 jobs skipped: 2 whose Job resource is gone (\"RetiredJob\"), "
            "0 with values out of range" in result.stdout)
    forced = csim.run("-o", csim.options())
    assert forced.returncode == 0, forced.stderr
    assert sorted(seen_values(forced.stdout)) == [1, 2, 3]


@pytest.mark.parametrize("distinct,more", [(10, False), (11, True)])
def test_the_summary_names_ten_gone_jobs(csim, pg, distinct, more):
    add_jobs(pg, csim.db, [job_row(i, "Gone%02d" % (i % distinct))
                           for i in range(1, 3 * distinct + 1)])
    csim.configure()
    result = csim.run()
    assert result.returncode == 0, result.stderr
    names = ", ".join('"Gone%02d"' % (i % distinct)
                      for i in range(1, 11))
    assert ("%d jobs skipped: %d whose Job resource is gone (%s%s), 0 with "
            "values out of range" % (3 * distinct, 3 * distinct, names,
                                     ", ..." if more else "")
            in result.stdout), result.stdout[-600:]


def test_options_of_the_configuration_now_and_dash_o(csim, pg, plugin_dir):
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1")])
    csim.configure(options=csim.options(extra="instance=0"))
    assert seen_values(csim.run().stdout)[1]["jobid"] == 1
    # Options naming a module that does not exist: the job fails, exit 1.
    csim.configure(options=csim.options(module="no_such_module"))
    result = csim.run()
    assert result.returncode == 1
    assert re.search(r"JobId 1 \(BackupClient1\): FAILED \(", result.stdout)
    # -o replaces them.
    fixed = csim.run("-o", csim.options())
    assert fixed.returncode == 0, fixed.stdout
    assert 1 in seen_values(fixed.stdout)


@pytest.mark.parametrize("json_output", [False, True])
def test_options_for_a_plugin_not_loaded_fail_the_job(csim, pg, json_output):
    # As in a simulated job: the configuration asks for a plugin that is
    # not loaded (misspelt, or missing from the Plugin Directory).
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1")])
    csim.configure(options=csim.options().replace("python3:", "pyhton3:", 1))
    result = csim.run(*(["--json"] if json_output else []))
    assert result.returncode == 1, result.stdout + result.stderr
    said = 'Dir Plugin Options for plugin "pyhton3", which is not loaded'
    if json_output:
        (job,) = json.loads(result.stdout)["jobs"]
        assert job["result"] == "failed"
        assert job["reason"].startswith("plugins not loaded; " + said), job
    else:
        assert "bareosdir-sim: JobId 1: " + said in result.stdout, result.stdout
        assert re.search(r"JobId 1 \(BackupClient1\): FAILED \(plugins not "
                         r"loaded\)", result.stdout), result.stdout


def test_a_failing_plugin_call_makes_the_exit_status_1(csim, pg):
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1"),
                           job_row(2, "FailingJob"),
                           job_row(3, "BackupClient1")])
    csim.configure(jobs=["BackupClient1", "FailingJob"])
    result = csim.run()
    assert result.returncode == 1
    assert sorted(seen_values(result.stdout)) == [1, 2, 3]
    assert re.search(r"JobId 2 \(FailingJob\): FAILED \(JobEnd not bRC_OK, "
                     r"plugin calls answered bRC_Error\)", result.stdout)
    assert "3 replayed: 2 OK, 1 FAILED" in result.stdout


def test_json(csim, pg):
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1"),
                           job_row(2, "Gone"),
                           job_row(3, "FailingJob", client=2,
                                   bytes=5 * 2**32)])
    csim.configure(jobs=["BackupClient1", "FailingJob"])
    result = csim.run("--json")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    jobs = doc["jobs"]
    assert [j["jobid"] for j in jobs] == [1, 2, 3]
    assert jobs[0]["result"] == "ok" and jobs[0]["reason"] is None
    assert [m["type"] for m in jobs[0]["messages"]] == ["info", "info"]
    assert jobs[0]["messages"][1]["text"].startswith("values {")
    assert jobs[1]["result"] == "skipped"
    assert jobs[2]["result"] == "failed"
    assert jobs[2]["client"] == "klïent-二-fd"
    assert jobs[2]["bytes"] == 5 * 2**32
    assert jobs[2]["status"] == "T" and jobs[2]["level"] == "F"
    summary = doc["summary"]
    assert summary["replayed"] == 2 and summary["ok"] == 1
    assert summary["failed"] == 1 and summary["skipped_job_gone"] == 1
    assert summary["gone_names"] == ["Gone"]
    assert summary["schema_version"] == 2250


def test_memory_stays_flat_over_thousands_of_jobs(csim, pg):
    """Batches, not the whole table: the peak RSS after 12000 jobs is that
    after 1500 (a leak of 400 bytes a job would show)."""
    add_jobs(pg, csim.db, [job_row(i, "BackupClient1", status="TEW"[i % 3])
                           for i in range(1, 12001)])
    csim.configure(options="python3:module_name=bareos-dir-class-plugin")
    command = [csim.sim.binary, "-c", csim.sim.workdir, "--catalog"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PG"))}
    peaks = []
    for limit in ("1500", "12000"):
        status, _, last, peak = run_with_peak_rss(
            command + ["--limit", limit], env=env, cwd=csim.sim.workdir)
        assert status == 0, last
        assert "%s replayed: %s OK" % (limit, limit) in last
        peaks.append(peak)
    assert peaks[0] > 0
    assert peaks[1] - peaks[0] < 4096, peaks


# ---- read-only ----------------------------------------------------------

def test_a_select_only_user_suffices_and_nothing_is_written(csim, pg):
    add_jobs(pg, csim.db, [job_row(i, "BackupClient1") for i in range(1,
                                                                       1201)])
    csim.configure()
    before = wait_stats_flushed(pg, csim.db)
    result = csim.run("--limit", "1100")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(seen_values(result.stdout)) == 1100
    after = wait_stats_flushed(pg, csim.db)
    assert after == before
    assert before[0]["job"] == 1200
    # The reader really may not write: the replay's user is SELECT-only.
    denied = subprocess.run(
        [catalogdb.client_bin("psql"), "-X", "-h", "127.0.0.1", "-p",
         str(pg.port), "-U", READER, "-d", csim.db, "-c",
         "DELETE FROM Job"], capture_output=True, text=True,
        env=catalogdb.server_env(PGPASSWORD=READER_PASSWORD),
        timeout=60)
    assert "permission denied" in denied.stderr


def test_the_transaction_is_read_only_even_for_the_owner(csim, pg):
    """With the owner's rights, the session still cannot write: the
    server's view of the replay's session says read-only."""
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1")])
    # We watch pg_stat_activity while a slow plugin job runs.
    slow = csim.plugin_dir / "catalog_slow.py"
    slow.write_text(VALUES_PLUGIN.replace(
        "def handle_plugin_event(event):",
        "import time\ndef handle_plugin_event(event):\n    time.sleep(3)"))
    csim.configure(catalog=csim.catalog_text(user=OWNER,
                                             password=OWNER_PASSWORD),
                   options=csim.options(module="catalog_slow"))
    seen = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.extend(pg.psql(
                "SELECT state, backend_xid IS NULL FROM pg_stat_activity "
                "WHERE application_name = 'bareosdir-sim'"))
            time.sleep(0.2)

    before = wait_stats_flushed(pg, csim.db)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = csim.run()
    finally:
        done.set()
        watcher.join()
    assert result.returncode == 0, result.stdout + result.stderr
    # One session, waiting inside its transaction while the plugin works,
    # and never given a transaction id (only a write gets one).
    assert ["idle in transaction", "t"] in seen
    assert all(xid_null == "t" for _, xid_null in seen)
    assert wait_stats_flushed(pg, csim.db) == before


# ---- bad input: each with its message -----------------------------------

def test_no_catalog_resource(csim):
    csim.configure()
    os.remove(os.path.join(csim.sim.config_dir, "catalog", "MyCatalog.conf"))
    result = csim.run()
    assert result.returncode == 2
    assert ("the configuration has no Catalog resource: --catalog needs one"
            in result.stderr)
    named = csim.run("--catalog=Other")
    assert named.returncode == 2


def test_no_catalog_of_that_name(csim):
    csim.configure()
    result = subprocess.run(
        [csim.sim.binary, "-c", csim.sim.workdir, "--catalog=Elsewhere"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert ('the configuration has no Catalog resource named "Elsewhere"'
            in result.stderr)


def test_wrong_password_is_reported_without_the_password(csim):
    secret = "Wr0ng-S3cret-pw"
    csim.configure(catalog=csim.catalog_text(password=secret))
    result = csim.run()
    assert result.returncode == 2
    assert ('password authentication failed for user "%s"' % READER
            in result.stderr)
    assert "cannot connect to catalog MyCatalog (database \"%s\" on " \
        "127.0.0.1 port %d, user \"%s\")" % (csim.db, csim.pg.port,
                                            READER) in result.stderr
    assert secret not in result.stdout + result.stderr


def test_the_right_password_never_appears_either(csim, pg):
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1"), job_row(2, "Gone")])
    csim.configure()
    for args in ((), ("--json",), ("-d", "200")):
        result = csim.run(*args)
        assert READER_PASSWORD not in result.stdout + result.stderr


def test_server_unreachable_refused_and_silent_are_bounded(csim):
    csim.configure(catalog=csim.catalog_text(port=closed_port()))
    result = csim.run("--connect-timeout", "2")
    assert result.returncode == 2
    assert "cannot connect to catalog MyCatalog" in result.stderr
    assert "Connection refused" in result.stderr or \
        "connection refused" in result.stderr.lower()
    with MisbehavingServer("silent") as server:
        csim.configure(catalog=csim.catalog_text(port=server.port))
        started = time.monotonic()
        result = csim.run("--connect-timeout", "2")
        took = time.monotonic() - started
    assert result.returncode == 2
    assert "no answer within 2 s (--connect-timeout)" in result.stderr
    assert took < 30


def test_not_a_bareos_catalog(csim, pg):
    pg.psql("CREATE DATABASE %s_plain OWNER %s" % (csim.db, OWNER))
    pg.psql("GRANT CONNECT ON DATABASE %s_plain TO %s" % (csim.db, READER))
    csim.configure(catalog=csim.catalog_text(db=csim.db + "_plain"))
    result = csim.run()
    assert result.returncode == 2
    assert ("is not a Bareos catalog: it has no Version table"
            in result.stderr)


def test_a_user_without_select_rights(csim, pg):
    pg.psql("REVOKE SELECT ON Version FROM %s" % READER, db=csim.db,
            user=OWNER, password=OWNER_PASSWORD)
    csim.configure()
    result = csim.run()
    assert result.returncode == 2
    assert ("cannot read the Version table: permission denied for table "
            "version (SQLSTATE 42501)" in result.stderr)


def test_a_catalog_without_db_name(csim):
    csim.configure(catalog='Catalog {\n  Name = MyCatalog\n  User = x\n}\n')
    result = csim.run()
    assert result.returncode == 2
    assert re.search(r'MyCatalog\.conf:1: Catalog "MyCatalog" has no DB Name',
                     result.stderr), result.stderr


def test_empty_version_table(csim, pg):
    pg.psql("DELETE FROM Version", db=csim.db, user=OWNER,
            password=OWNER_PASSWORD)
    csim.configure()
    result = csim.run()
    assert result.returncode == 2
    assert "its Version table holds no schema version" in result.stderr


def test_a_job_table_without_a_column(csim, pg):
    pg.psql("UPDATE Version SET VersionId = 2171; "
            "ALTER TABLE Job DROP COLUMN ReadBytes", db=csim.db, user=OWNER,
            password=OWNER_PASSWORD)
    csim.configure()
    result = csim.run()
    assert result.returncode == 2
    assert ("(catalog schema version 2171) has no column Job.ReadBytes, "
            "which the replay reads (Bareos's current schema version is "
            "2250)" in result.stderr)


def test_another_schema_version_with_the_columns_is_a_warning(csim, pg):
    pg.psql("UPDATE Version SET VersionId = 2230", db=csim.db, user=OWNER,
            password=OWNER_PASSWORD)
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1")])
    csim.configure()
    result = csim.run()
    assert result.returncode == 0, result.stderr
    assert "has schema version 2230, not 2250" in result.stderr
    assert 1 in seen_values(result.stdout)


@pytest.mark.parametrize("column,value,message", [
    ("JobBytes", "-1", "JobBytes -1 is out of range (0 to "
                       "9223372036854775807)"),
    ("JobFiles", "-5", "JobFiles -5 is out of range (0 to 2147483647)"),
    ("JobErrors", "-2", "JobErrors -2 is out of range (0 to 2147483647)"),
    ("ReadBytes", "-9", "ReadBytes -9 is out of range"),
    ("Type", "'7'", "Type \"7\" is not a job type letter"),
    ("Level", "'%'", "Level \"%\" is not a job level letter or blank"),
    ("JobStatus", "' '", "JobStatus \" \" is not a job status letter"),
    ("Name", "''", "Name is empty"),
])
def test_values_out_of_range(csim, pg, column, value, message):
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1"),
                           job_row(2, "BackupClient1"),
                           job_row(3, "BackupClient1")])
    pg.psql("UPDATE Job SET %s = %s WHERE JobId = 2" % (column, value),
            db=csim.db, user=OWNER, password=OWNER_PASSWORD)
    csim.configure()
    result = csim.run()
    assert result.returncode == 1
    assert "bareosdir-sim: JobId 2: skipped: " + message in result.stdout
    assert sorted(seen_values(result.stdout)) == [1, 3]
    assert "1 with values out of range" in result.stdout


def test_a_value_beyond_64_bits(csim, pg):
    """A catalog whose JobBytes became NUMERIC (as JobMedia's is)."""
    pg.psql("ALTER TABLE Job ALTER COLUMN JobBytes TYPE NUMERIC(20)",
            db=csim.db, user=OWNER, password=OWNER_PASSWORD)
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1",
                                   bytes=18446744073709551615)])
    csim.configure()
    result = csim.run()
    assert result.returncode == 1
    assert ("JobId 1: skipped: JobBytes 18446744073709551615 is out of range"
            in result.stdout)


def test_a_locked_job_table_is_bounded_by_the_query_timeout(csim, pg):
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1")])
    csim.configure()
    env = catalogdb.server_env(PGPASSWORD=OWNER_PASSWORD)
    locker = subprocess.Popen(
        [catalogdb.client_bin("psql"), "-X", "-q", "-A", "-t", "-h",
         "127.0.0.1", "-p", str(pg.port), "-U", OWNER, "-d", csim.db],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        locker.stdin.write("BEGIN; LOCK TABLE Job IN ACCESS EXCLUSIVE MODE;"
                           " SELECT 'locked';\n")
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = csim.run("--query-timeout", "2")
        took = time.monotonic() - started
    finally:
        locker.stdin.close()
        locker.kill()
        locker.wait(30)
    assert result.returncode == 1
    # The server's statement_timeout answers; on a machine so loaded that
    # it cannot within 5 s more, our own wait ends it: bounded either way.
    assert re.search(
        r"the replay stopped early: reading the Job table failed: (canceling "
        r"statement due to statement timeout \(SQLSTATE 57014\)|no answer "
        r"from the server within 2 s \(--query-timeout, and 5 s more\))",
        result.stdout), result.stdout
    assert took < 60


@pytest.mark.parametrize("args,message", [
    (["--since", "yesterday"], "--since wants an age such as 24h"),
    (["--since", "2026-02-30"], "--since wants an age"),
    (["--since", "0h"], "--since wants an age"),
    (["--jobid", "0"], "--jobid wants a JobId or a range"),
    (["--jobid", "20-10"], "--jobid wants a JobId or a range"),
    (["--jobid", "3000000000"], "--jobid wants a JobId or a range"),
    (["--job-status", "T1"], "--job-status wants job status letters"),
    (["--limit", "0"], "--limit wants a number of jobs"),
    (["--connect-timeout", "0"], "--connect-timeout wants seconds"),
    (["--level", "F"], "--catalog replays the catalog's"),
])
def test_bad_command_line(csim, args, message):
    csim.configure()
    result = csim.run(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_filters_without_catalog_are_refused(csim):
    csim.configure()
    result = subprocess.run([csim.sim.binary, "-c", csim.sim.workdir,
                             "--since", "24h"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "go with --catalog" in result.stderr


@pytest.mark.parametrize("spelling", [
    ("DB Name", "DB User", "DB Password", "DB Address", "DB Port"),
    ("dbname", "user", "password", "address", "port"),
    ("DbName", "DbUser", "DbPassword", "DbAddress", "DbPort"),
])
def test_catalog_directive_spellings(csim, pg, spelling):
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1")])
    csim.configure(catalog=csim.catalog_text(spelling=spelling))
    result = csim.run()
    assert result.returncode == 0, result.stderr
    assert 1 in seen_values(result.stdout)


def test_db_socket(csim, pg):
    add_jobs(pg, csim.db, [job_row(1, "BackupClient1")])
    for socket in (pg.socket_dir,
                   os.path.join(pg.socket_dir, ".s.PGSQL.%d" % pg.port)):
        csim.configure(catalog=(
            'Catalog {\n  Name = MyCatalog\n  DB Name = %s\n  User = %s\n'
            '  Password = "%s"\n  DB Socket = "%s"\n  DB Port = %d\n}\n'
            % (csim.db, READER, READER_PASSWORD, socket, pg.port)))
        result = csim.run()
        assert result.returncode == 0, result.stderr
        assert "on %s port %d" % (socket, pg.port) in result.stdout
        assert 1 in seen_values(result.stdout)


def test_bad_port_in_the_configuration(csim):
    csim.configure(catalog=('Catalog {\n  Name = MyCatalog\n'
                            '  DB Name = x\n  DB Port = 70000\n}\n'))
    result = csim.run()
    assert result.returncode == 2
    assert "expected a TCP port number (1 to 65535)" in result.stderr


# ---- thousands of jobs through the NSCA sender and a real nsca ----------

def test_nsca_results_match_the_catalog(csim, pg, tmp_path):
    reason = NscaServer.missing_reason()
    assert reason is None, reason
    count = 2000
    statuses = "TWEfA"
    rows = [job_row(i, "BackupClient1", status=statuses[i % 5],
                    level="FID"[i % 3], client=1 + i % 2,
                    bytes=i * 2**33 + i, files=i, errors=i % 4)
            for i in range(1, count + 1)]
    add_jobs(pg, csim.db, rows)
    with NscaServer(tmp_path / "nsca", 1, None) as nsca:
        line = option_line("bareos-dir-nsca-sender", "monitorHost",
                           "127.0.0.1", "monitorPort", nsca.port,
                           "encryption=1")
        csim.configure(options=line)
        result = csim.run(timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        results = nsca.wait_for_results(count, timeout=60)
    assert len(results) == count
    codes = {"T": 0, "W": 1, "E": 2, "f": 2, "A": 1}
    states = {0: "OK", 1: "WARNING", 2: "CRITICAL"}
    for row, res in zip(rows, results):
        v = expected_values(row)
        message = ("%s: Bareos job %s on %s with id %d level %s, %d errors, "
                   "%d jobBytes, %d files terminated with status %s%s"
                   % (states[codes[v["status"]]], v["job"], v["client"],
                      v["jobid"], v["level"], v["errors"], v["bytes"],
                      v["files"], v["status"],
                      " CANCELED" if v["status"] == "A" else ""))
        assert res.code == codes[v["status"]]
        assert res.output.split("|")[0] == message
