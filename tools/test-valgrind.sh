#!/usr/bin/env bash
# 200 jobs (4 at once, two instances each, both interpreter modes) through
# the real shim under valgrind memcheck: no invalid reads/writes anywhere in
# our code and no definite leaks whose allocation stack passes through it.
# (CPython's own unreclaimed startup allocations are not ours to judge.)
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python tools/valgrind_jobs.py "$@"
