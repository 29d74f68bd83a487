#!/usr/bin/env bash
# The whole test suite again on Debian 13 (trixie, Python 3.13), as CI runs
# it after tools/test.sh on the Debian 12 host.  Needs root and mmdebstrap.
#
#   tools/ci-debian13.sh [RELEASE]      (default trixie; bookworm works too)
#
# Makes a fresh Debian root with tools/debroot.sh (a copy of a cached
# `mmdebstrap --variant=standard` base; see there), clones this checkout's
# committed HEAD into it (/root/bareosdir; uncommitted changes are not
# included), copies ../shared/testdata beside it when that exists, and runs
# the README's test command `bash tools/test.sh` inside as root.  The root is
# unmounted and deleted on every way out; set BAREOSDIR_CI_KEEP=1 to keep it
# (its path is printed) for a look after a failure.  The exit status is
# tools/test.sh's.  BAREOSDIR_QUICK and BAREOSDIR_FUZZ_SECONDS are passed on.
#
# Downloaded .deb files are kept in the debroot cache (apt-archives/RELEASE)
# and copied into the next fresh root, so a warm run does not download them
# again; everything is still installed by tools/setup.sh inside the root.
set -euo pipefail
cd "$(dirname "$0")/.."
release="${1:-trixie}"
checkout="$PWD"
cache="${BAREOSDIR_ROOT_CACHE:-$checkout/.cache/debroot}"
debs="$cache/apt-archives/$release"
t_start=$SECONDS

work="$(mktemp -d "${TMPDIR:-/tmp}/bareosdir-ci-$release.XXXXXX")"
root="$work/root"
finish() {
  local rc=$?
  if [[ "${BAREOSDIR_CI_KEEP:-0}" == 1 ]]; then
    echo "ci-debian13: root kept at $root (tools/debroot.sh destroy $root)"
  else
    tools/debroot.sh destroy "$root" || rc=1
    rm -rf --one-file-system "$work"
  fi
  echo "ci-debian13: $release, $((SECONDS - t_start)) s in all, exit $rc"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "ci-debian13: making a fresh $release root at $root"
t0=$SECONDS
tools/debroot.sh create "$release" "$root"
echo "ci-debian13: root ready in $((SECONDS - t0)) s"

head="$(git rev-parse HEAD)"
git clone -q --no-checkout "$checkout" "$root/root/bareosdir"
git -C "$root/root/bareosdir" checkout -q --detach "$head"
echo "ci-debian13: cloned $head"
if [[ -d "$checkout/../shared/testdata" ]]; then
  mkdir -p "$root/root/shared"
  cp -a "$checkout/../shared/testdata" "$root/root/shared/"
fi
if [[ -d "$debs" ]]; then
  find "$debs" -maxdepth 1 -name '*.deb' -exec cp -t "$root/var/cache/apt/archives/" {} +
fi

passenv=()
for v in BAREOSDIR_QUICK BAREOSDIR_FUZZ_SECONDS CI; do
  [[ -n "${!v:-}" ]] && passenv+=("$v=${!v}")
done
t0=$SECONDS
rc=0
tools/debroot.sh run "$root" env "${passenv[@]}" \
  bash -c 'cd /root/bareosdir && bash tools/test.sh' || rc=$?
echo "ci-debian13: tools/test.sh in $release took $((SECONDS - t0)) s, exit $rc"

# Keep the downloaded packages for the next run (several runs may end at once).
mkdir -p "$debs"
(
  flock 9
  find "$root/var/cache/apt/archives" -maxdepth 1 -name '*.deb' \
    -exec cp -n -t "$debs/" {} +
) 9>"$cache/apt-archives/.lock" || true
exit "$rc"
