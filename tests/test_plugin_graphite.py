"""The Graphite sender (bareos-dir-graphite-sender) against Debian's real
carbon-cache on 127.0.0.1 with a private whisper directory
(tests/servers.py), through the mock Director; and its behaviour when carbon
is down."""

from __future__ import annotations

import time

import pytest

from servers import (CarbonCache, MisbehavingServer, assert_job_ok,
                     closed_port, job_with_invalid_option, option_line,
                     run_job, warnings_of)


pytestmark = pytest.mark.usefixtures("no_plugin_modules_left_behind")


@pytest.fixture
def graphite():
    """The plugin's class module, imported into the test process."""
    from bareosdir.plugins import BareosDirPluginGraphiteSender
    return BareosDirPluginGraphiteSender


@pytest.fixture(scope="module")
def carbon(tmp_path_factory):
    """One carbon-cache for the module; each test uses its own job names."""
    reason = CarbonCache.missing_reason()
    if reason:
        # A test that cannot run fails (tools/setup.sh --test installs it).
        pytest.fail(reason)
    with CarbonCache(tmp_path_factory.mktemp("carbon")) as server:
        yield server


def options(port, extra="", prefix="python3"):
    return option_line("bareos-dir-graphite-sender", "collectorHost",
                       "127.0.0.1", "collectorPort", port, extra, prefix)


def test_terminated_job_writes_all_metrics(director, carbon):
    # A run time, so that the throughput is always there to check (a
    # simulated job without one ran for microseconds, or 0).
    job = run_job(director, options(carbon.port), "GraphiteOK",
                  bytes=123456, files=42, run_time=0.25)
    assert_job_ok(job)
    assert job.messages == []
    base = "apps.bareos.jobs.GraphiteOK"
    assert carbon.values(base + ".status.success") == [1]
    assert carbon.values(base + ".jobbytes") == [123456]
    assert carbon.values(base + ".jobfiles") == [42]
    [running] = carbon.values(base + ".runningtime")
    [throughput] = carbon.values(base + ".throughput")
    assert 0.25 <= running < 30
    assert throughput == pytest.approx(123456 / running, rel=1e-6)
    assert [m for m in carbon.metrics() if m.startswith(base + ".")] == [
        base + "." + leaf for leaf in (
            "jobbytes", "jobfiles", "runningtime", "status.success",
            "throughput")]


@pytest.mark.parametrize("status,leaf", [("W", "warning"), ("E", "error"),
                                         ("f", "error"), ("A", "other"),
                                         ("R", "other")])
def test_other_states_write_only_the_status(director, carbon, status, leaf):
    name = "Graphite%s" % {"f": "Fatal"}.get(status, status)
    job = run_job(director, options(carbon.port, prefix="python"), name,
                  status=status)
    assert_job_ok(job)
    assert job.messages == []
    base = "apps.bareos.jobs.%s" % name
    assert carbon.values("%s.status.%s" % (base, leaf)) == [1]
    time.sleep(0.5)
    assert [m for m in carbon.metrics() if m.startswith(base + ".")] == [
        "%s.status.%s" % (base, leaf)]


def test_prefix_and_job_name_with_dots_and_spaces(director, carbon):
    job = run_job(director, options(carbon.port, "metricPrefix=site1.backup"),
                  "Nightly.Web Server")
    assert_job_ok(job)
    assert job.messages == []
    assert carbon.values(
        "site1.backup.bareos.jobs.Nightly_Web_Server.jobbytes") == [1000]


def test_main_interpreter_mode(director, carbon):
    job = run_job(director, options(carbon.port, "interpreter=main"),
                  "GraphiteMain")
    assert_job_ok(job)
    assert job.messages == []
    assert carbon.values("apps.bareos.jobs.GraphiteMain.jobbytes") == [1000]


def test_carbon_down(director):
    port = closed_port()
    started = time.monotonic()
    job = run_job(director, options(port, "timeout=5"), "GraphiteDown")
    assert time.monotonic() - started < 5
    assert_job_ok(job)
    [warning] = warnings_of(job)
    assert warning.startswith("bareos-dir-graphite-sender: ")
    assert "127.0.0.1:%d" % port in warning
    assert "connection refused" in warning


