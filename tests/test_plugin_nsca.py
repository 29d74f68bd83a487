"""The NSCA sender (bareos-dir-nsca-sender) and its NSCA client, against
Debian's real nsca daemon on 127.0.0.1 (tests/servers.py), through the
mock Director; and its behaviour when the server is down, silent or slow."""

from __future__ import annotations

import re
import struct
import time
import zlib

import pytest

from servers import (MisbehavingServer, NscaServer, assert_job_ok, closed_port,
                     job_with_invalid_option, option_line, run_job, warnings_of)

MESSAGE = ("Bareos job {name} on client1-fd with id 5 level F, 0 errors, "
           "1000 jobBytes, 10 files terminated with status {status}")


pytestmark = pytest.mark.usefixtures("no_plugin_modules_left_behind")


@pytest.fixture
def nsca_client():
    """The client module, imported into the test process."""
    from bareosdir.plugins import bareosdir_nsca
    return bareosdir_nsca


def nsca_server(tmp_path, method=1, password=None):
    reason = NscaServer.missing_reason()
    if reason:
        # A test that cannot run fails (tools/setup.sh --test installs it).
        pytest.fail(reason)
    return NscaServer(tmp_path / "nsca", method, password)


def options(port, extra="", host="127.0.0.1", prefix="python3"):
    return option_line("bareos-dir-nsca-sender", "monitorHost", host,
                       "monitorPort", port, extra, prefix)


def all_text(job):
    return [m.text for m in job.messages] + [m.text for m in
                                             job.debug_messages]


# ---- against the real nsca ---------------------------------------------

@pytest.mark.parametrize("method,password", [(0, None), (1, None),
                                             (1, "s3cret:pass")])
def test_job_results_reach_nsca(director, tmp_path, method, password):
    extra = "encryption=%d" % method
    if password:
        extra += ":password=" + password.replace(":", "\\:")
    with nsca_server(tmp_path, method, password) as nsca:
        jobs = [run_job(director, options(nsca.port, extra), status=s)
                for s in "TWE"]
        results = nsca.wait_for_results(3)
    for job in jobs:
        assert_job_ok(job)
        assert job.messages == []
    assert [(r.host, r.service, r.code) for r in results] == [
        ("bareos", "backup_job", 0), ("bareos", "backup_job", 1),
        ("bareos", "backup_job", 2)]
    for job, result, (state, status) in zip(
            jobs, results, [("OK", "T"), ("WARNING", "W"),
                            ("CRITICAL", "E")]):
        message, _, perf = result.output.partition("|")
        assert message == "%s: %s" % (state, MESSAGE.format(name=job.name,
                                                             status=status))
        assert perf.startswith("Errors=0;;;; Bytes=1000B;;;; Files=10;;;; "
                               "Throughput=")
        assert "jobRuntime=" in perf and "jobTotalTime=" in perf
        assert abs(result.time - time.time()) < 60


@pytest.mark.parametrize("status,code,suffix", [
    ("A", 1, " CANCELED"), ("f", 2, ""), ("R", 3, ""), ("e", 3, "")])
def test_other_job_states(director, tmp_path, status, code, suffix):
    with nsca_server(tmp_path) as nsca:
        job = run_job(director, options(nsca.port), status=status)
        [result] = nsca.wait_for_results(1)
    assert_job_ok(job)
    assert result.code == code
    state = {1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}[code]
    assert result.output.split("|")[0] == "%s: %s%s" % (
        state, MESSAGE.format(name=job.name, status=status), suffix)


def test_check_host_and_service_of_two_instances(director, tmp_path):
    with nsca_server(tmp_path, 1, "pw") as nsca:
        job = run_job(director, [
            options(nsca.port, "instance=0:password=pw:checkHost=backup01"
                    ":checkService=job_client1"),
            options(nsca.port, "instance=1:password=pw:checkHost=backup02"
                    ":checkService=job_client1_copy", prefix="python")])
        results = nsca.wait_for_results(2)
    assert_job_ok(job)
    assert sorted((r.host, r.service, r.code) for r in results) == [
        ("backup01", "job_client1", 0), ("backup02", "job_client1_copy", 0)]


def test_two_instances_in_the_main_interpreter(director, tmp_path):
    """interpreter=main: both instances share one interpreter and must still
    keep their own plugin objects and options."""
    with nsca_server(tmp_path) as nsca:
        job = run_job(director, [
            options(nsca.port, "instance=0:interpreter=main:checkService=a"),
            options(nsca.port, "instance=1:interpreter=main:checkService=b")],
            status="W")
        results = nsca.wait_for_results(2)
    assert_job_ok(job)
    assert job.messages == []
    assert sorted((r.service, r.code) for r in results) == [("a", 1),
                                                            ("b", 1)]


