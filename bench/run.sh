#!/usr/bin/env bash
# Runs the benchmark: floors measured in this run, then each interpreter
# mode through the real shim (installed into a staging plugin directory)
# under the director model.  Usage: bench/run.sh   (after tools/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x build/bareosdir-bench ]] || tools/setup.sh
cmake --build build --target bareosdir-bench python-dir bareosdir-ext >/dev/null
stage="$PWD/build/bench-stage"
rm -rf "$stage"
cmake --install build --prefix "$stage" >/dev/null
plugdir="$stage/lib/bareos/plugins"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), Python $(/usr/bin/python3 -c 'import platform; print(platform.python_version())')"
echo "pool: BAREOSDIR_POOL_MAX=${BAREOSDIR_POOL_MAX:-64} idle interpreters kept, none created ahead of need"
echo "reproduce: bench/run.sh"
build/bareosdir-bench floors
for mode in isolated main; do
  build/bareosdir-bench run "$plugdir" "$PWD/bench/plugins" "$mode"
  # Memory in fresh processes, so that no pooled interpreter is counted.
  klass="python:module_name=bareos-dir-class-plugin:interpreter=$mode"
  for n in 100 $([[ $mode == main ]] && echo 1000 || echo 300); do
    build/bareosdir-bench hold "$plugdir" "$n" "$klass"
  done
done
