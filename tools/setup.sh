#!/usr/bin/env bash
# Installs what bareosdir needs (Debian packages, only those missing), makes
# the venv .venv from Debian's /usr/bin/python3 with bareosdir installed
# editable, and builds the shim, the simulator and the C tests in build/.
# Usage: tools/setup.sh [--test]   (--test adds the test-only packages)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
# Package names valid on every supported Debian release (12 and 13); the one
# that carries a version (clang's runtime libraries) is picked below from the
# clang this machine has, never pinned.
pkgs=(gcc make cmake pkgconf libpq-dev python3 python3-dev python3-venv
      python3-pip python3-setuptools python3-pytest python3-prometheus-client)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(nsca prometheus-pushgateway graphite-carbon python3-whisper
         clang valgrind python3-lxml python3-bcrypt openssl postgresql)
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
apt_updated=0
install_missing() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  export DEBIAN_FRONTEND=noninteractive
  if ((!apt_updated)); then
    echo "setup: apt-get update (reading the package lists from the Debian mirror)"
    apt-get update -qq
    apt_updated=1
  fi
  echo "setup: installing ${#missing[@]} Debian packages and what they depend on:"
  echo "       ${missing[*]}"
  echo "       (apt-get downloads, unpacks and configures them; on a fresh machine"
  echo "       this takes a minute or more with no further output)"
  local t0=$SECONDS
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: installed in $((SECONDS - t0)) s"
}

install_missing "${pkgs[@]}"
if [[ "${1:-}" == "--test" ]]; then
  # The sanitizer and fuzzing runtimes of exactly the installed clang.
  clang_major="$(clang -dumpversion | cut -d. -f1)"
  install_missing "libclang-rt-$clang_major-dev"
fi
# The Debian packages start their daemons; the tests start private ones.
for svc in nsca prometheus-pushgateway carbon-cache postgresql; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv --system-site-packages .venv
fi
BAREOSDIR_WERROR=1 .venv/bin/pip install -q --no-build-isolation -e . >/dev/null

cmake -S . -B build -DBAREOSDIR_PYTHON="$PY" -DBAREOSDIR_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
