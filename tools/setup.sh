#!/usr/bin/env bash
# Installs what bareosdir needs (Debian packages, only those missing), makes
# the venv .venv from Debian's /usr/bin/python3 with bareosdir installed
# editable, and builds the shim, the simulator and the C tests in build/.
# Usage: tools/setup.sh [--test]   (--test adds the test-only packages)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
pkgs=(gcc make cmake pkgconf libpq-dev python3 python3-dev python3-venv
      python3-pip python3-setuptools python3-pytest python3-prometheus-client)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(nsca prometheus-pushgateway graphite-carbon python3-whisper
         clang libclang-rt-14-dev valgrind python3-lxml openssl postgresql)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
