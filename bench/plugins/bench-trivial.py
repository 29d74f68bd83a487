"""The benchmark's trivial plugin: registers the four job events and
answers bRC_OK (as the reference figures' plugin)."""
import bareosdir


def load_bareos_plugin(plugindef):
    bareosdir.RegisterEvents([bareosdir.bDirEventJobStart, bareosdir.bDirEventJobEnd,
                              bareosdir.bDirEventJobInit, bareosdir.bDirEventJobRun])
    return bareosdir.bRC_OK


def parse_plugin_definition(plugindef):
    return bareosdir.bRC_OK


def handle_plugin_event(event):
    return bareosdir.bRC_OK
