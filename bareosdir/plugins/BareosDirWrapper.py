"""The module-level entry points of a class-based plugin.

A class-based plugin module does ``from BareosDirWrapper import *``, which
gives it the ``parse_plugin_definition`` and ``handle_plugin_event`` that the
host calls, and sets ``BareosDirWrapper.bareos_dir_plugin_object`` to its
plugin object in ``load_bareos_plugin``. The functions forward every call,
with its arguments as given, to that object's methods: the current form
``(plugindef)`` / ``(event)`` and the legacy form with a context first both
reach the object unchanged.

Each plugin instance runs in an interpreter of its own, so this module (and
the object it holds) exists once per instance.
"""

__all__ = ["bareos_dir_plugin_object", "parse_plugin_definition",
           "handle_plugin_event"]

# The plugin object of this interpreter's plugin instance.
bareos_dir_plugin_object = None


def _plugin_object():
    if bareos_dir_plugin_object is None:
        raise RuntimeError(
            "BareosDirWrapper.bareos_dir_plugin_object is not set: the "
            "plugin module's load_bareos_plugin must set it to the plugin "
            "object (BareosDirWrapper.bareos_dir_plugin_object = "
            "MyPlugin(plugindef))")
    return bareos_dir_plugin_object


def parse_plugin_definition(*args):
    return _plugin_object().parse_plugin_definition(*args)


def handle_plugin_event(*args):
    return _plugin_object().handle_plugin_event(*args)
