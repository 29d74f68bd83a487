"""The Prometheus exporter (bareos-dir-prometheus-exporter) against Debian's
real prometheus-pushgateway on 127.0.0.1 (tests/servers.py), through the
mock Director: plain, with basic auth and with TLS; and its behaviour when
the gateway is down, silent or refuses."""

from __future__ import annotations

import time

import pytest

from servers import (MisbehavingServer, Pushgateway, assert_job_ok,
                     closed_port, job_with_invalid_option,
                     option_line, run_job, warnings_of)


pytestmark = pytest.mark.usefixtures("no_plugin_modules_left_behind")


def gateway(tmp_path, **kwargs):
    reason = Pushgateway.missing_reason()
    if reason:
        # A test that cannot run fails (tools/setup.sh --test installs it).
        pytest.fail(reason)
    return Pushgateway(tmp_path / "pushgateway", **kwargs)


def options(port, extra="", prefix="python3"):
    return option_line("bareos-dir-prometheus-exporter", "gateway_host",
                       "127.0.0.1", "gateway_port", port, extra, prefix)


def of_job(samples, instance):
    """{(name, state or None): value} of one job's pushed samples."""
    found = {}
    for name, labels, value in samples:
        if labels.get("instance") != instance:
            continue
        state = labels.get(name) or labels.get("le")
        found[(name, state)] = value
    return found


def assert_metrics_of_a_full_backup(samples, instance="BackupClient1",
                                    jobid="5", status="Terminated"):
    mine = [(n, l, v) for n, l, v in samples if l.get("instance") == instance]
    assert mine, samples
    for name, labels, _ in mine:
        assert labels["job"] == "bareos"
        assert labels["jobid"] == jobid
        assert labels["client"] == "client1-fd"
    found = of_job(samples, instance)
    assert found[("bareos_job_bytes", None)] == 1000
    assert found[("bareos_job_files", None)] == 10
    assert found[("bareos_job_priority", None)] == 10
    assert found[("bareos_job_status", status)] == 1
    assert found[("bareos_job_status", "Running")] == 0
    assert found[("bareos_job_level", "Full")] == 1
    assert found[("bareos_job_level", "Incremental")] == 0
    assert found[("bareos_job_type", "Backup")] == 1
    assert found[("bareos_job_client_info", None)] == 1
    assert found[("bareos_job_running_time_count", None)] == 1
    assert found[("bareos_job_running_time_bucket", "6")] == 1
    assert ("bareos_job_running_time_sum", None) in found
    assert found[("bareos_job_throughput", None)] >= 0


def test_metrics_appear_at_the_pushgateway(director, tmp_path):
    with gateway(tmp_path) as gw:
        job = run_job(director, options(gw.port))
        samples = gw.samples()
    assert_job_ok(job)
    assert job.messages == []
    assert_metrics_of_a_full_backup(samples)
    names = {name for name, _, _ in samples}
    assert names >= {
        "bareos_job_status", "bareos_job_running_time_bucket",
        "bareos_job_files", "bareos_job_bytes", "bareos_job_throughput",
        "bareos_job_priority", "bareos_job_level", "bareos_job_type",
        "bareos_job_client_info"}


def test_main_interpreter_mode(director, tmp_path):
    with gateway(tmp_path) as gw:
        job = run_job(director, options(gw.port, "interpreter=main"))
        samples = gw.samples()
    assert_job_ok(job)
    assert job.messages == []
    assert_metrics_of_a_full_backup(samples)


def test_each_job_keeps_its_own_group(director, tmp_path):
    with gateway(tmp_path) as gw:
        run_job(director, options(gw.port), name="BackupClient1", jobid=5)
        run_job(director, options(gw.port, prefix="python"),
                name="BackupClient2", jobid=6, status="W")
        run_job(director, options(gw.port), name="BackupClient1", jobid=7)
        samples = gw.samples()
    assert_metrics_of_a_full_backup(samples, "BackupClient1", jobid="7")
    assert_metrics_of_a_full_backup(samples, "BackupClient2", jobid="6",
                                    status="Warning")


@pytest.mark.parametrize("status", ["E", "f", "A"])
def test_failed_jobs_are_not_pushed_by_default(director, tmp_path, status):
    with gateway(tmp_path) as gw:
        job = run_job(director, options(gw.port), status=status)
        samples = gw.samples()
    assert_job_ok(job)
    assert job.messages == []
    assert samples == []


