"""One version, and a man page that matches the simulator.

The version stands in three places: bareosdir/_version.py (the Python
package's metadata), BD_VERSION in csrc/bareosdir.h (the extension's and the
shim's __version__) and the newest entry of debian/changelog (the Debian
packages' upstream version).  They must agree; debian/build-check.sh checks
the built extension against the changelog as well.
"""

from __future__ import annotations

import re
import subprocess

import bareosdir
from shimutil import BUILD, ROOT


def python_version() -> str:
    ns: dict = {}
    exec((ROOT / "bareosdir" / "_version.py").read_text(), ns)
    return ns["__version__"]


def c_version() -> str:
    m = re.search(r'^#define BD_VERSION "([^"]+)"',
                  (ROOT / "csrc" / "bareosdir.h").read_text(), re.M)
    assert m, "no BD_VERSION in csrc/bareosdir.h"
    return m.group(1)


def changelog_upstream_version() -> str:
    first = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    m = re.match(r"^bareosdir \((?:\d+:)?(.+?)(?:-[^-)]+)?\) ", first)
    assert m, f"unexpected first line of debian/changelog: {first!r}"
    return m.group(1)


def test_versions_agree():
    assert c_version() == python_version() == changelog_upstream_version()


def test_built_extension_carries_the_version():
    assert bareosdir.__version__ == python_version()


def test_changelog_version_parser_sees_the_revision():
    # The revision is stripped, not the version: a mismatch must show.
    assert not changelog_upstream_version().endswith("-1")
    assert re.fullmatch(r"\d+(\.\d+)+", changelog_upstream_version())


def test_man_page_documents_every_option_of_the_simulator():
    out = subprocess.run([str(BUILD / "bareosdir-sim"), "--help"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-z])\b", out))
    assert "--config" in options and "-j" in options
    man = (ROOT / "man" / "bareosdir-sim.1").read_text().replace("\\-", "-")
    missing = sorted(o for o in options if o not in man)
    assert missing == [], f"man/bareosdir-sim.1 does not document {missing}"
