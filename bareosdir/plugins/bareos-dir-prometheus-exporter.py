"""Loader of the Prometheus exporter:
``module_name=bareos-dir-prometheus-exporter``.

Pushes every job's metrics to a Prometheus Pushgateway; see
BareosDirPluginPrometheusExporter for the options and metrics.
"""

import bareosdir
import BareosDirPluginPrometheusExporter
import BareosDirWrapper
from BareosDirWrapper import *  # noqa: F401,F403  (the host's entry points)


def load_bareos_plugin(*args):
    BareosDirWrapper.bareos_dir_plugin_object = (
        BareosDirPluginPrometheusExporter.BareosDirPluginPrometheusExporter(
            *args))
    return bareosdir.bRC_OK