@pytest.mark.parametrize("status,state", [("E", "Error"),
                                          ("f", "Fatal error"),
                                          ("A", "Canceled")])
def test_failed_jobs_with_report_failed(director, tmp_path, status, state):
    with gateway(tmp_path) as gw:
        job = run_job(director, options(gw.port, "report_failed=yes"),
                      status=status)
        samples = gw.samples()
    assert_job_ok(job)
    assert job.messages == []
    assert of_job(samples, "BackupClient1")[("bareos_job_status", state)] \
        == 1


def test_basic_auth(director, tmp_path):
    with gateway(tmp_path, users={"monitoring": "Pa55:word"}) as gw:
        good = run_job(director, options(
            gw.port, "username=monitoring:password=Pa55\\:word"))
        bad = run_job(director, options(
            gw.port, "username=monitoring:password=Wr0ng"),
            name="BackupClient2")
        samples = gw.samples()
    assert_job_ok(good)
    assert good.messages == []
    assert_metrics_of_a_full_backup(samples)
    assert of_job(samples, "BackupClient2") == {}
    assert_job_ok(bad)
    [warning] = warnings_of(bad)
    assert "http://127.0.0.1:%d" % gw.port in warning
    assert "HTTP 401" in warning
    for job, secret in ((good, "Pa55"), (bad, "Wr0ng")):
        texts = [m.text for m in job.messages + job.debug_messages]
        assert not any(secret in text for text in texts)


def test_tls(director, tmp_path, monkeypatch):
    with gateway(tmp_path, tls=True) as gw:
        untrusted = run_job(director, options(gw.port, "use_tls=yes"))
        monkeypatch.setenv("SSL_CERT_FILE", gw.cafile)
        trusted = run_job(director, options(gw.port, "use_tls=true"),
                          name="BackupClient2")
        samples = gw.samples()
    assert_job_ok(untrusted)
    [warning] = warnings_of(untrusted)
    assert "https://127.0.0.1:%d" % gw.port in warning
    assert "CERTIFICATE_VERIFY_FAILED" in warning
    assert_job_ok(trusted)
    assert trusted.messages == []
    assert_metrics_of_a_full_backup(samples, "BackupClient2")


def test_tls_and_basic_auth(director, tmp_path, monkeypatch):
    with gateway(tmp_path, tls=True, users={"bareos": "pw"}) as gw:
        monkeypatch.setenv("SSL_CERT_FILE", gw.cafile)
        job = run_job(director, options(
            gw.port, "use_tls=yes:username=bareos:password=pw"))
        samples = gw.samples()
    assert_job_ok(job)
    assert job.messages == []
    assert_metrics_of_a_full_backup(samples)


def test_gateway_host_given_as_a_url(director, tmp_path, monkeypatch):
    """gateway_host=https\\://host\\:port: the scheme turns TLS on, the
    port is taken when gateway_port is not given."""
    with gateway(tmp_path, tls=True) as gw:
        monkeypatch.setenv("SSL_CERT_FILE", gw.cafile)
        job = run_job(director, "python3:module_name=bareos-dir-prometheus-"
                      "exporter:gateway_host=https\\://127.0.0.1\\:%d"
                      % gw.port)
        samples = gw.samples()
    assert_job_ok(job)
    assert job.messages == []
    assert_metrics_of_a_full_backup(samples)


def test_username_without_password_pushes_without_auth(director, tmp_path):
    with gateway(tmp_path) as gw:
        job = run_job(director, options(gw.port, "username=someone"))
        samples = gw.samples()
    assert_job_ok(job)
    [warning] = warnings_of(job)
    assert "needs both username and password" in warning
    assert_metrics_of_a_full_backup(samples)


# ---- failures: never fail or hold up the job ---------------------------

def test_gateway_down(director):
    port = closed_port()
    started = time.monotonic()
    job = run_job(director, options(port))
    assert time.monotonic() - started < 5
    assert_job_ok(job)
    [warning] = warnings_of(job)
    assert warning.startswith("bareos-dir-prometheus-exporter: ")
    assert "http://127.0.0.1:%d" % port in warning
    assert "connection refused" in warning


@pytest.mark.parametrize("behaviour,reason", [
    ("silent", "no complete answer within the timeout of 1.5 s"),
    ("trickle", "no complete answer within the timeout of 1.5 s"),
    # A server that closes with our request unread resets the connection;
    # whether the reset or the end of the stream is seen first is a race.
    ("close", ("no HTTP answer", "connection reset by the server"))])
