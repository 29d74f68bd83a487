"""Loader of the NSCA sender: ``module_name=bareos-dir-nsca-sender``.

Reports every job's result to Icinga or Nagios through an nsca server; see
BareosDirPluginNscaSender for the options.
"""

import bareosdir
import BareosDirPluginNscaSender
import BareosDirWrapper
from BareosDirWrapper import *  # noqa: F401,F403  (the host's entry points)


def load_bareos_plugin(*args):
    BareosDirWrapper.bareos_dir_plugin_object = (
        BareosDirPluginNscaSender.BareosDirPluginNscaSender(*args))
    return bareosdir.bRC_OK
