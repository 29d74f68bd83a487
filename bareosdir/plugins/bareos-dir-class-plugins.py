"""``bareos-dir-class-plugins``: the spelling of the seed's configuration
example (Bareos 14.4 to 19) for the loader ``bareos-dir-class-plugin``.
Both names load the same plugin."""

# __import__, not importlib.import_module: with interpreter=main it is the
# instance's own import, so this instance gets its own loader and wrapper.
_loader = __import__("bareos-dir-class-plugin")

load_bareos_plugin = _loader.load_bareos_plugin
parse_plugin_definition = _loader.parse_plugin_definition
handle_plugin_event = _loader.handle_plugin_event