def test_output_is_cut_to_511_bytes_keeping_the_performance_data(
        director, tmp_path):
    client = "kliënt-" + "ü" * 300
    with nsca_server(tmp_path) as nsca:
        job = director.job("BackupClient1", jobid=5, level="F", type="B",
                           client=client)
        job.run([options(nsca.port)], status="T", bytes=1000, files=10)
        [result] = nsca.wait_for_results(1)
    assert_job_ok(job)
    assert job.messages == []
    output = result.output.encode("utf-8")
    assert 480 < len(output) <= 511
    message, _, perf = result.output.partition("|")
    assert message.startswith("OK: Bareos job BackupClient1.")
    assert message.endswith("ü")
    assert perf.startswith("Errors=0;;;; Bytes=1000B;;;;")
    assert perf.endswith("jobTotalTime=0s;;;;")


def test_client_cuts_fields_at_character_boundaries(tmp_path, nsca_client):
    """Unit level, straight to the real server: 3-byte characters in every
    field, each longer than nsca takes; a line break in the output (which
    nsca before 2.10 would write raw into the command file)."""
    with nsca_server(tmp_path, 0) as nsca:
        nsca_client.send_service_check(
            "127.0.0.1", nsca.port, "h" + "€" * 40, "s" + "€" * 60,
            nsca_client.WARNING, "line one\nline two " + "€" * 400,
            encryption=0, timeout=5)
        [result] = nsca.wait_for_results(1)
    assert result.host == "h" + "€" * 20            # 61 of 63 bytes
    assert result.service == "s" + "€" * 42         # 127 of 127 bytes
    assert result.output.startswith("line one line two €")
    assert len(result.output.encode("utf-8")) == 510   # 511 would split a €
    assert result.code == 1


def test_a_wrong_password_is_dropped_silently_by_nsca(director, tmp_path):
    """NSCA does not acknowledge: a packet failing the CRC check is only
    logged to syslog by nsca, so the plugin cannot warn. The job is fine."""
    with nsca_server(tmp_path, 1, "right") as nsca:
        job = run_job(director, options(nsca.port, "password=wrong"))
        time.sleep(1.5)
        results = nsca.results()
    assert_job_ok(job)
    assert job.messages == []
    assert results == []


def test_the_password_never_appears_in_messages(director, tmp_path):
    secret = "Sup3rS3cret"
    with nsca_server(tmp_path, 1, secret) as nsca:
        good = run_job(director, options(nsca.port, "password=" + secret))
        assert len(nsca.wait_for_results(1)) == 1
    down = run_job(director, options(closed_port(), "password=" + secret))
    assert warnings_of(down)
    for job in (good, down):
        assert not any(secret in text for text in all_text(job))


# ---- failures: never fail or hold up the job ---------------------------

def test_server_down(director):
    port = closed_port()
    started = time.monotonic()
    job = run_job(director, options(port, "timeout=5"))
    assert time.monotonic() - started < 5
    assert_job_ok(job)
    [warning] = warnings_of(job)
    assert "127.0.0.1:%d" % port in warning
    assert "connection refused" in warning
    assert warning.startswith("bareos-dir-nsca-sender: ")


@pytest.mark.parametrize("behaviour,reason", [
    ("silent", "no complete answer within the timeout of 1 s"),
    ("trickle", "no complete answer within the timeout of 1 s"),
    ("close", "closed the connection after 0 of 132 bytes")])
def test_misbehaving_server_is_bounded_by_the_timeout(director, behaviour,
                                                      reason):
    # trickle: the 132-byte init packet at 5 bytes a second would take 26 s.
    with MisbehavingServer(behaviour, data=bytes(132),
                           interval=0.2) as server:
        started = time.monotonic()
        job = run_job(director, options(server.port, "timeout=1"))
        elapsed = time.monotonic() - started
    assert elapsed < 3
    assert_job_ok(job)
    [warning] = warnings_of(job)
    assert server.address in warning
    assert reason in warning


def test_default_timeout_is_ten_seconds(director):
    with MisbehavingServer("silent") as server:
        started = time.monotonic()
        job = run_job(director, options(server.port))
        elapsed = time.monotonic() - started
    assert 9.5 < elapsed < 13
    assert "timeout of 10 s" in warnings_of(job)[0]


@pytest.mark.parametrize("extra,problem", [
    ("monitorPort=http", "option monitorPort=http is invalid: not a TCP "
                         "port number"),
    ("monitorPort=70000", "option monitorPort=70000 is invalid"),
    ("encryption=3", "option encryption=3 is invalid: not one of 0, 1"),
    ("timeout=0", "option timeout=0 is invalid"),
])
def test_invalid_options_warn_and_send_nothing(director, extra, problem):
    warning = job_with_invalid_option(
        director, lambda port: options(port, extra))
    assert problem in warning
    assert "sends nothing" in warning


def test_missing_monitor_host(director):
    job = run_job(director, "python3:module_name=bareos-dir-nsca-sender")
    assert_job_ok(job)
    [warning] = warnings_of(job)
    assert "option monitorHost is required" in warning


