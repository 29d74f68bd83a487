#!/usr/bin/env bash
# The suite again with ASan+UBSan builds of the extension, shim, simulator
# and C tests (build-asan/).  Python itself is not instrumented: the ASan
# runtime is preloaded and PYTHONMALLOC=malloc makes Python's allocations
# visible to it.  Leak checking is off here (CPython keeps interned objects
# until exit); tools/test-valgrind.sh checks leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DBAREOSDIR_SANITIZE=ON -DBAREOSDIR_WERROR=ON >/dev/null
cmake --build build-asan -j"$(nproc)" >/dev/null
ctest --test-dir build-asan --output-on-failure
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$asan:$ubsan"
export PYTHONMALLOC=malloc
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export BAREOSDIR_BUILD="$PWD/build-asan"
# The sanitized copy of the package (build-asan/plugins) comes first; -P
# keeps the checkout itself (cwd, with its unsanitized in-place extension)
# off the front of sys.path, or in-process tests would not be sanitized.
export PYTHONPATH="$PWD/build-asan/plugins"
.venv/bin/python -P -m pytest -q -p no:cacheprovider \
  tests/test_api.py tests/test_engine.py tests/test_shim.py \
  tests/test_shim_lifecycle.py tests/test_sim_loader.py tests/test_framework.py \
  tests/test_adversarial_memory.py tests/test_compat.py tests/test_reuse.py \
  tests/test_output.py tests/test_search.py tests/test_adversarial_threads.py
# The catalog replay (sim/catalog.c) against its private PostgreSQL (whose
# own programs run without the preload); the 2000-job nsca run and the RSS
# comparison stay in the plain stage.
.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_sim_catalog.py \
  -k "not nsca and not memory"
