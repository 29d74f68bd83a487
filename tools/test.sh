#!/usr/bin/env bash
# The whole test suite: C tests (ctest), the pytest suite (API, engine,
# simulator and shim end to end, plugins against real servers), then the
# sanitizer, valgrind and fuzzing passes.  Set BAREOSDIR_QUICK=1 to stop
# after pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --test
export BAREOSDIR_BUILD="$PWD/build"

stages=0
echo "== C tests"
ctest --test-dir build --output-on-failure
stages=$((stages + 1))
echo "== pytest"
.venv/bin/python -m pytest -q -p no:randomly tests
stages=$((stages + 1))
if [[ "${BAREOSDIR_QUICK:-0}" != 1 ]]; then
  for extra in tools/test-*.sh; do
    [[ -x "$extra" ]] || continue
    echo "== $extra"
    "$extra"
    stages=$((stages + 1))
  done
fi
# set -e ended the run at the first failing stage; all of them passed.
echo "stages: $stages passed, 0 failed"
