"""The plugin modules shipped with bareosdir: the class-plugin framework
(BareosDirPluginBaseclass, BareosDirWrapper, the bareos-dir-class-plugin
loaders, the bareos-dir.py template) and the bundled monitoring plugins.

Plugins import these by their top-level names (``import BareosDirWrapper``,
``module_name=bareos-dir-nsca-sender``): the host puts this directory on
``sys.path`` of every plugin interpreter, as Bareos does with its plugin
directory. The package names are aliases of those: ``bareosdir.plugins.X``
*is* ``sys.modules["X"]``, however it was reached first. Were the files
importable twice, once as ``X`` and once as ``bareosdir.plugins.X``, there
would be two BareosDirWrapper modules, and a plugin object set in one would
be missing from the other. So the package has no search path of its own;
a finder on ``sys.meta_path`` answers ``import bareosdir.plugins.X`` with the
top-level module, and a module ``__getattr__`` does the same for attribute
access.
"""

import importlib
import importlib.abc
import importlib.util
import os
import sys

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))

if not any(os.path.abspath(entry or os.curdir) == PLUGIN_DIR
           for entry in sys.path):
    sys.path.append(PLUGIN_DIR)

__path__ = []


def _plugin_file(name):
    return (name and "." not in name and os.sep not in name
            and os.path.isfile(os.path.join(PLUGIN_DIR, name + ".py")))


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``bareosdir.plugins.X`` as the top-level module ``X``."""

    def __init__(self):
        self.package = __name__
        self._specs = {}

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != self.package or not _plugin_file(name):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        # The existing (or newly imported) top-level module is the result.
        module = importlib.import_module(spec.name.rpartition(".")[2])
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module):
        # The import system has set the alias's __spec__ on the module (it
        # keeps __name__, __file__ and __loader__): give the module back the
        # spec it was really imported with.
        module.__spec__ = self._specs.pop(module.__spec__.name)


# One finder per interpreter, even if this package is imported again.
if not any(type(finder).__name__ == "_AliasFinder"
           and getattr(finder, "package", None) == __name__
           for finder in sys.meta_path):
    # First: an editable install's finder would otherwise import the file a
    # second time as bareosdir.plugins.X.
    sys.meta_path.insert(0, _AliasFinder())


def __getattr__(name):
    if _plugin_file(name):
        # Through the finder, which also records the alias in sys.modules.
        return importlib.import_module(__name__ + "." + name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
