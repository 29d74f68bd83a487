#!/bin/sh
# Builds every libFuzzer target with clang in a separate build directory and
# runs each for a time budget (seconds, default 60) on a copy of its seed
# corpus.  Fails if any target crashes, leaks, times out or runs out of
# memory; the input that did it is kept and its path printed.
#   fuzz/run.sh [seconds]
# BAREOSDIR_FUZZ_BUILD overrides the build directory; with BAREOSDIR_FUZZ_KEEP
# set, the work directory (grown corpus, log) of a passing run is kept too.
set -eu

budget=${1:-60}
case $budget in
  '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
# Inside the checkout: a build directory elsewhere may belong to another one.
build=${BAREOSDIR_FUZZ_BUILD:-$root/build-fuzz}
jobs=$(nproc 2>/dev/null || echo 2)

mkdir -p "$build"
rm -rf "$build/fuzz-targets"
CC=clang cmake -S "$root" -B "$build" -DBAREOSDIR_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 || {
  cat "$build/configure.log" >&2
  exit 1
}
cmake --build "$build" --target fuzzers -j "$jobs"

status=0
for entry in "$build"/fuzz-targets/*; do
  [ -f "$entry" ] || continue
  name=$(basename "$entry")
  binary=$(sed -n 1p "$entry")
  corpus=$(sed -n 2p "$entry")
  work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
  mkdir "$work/corpus" "$work/artifacts"
  if [ -d "$corpus" ]; then cp -R "$corpus/." "$work/corpus/"; fi
  echo "== $name: ${budget}s, corpus $(ls "$work/corpus" | wc -l) files, work dir $work"
  if "$binary" -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
      "$work/corpus" >"$work/log" 2>&1; then
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' \
      "$work/log" || true
    echo "== $name: ok ($(ls "$work/corpus" | wc -l) corpus files now)"
    [ -n "${BAREOSDIR_FUZZ_KEEP:-}" ] || rm -rf "$work"
  else
    status=1
    tail -n 60 "$work/log" >&2
    echo "== $name: FAILED; inputs in $work/artifacts/, log $work/log" >&2
  fi
done
if [ ! -d "$build/fuzz-targets" ]; then
  echo "no fuzz targets were configured" >&2
  exit 1
fi
exit $status
