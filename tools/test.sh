#!/usr/bin/env bash
# The whole test suite: C tests (ctest), the pytest suite (API, engine,
# simulator and shim end to end, plugins against real servers), then the
# sanitizer, valgrind and fuzzing passes (tools/test-*.sh).  Set
# BAREOSDIR_QUICK=1 to stop after pytest.
#
# Every stage runs even when an earlier one failed; at the end each stage's
# passed/failed/skipped counts, its wall time and the reason of every skipped
# test are printed, then a closing line "stages: N passed, N failed".  The
# exit status is non-zero when any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --test || { echo "stages: 0 passed, 1 failed (tools/setup.sh)"; exit 1; }
export BAREOSDIR_BUILD="$PWD/build"
# Every pytest run of every stage lists its skips with their reasons.
export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }-rs"

logs="$(mktemp -d "${TMPDIR:-/tmp}/bareosdir-test.XXXXXX")"
trap 'rm -rf "$logs"' EXIT
n=0
stage() {   # stage NAME CMD...: run CMD, keep its output and status
  local name="$1" t0=$SECONDS rc=0
  shift
  n=$((n + 1))
  echo "== $name"
  "$@" 2>&1 | tee "$logs/$n.log" || rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" > "$logs/$n.status"
}

stage "C tests" ctest --test-dir build --output-on-failure
stage "pytest" .venv/bin/python -m pytest -q -p no:randomly tests
if [[ "${BAREOSDIR_QUICK:-0}" != 1 ]]; then
  for extra in tools/test-*.sh; do
    [[ -x "$extra" ]] || continue
    stage "$extra" "$extra"
  done
fi
/usr/bin/python3 tools/test_summary.py "$logs"
