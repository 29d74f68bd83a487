"""The constants module of the Bareos 19-and-older plugin API.

Old plugins do ``from bareos_dir_consts import bRCs, bDirEventType, ...``
and index the dicts by name (``bRCs['bRC_OK']``).  The values are
bareosdir's; ``brDirVariable`` (the read variables) is also available under
the name some plugins use, ``bDirVariable``.
"""

import bareosdir

bRCs = dict(bareosdir.bRCs)
bDirEventType = dict(bareosdir.bDirEventType)
bJobMessageType = dict(bareosdir.bJobMessageType)
brDirVariable = dict(bareosdir.bDirVariable)
bDirVariable = brDirVariable
bwDirVariable = dict(bareosdir.bwDirVariable)

__all__ = ["bRCs", "bDirEventType", "bJobMessageType", "brDirVariable",
           "bDirVariable", "bwDirVariable"]
