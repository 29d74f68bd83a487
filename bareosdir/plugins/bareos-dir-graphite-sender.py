"""Loader of the Graphite sender: ``module_name=bareos-dir-graphite-sender``.

Sends every job's result to carbon's plaintext line receiver; see
BareosDirPluginGraphiteSender for the options and metric paths.
"""

import bareosdir
import BareosDirPluginGraphiteSender
import BareosDirWrapper
from BareosDirWrapper import *  # noqa: F401,F403  (the host's entry points)


def load_bareos_plugin(*args):
    BareosDirWrapper.bareos_dir_plugin_object = (
        BareosDirPluginGraphiteSender.BareosDirPluginGraphiteSender(*args))
    return bareosdir.bRC_OK