def test_unknown_option_warns_but_sends(director, tmp_path):
    with nsca_server(tmp_path) as nsca:
        job = run_job(director, options(nsca.port, "monitorport=1"))
        assert len(nsca.wait_for_results(1)) == 1
    assert_job_ok(job)
    [warning] = warnings_of(job)
    assert "unknown option 'monitorport' ignored" in warning


def test_defaults_port_5667_host_bareos_service_backup_job(director):
    """Nothing listens on 127.0.0.1:5667 here (or the test is skipped): the
    warning names the default port."""
    from servers import port_accepts
    if port_accepts(5667):
        pytest.skip("something listens on 127.0.0.1:5667")
    job = run_job(director, options(None, "timeout=2"))
    [warning] = warnings_of(job)
    assert "127.0.0.1:5667" in warning
    debug = "".join(m.text for m in job.debug_messages)
    assert "bareos/backup_job" in debug and "encryption 1" in debug


# ---- the packet, without a server --------------------------------------

def test_packet_layout_and_crc(nsca_client):
    packet = nsca_client.build_packet(0x01020304, 2, "host", "svc",
                                         "text")
    assert len(packet) == 720
    version, crc, stamp, code = struct.unpack(">h2xIIh", packet[:14])
    assert (version, stamp, code) == (3, 0x01020304, 2)
    assert packet[14:18] == b"host" and packet[18:78] == bytes(60)
    assert packet[78:81] == b"svc" and packet[81:206] == bytes(125)
    assert packet[206:210] == b"text" and packet[210:] == bytes(510)
    zeroed = packet[:4] + bytes(4) + packet[8:]
    assert crc == zlib.crc32(zeroed)


def test_xor_uses_the_iv_then_the_password(nsca_client):
    iv = bytes(range(128))
    data = bytes(300)
    once = nsca_client.xor(data, iv, b"")
    assert once == bytes(i % 128 for i in range(300))
    both = nsca_client.xor(data, iv, b"ab")
    assert both == bytes((i % 128) ^ b"ab"[i % 2] for i in range(300))
    assert nsca_client.xor(both, iv, b"ab") == data


def test_fit(nsca_client):
    assert nsca_client.fit("abc", 4) == b"abc"
    assert nsca_client.fit("abcd", 4) == b"abc"
    assert nsca_client.fit("aé", 3) == b"a"          # é is 2 bytes
    assert nsca_client.fit("a\r\nb\0c\nd", 16) == b"a bc d"


def test_option_defaults():
    from bareosdir.plugins import BareosDirPluginNscaSender as nsca
    defaults = {key: option.default for key, option in
                nsca.BareosDirPluginNscaSender.OPTIONS.items()}
    assert defaults == {"monitorHost": None, "monitorPort": 5667,
                        "checkHost": "bareos", "checkService": "backup_job",
                        "encryption": 1, "password": None, "timeout": 10.0}


# ---- through the shim: bareosdir-sim loads python3-dir.so ---------------

SIM_JOB = """
Job {
  Name = "nsca-job"
  JobDefs = "DefaultJob"
  Client = "bareos-fd"
  Dir Plugin Options = "python3"
                       ":module_name=bareos-dir-nsca-sender"
                       ":monitorHost=127.0.0.1:monitorPort=%d"
                       ":checkService=nightly"
}
"""


def test_through_the_shim(sim, tmp_path):
    """The documented configuration form (adjacent quoted strings) in a Job
    resource; three concurrent jobs ending with a warning status."""
    with nsca_server(tmp_path) as nsca:
        sim.configure(SIM_JOB % nsca.port)
        result = sim.run("nsca-job", status="W", jobs=3, concurrent=3)
        results = nsca.wait_for_results(3)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 of 3 jobs OK" in result.stdout
    assert "Warning" not in result.stdout
    assert sorted((r.host, r.service, r.code) for r in results) == [
        ("bareos", "nightly", 1)] * 3
    assert sorted(r.output.split(" on ")[0] for r in results) == sorted(
        "WARNING: Bareos job nsca-job.%s" % name.split("nsca-job.")[1]
        for name in re.findall(r"\((nsca-job\.[^)]*)\)", result.stdout))
    assert all("on bareos-fd with id" in r.output and "level I" in r.output
               for r in results)


def test_through_the_shim_server_down(sim):
    port = closed_port()
    started = time.monotonic()
    result = sim.run("backup-bareos-fd", [
        "python3:module_name=bareos-dir-nsca-sender:monitorHost=127.0.0.1"
        ":monitorPort=%d:password=Hidden99" % port], debug=200)
    assert time.monotonic() - started < 30
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("bareos-dir JobId 1: Warning: bareos-dir-nsca-sender: could not "
            "send the check result to nsca at 127.0.0.1:%d: connection "
            "refused" % port) in result.stdout
    assert "Hidden99" not in result.stdout + result.stderr
