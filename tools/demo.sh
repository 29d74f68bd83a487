#!/usr/bin/env bash
# The main job: installs the shim and its package into a staging Plugin
# Directory, then has bareosdir-sim load it exactly as bareos-dir does and
# run a job of the documentation's configurations through the bundled
# class-based plugin (seed form: "python", two instances; current form:
# "python3").
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
stage="$PWD/build/demo"
rm -rf "$stage"
cmake --install build --prefix "$stage" >/dev/null
plugdir="$stage/lib/bareos/plugins"
for form in seed python3; do
  mkdir -p "$stage/etc/$form"
  sed "s#/usr/lib/bareos/plugins#$plugdir#g" "examples/$form/bareos-dir.conf" \
    > "$stage/etc/$form/bareos-dir.conf"
  echo "== $form form: $stage/bin/bareosdir-sim -c $stage/etc/$form -j BackupClient1 -d 100"
  "$stage/bin/bareosdir-sim" -c "$stage/etc/$form" -j BackupClient1 -d 100 "$@"
done
