"""The loader of the plain class-based plugin.

``module_name=bareos-dir-class-plugin`` runs a `BareosDirPluginBaseclass`
itself: it registers the job events and reads the job's values, and shows
them in debug messages at level 100. It is the starting point for a plugin
of your own: copy this file, derive a class from the base class and
construct that here instead.
"""

import bareosdir
import BareosDirPluginBaseclass
import BareosDirWrapper
from BareosDirWrapper import *  # noqa: F401,F403  (the host's entry points)


def load_bareos_plugin(*args):
    # (plugindef) as Bareos 20 and later call it, or (context, plugindef).
    BareosDirWrapper.bareos_dir_plugin_object = (
        BareosDirPluginBaseclass.BareosDirPluginBaseclass(*args))
    return bareosdir.bRC_OK
