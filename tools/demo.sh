#!/usr/bin/env bash
# The main job: installs the shim and its package into a staging Plugin
# Directory, then has bareosdir-sim load it exactly as bareos-dir does and
# run a job of the documentation's configurations through the bundled
# class-based plugin (seed form: "python", two instances; current form:
# "python3").
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
stage="$PWD/build/demo"
rm -rf "$stage"
cmake --install build --prefix "$stage" >/dev/null
plugdir="$stage/lib/bareos/plugins"
for form in seed python3; do
  mkdir -p "$stage/etc/$form"
  sed "s#/usr/lib/bareos/plugins#$plugdir#g" "examples/$form/bareos-dir.conf" \
    > "$stage/etc/$form/bareos-dir.conf"
  echo "== $form form: $stage/bin/bareosdir-sim -c $stage/etc/$form -j BackupClient1 -d 100"
  "$stage/bin/bareosdir-sim" -c "$stage/etc/$form" -j BackupClient1 -d 100 "$@"
done

# A bundled monitoring plugin: the Graphite sender, reporting to a
# throwaway line receiver on 127.0.0.1 that prints what it gets.
port_file=$(mktemp)
/usr/bin/python3 - "$port_file" <<'PY' &
import socket, sys
srv = socket.create_server(("127.0.0.1", 0))
srv.settimeout(60)
open(sys.argv[1], "w").write(str(srv.getsockname()[1]))
conn, _ = srv.accept()
conn.settimeout(30)
data = b""
while chunk := conn.recv(65536):
    data += chunk
for line in data.decode().splitlines():
    print("  carbon received:", line)
PY
receiver=$!
for _ in $(seq 100); do [[ -s "$port_file" ]] && break; sleep 0.05; done
port=$(cat "$port_file"); rm -f "$port_file"
echo "== monitoring: bareos-dir-graphite-sender to 127.0.0.1:$port"
"$stage/bin/bareosdir-sim" -c "$stage/etc/python3" -j BackupClient1 --status T \
  -o "python3:module_name=bareos-dir-graphite-sender:collectorHost=127.0.0.1:collectorPort=$port:timeout=5" "$@"
wait "$receiver"
