"""``bareos-dir-class-plugins``: the spelling of the seed's configuration
example (Bareos 14.4 to 19) for the loader ``bareos-dir-class-plugin``.
Both names load the same plugin."""

import importlib

_loader = importlib.import_module("bareos-dir-class-plugin")

load_bareos_plugin = _loader.load_bareos_plugin
parse_plugin_definition = _loader.parse_plugin_definition
handle_plugin_event = _loader.handle_plugin_event
