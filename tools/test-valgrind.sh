#!/usr/bin/env bash
# 200 jobs (4 at once, two instances each, both interpreter modes) through
# the real shim under valgrind memcheck: no invalid reads/writes anywhere in
# our code and no definite leaks that our code allocated (CPython's own
# unreclaimed allocations, e.g. the interned strings 3.12+ never frees, are
# left to it and counted separately; see tools/valgrind_jobs.py).
# Then the self-test: a test build that leaks one str and one malloc'ed
# block per plugin instance (build-leak/, -DBAREOSDIR_TEST_LEAK=ON) must make
# the same check fail, with both leaks found for every instance.
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0 failed=0
if .venv/bin/python tools/valgrind_jobs.py; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
echo "== self-test: the leaking test build must fail the check"
if cmake -S . -B build-leak -DBAREOSDIR_PYTHON=/usr/bin/python3 \
       -DBAREOSDIR_TEST_LEAK=ON -DBAREOSDIR_WERROR=ON >/dev/null &&
   cmake --build build-leak --target python-dir bareosdir-ext bareosdir-sim \
       -j"$(nproc)" >/dev/null &&
   BAREOSDIR_BUILD="$PWD/build-leak" BAREOSDIR_VALGRIND_JOBS=10 \
       .venv/bin/python tools/valgrind_jobs.py --expect-leaks; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
echo "counts: $passed passed, $failed failed, 0 skipped"
((failed == 0))