def test_misbehaving_gateway_is_bounded_by_the_timeout(director, behaviour,
                                                       reason):
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    with MisbehavingServer(behaviour, data=answer, interval=0.25) as server:
        started = time.monotonic()
        job = run_job(director, options(server.port, "timeout=1.5"))
        elapsed = time.monotonic() - started
    assert elapsed < 3.5
    assert_job_ok(job)
    [warning] = warnings_of(job)
    assert "http://%s" % server.address in warning
    reasons = reason if isinstance(reason, tuple) else (reason,)
    assert any(r in warning for r in reasons), warning


@pytest.mark.parametrize("extra,problem", [
    ("gateway_port=x", "option gateway_port=x is invalid"),
    ("use_tls=maybe", "option use_tls=maybe is invalid: not one of yes/no"),
    ("report_failed=2", "option report_failed=2 is invalid"),
    ("timeout=-1", "option timeout=-1 is invalid"),
])
def test_invalid_options_warn_and_push_nothing(director, extra, problem):
    assert problem in job_with_invalid_option(
        director, lambda port: options(port, extra))


def test_default_gateway_is_localhost_9091(director):
    from servers import port_accepts
    if port_accepts(9091):
        pytest.skip("something listens on 127.0.0.1:9091")
    job = run_job(director, "python3:module_name=bareos-dir-prometheus-"
                            "exporter:gateway_host=127.0.0.1")
    [warning] = warnings_of(job)
    assert "http://127.0.0.1:9091" in warning
    job = run_job(director, "python3:module_name=bareos-dir-prometheus-"
                            "exporter:timeout=2")
    debug = "".join(m.text for m in job.debug_messages)
    assert "http://localhost:9091" in debug


def test_missing_prometheus_client_warns(director, monkeypatch):
    """Without python3-prometheus-client the job still ends well. (Shown in
    the main interpreter, whose sys.modules the test can change.)"""
    import sys
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    job = run_job(director, options(closed_port(), "interpreter=main"))
    assert_job_ok(job)
    [warning] = warnings_of(job)
    assert "prometheus_client is missing" in warning
    assert "install python3-prometheus-client" in warning


def test_option_defaults():
    from bareosdir.plugins import BareosDirPluginPrometheusExporter as prom
    defaults = {key: option.default for key, option in
                prom.BareosDirPluginPrometheusExporter.OPTIONS.items()}
    assert defaults == {"gateway_host": "localhost", "gateway_port": 9091,
                        "use_tls": False, "username": None, "password": None,
                        "report_failed": False, "timeout": 10.0}


@pytest.mark.parametrize("text,value", [
    ("yes", True), ("Yes", True), ("true", True), ("on", True), ("1", True),
    ("no", False), ("FALSE", False), ("off", False), ("0", False)])
def test_boolean_options(text, value):
    from bareosdir.plugins import bareosdir_monitor
    assert bareosdir_monitor.boolean(text) is value


# ---- through the shim: bareosdir-sim loads python3-dir.so ---------------

def test_through_the_shim(sim, tmp_path):
    with gateway(tmp_path) as gw:
        result = sim.run("backup-bareos-fd", [
            "python3:module_name=bareos-dir-prometheus-exporter"
            ":gateway_host=127.0.0.1:gateway_port=%d" % gw.port])
        samples = gw.samples()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout
    found = of_job(samples, "backup-bareos-fd")
    assert found[("bareos_job_status", "Terminated")] == 1
    assert found[("bareos_job_level", "Incremental")] == 1
    assert found[("bareos_job_type", "Backup")] == 1
    assert found[("bareos_job_priority", None)] == 10
    assert {labels["client"] for name, labels, _ in samples
            if name == "bareos_job_client_info"} == {"bareos-fd"}


def test_through_the_shim_gateway_silent(sim):
    with MisbehavingServer("silent") as server:
        started = time.monotonic()
        result = sim.run("backup-bareos-fd", [
            "python3:module_name=bareos-dir-prometheus-exporter"
            ":gateway_host=127.0.0.1:gateway_port=%d:timeout=1" % server.port])
        assert time.monotonic() - started < 30
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("Warning: bareos-dir-prometheus-exporter: could not push metrics "
            "to the Pushgateway at http://%s: no complete answer within the "
            "timeout of 1 s" % server.address) in result.stdout
