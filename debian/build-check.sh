#!/bin/sh
# Build-time check (dh_auto_test): the freshly built shim, run by the freshly
# built bareosdir-sim, loads the freshly built extension and runs a job
# through the bundled class plugin; and the three version strings agree.
# Usage: debian/build-check.sh CMAKE_BUILD_DIR PYBUILD_BUILD_DIR
set -eu
cmake_dir=$(cd "$1" && pwd)
py_dir=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

upstream=$(dpkg-parsechangelog -SVersion | sed -e 's/^[0-9]*://' -e 's/-[^-]*$//')
# bareosdir.__version__ is the extension's BD_VERSION (csrc/bareosdir.h);
# bareosdir._version.__version__ is what the package metadata carries.
built=$(cd "$tmp" && PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$py_dir" /usr/bin/python3 -c \
        'import bareosdir, bareosdir._version as v; print(bareosdir.__version__, v.__version__)')
if [ "$built" != "$upstream $upstream" ]; then
  echo "build-check: BD_VERSION and _version.py say '$built', debian/changelog says $upstream" >&2
  exit 1
fi

# A plugin directory as installed: the shim, and the package beside it
# (installed, it comes from python3-bareosdir in dist-packages).
mkdir "$tmp/plugins"
cp "$cmake_dir/python3-dir.so" "$tmp/plugins/"
ln -s "$py_dir/bareosdir" "$tmp/plugins/bareosdir"
sed "s|^\( *Plugin Directory = \).*|\1$tmp/plugins|" examples/python3/bareos-dir.conf \
  > "$tmp/bareos-dir.conf"
PYTHONDONTWRITEBYTECODE=1 "$cmake_dir/bareosdir-sim" -c "$tmp/bareos-dir.conf" -j BackupClient1 > "$tmp/log" 2>&1 || {
  cat "$tmp/log" >&2
  echo "build-check: bareosdir-sim failed" >&2
  exit 1
}
cat "$tmp/log"
grep -q "1 of 1 jobs OK" "$tmp/log"
