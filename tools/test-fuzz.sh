#!/usr/bin/env bash
# The fuzz targets (options parser, configuration reader), each for a fixed
# budget (BAREOSDIR_FUZZ_SECONDS, default 60) from the corpora in fuzz/corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
exec fuzz/run.sh "${BAREOSDIR_FUZZ_SECONDS:-60}"
