"""The Bareos Director's Python plugin API (bareosdir).

Plugins call the functions and use the constants of this module exactly as
with Bareos's own python-dir plugin: ``bareosdir.GetValue``,
``bareosdir.JobMessage``, ``bareosdir.bRCs["bRC_OK"]`` and so on.  The
implementation is the C extension ``bareosdir._bareosdir``.
"""

from ._bareosdir import *  # noqa: F401,F403  (the plugin API itself)
from ._bareosdir import __version__  # noqa: F401

from . import _bareosdir as _ext

__all__ = [
    "GetValue", "SetValue", "DebugMessage", "JobMessage", "RegisterEvents",
    "UnRegisterEvents", "GetInstanceCount",
    "bRCs", "bJobMessageType", "bDirVariable", "bwDirVariable", "bDirEventType",
]
for _group in (_ext.bRCs, _ext.bJobMessageType, _ext.bDirVariable,
               _ext.bwDirVariable, _ext.bDirEventType):
    __all__.extend(_group)
del _group