def test_silent_carbon_does_not_hold_up_the_job(director):
    """carbon answers nothing in its plaintext protocol: the few lines fit in
    the socket buffers and the job goes on."""
    with MisbehavingServer("silent") as server:
        started = time.monotonic()
        job = run_job(director, options(server.port, "timeout=1"),
                      "GraphiteSilent")
        assert time.monotonic() - started < 3
    assert_job_ok(job)
    assert job.messages == []


@pytest.mark.parametrize("extra,problem", [
    ("collectorPort=0", "option collectorPort=0 is invalid"),
    ("metricPrefix=a b", "option metricPrefix=a b is invalid"),
    ("timeout=soon", "option timeout=soon is invalid"),
])
def test_invalid_options_warn_and_send_nothing(director, extra, problem):
    assert problem in job_with_invalid_option(
        director, lambda port: options(port, extra), "GraphiteBad")


def test_default_collector_port_is_2003(director):
    from servers import port_accepts
    if port_accepts(2003):
        pytest.skip("something listens on 127.0.0.1:2003")
    job = run_job(director, "python3:module_name=bareos-dir-graphite-sender"
                            ":collectorHost=127.0.0.1", "GraphiteDefaults")
    debug = "".join(m.text for m in job.debug_messages)
    assert "to 127.0.0.1:2003" in debug
    [warning] = warnings_of(job)
    assert "127.0.0.1:2003: connection refused" in warning


def test_option_defaults(graphite):
    """As the contrib plugin's (the default host is not contacted here: it
    would need a name lookup)."""
    defaults = {key: option.default for key, option in
                graphite.BareosDirPluginGraphiteSender.OPTIONS.items()}
    assert defaults == {"collectorHost": "graphite", "collectorPort": 2003,
                        "metricPrefix": "apps", "timeout": 10.0}


# ---- without a server ---------------------------------------------------

def test_job_base_name():
    from bareosdir.plugins import bareosdir_monitor
    name = bareosdir_monitor.job_base_name
    assert name("BackupClient1.2026-11-27_03.00.00_05") == "BackupClient1"
    assert name("my.job.2026-01-02_13.14.15_123") == "my.job"
    assert name("NoSuffix") == "NoSuffix"
    assert name(None) == ""


def test_metric_name(graphite):
    assert graphite.metric_name("my.job name/x") == "my_job_name_x"
    assert graphite.metric_name("Client-1:a_b") == "Client-1:a_b"
    assert graphite.metric_name("") == "_"


def test_format_value(graphite):
    assert graphite.format_value(1000) == "1000"
    assert graphite.format_value(2.0) == "2"
    assert graphite.format_value(0.25) == "0.25"
    assert graphite.format_value(10 ** 15) == "1000000000000000"


# ---- through the shim: bareosdir-sim loads python3-dir.so ---------------

SIM_JOB = """
Job {
  Name = "GraphiteShim"
  JobDefs = "DefaultJob"
  Client = "bareos-fd"
  Dir Plugin Options = "python3:module_name=bareos-dir-graphite-sender"
                       ":collectorHost=127.0.0.1:collectorPort=%d"
                       ":metricPrefix=shim"
}
"""


def test_through_the_shim(sim, carbon):
    sim.configure(SIM_JOB % carbon.port)
    result = sim.run("GraphiteShim", jobs=2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 of 2 jobs OK" in result.stdout
    assert "Warning" not in result.stdout
    base = "shim.bareos.jobs.GraphiteShim"
    # Two jobs: one point, or two when they ended in different seconds.
    assert set(carbon.values(base + ".status.success")) == {1}
    assert set(carbon.values(base + ".jobbytes")) == {0}
    assert set(carbon.values(base + ".jobfiles")) == {0}


def test_through_the_shim_carbon_down(sim):
    port = closed_port()
    result = sim.run("backup-bareos-fd", [
        "python3:module_name=bareos-dir-graphite-sender"
        ":collectorHost=127.0.0.1:collectorPort=%d" % port])
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("Warning: bareos-dir-graphite-sender: could not send metrics to "
            "carbon at 127.0.0.1:%d: connection refused" % port) \
        in result.stdout
