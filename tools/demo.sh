#!/usr/bin/env bash
# The main job: installs the shim and its package into a staging Plugin
# Directory, then has bareosdir-sim load it exactly as bareos-dir does and
# run a job of the documentation's configurations through the bundled
# class-based plugin (seed form: "python", two instances; current form:
# "python3").  Jobs end as a realistic backup would (files, bytes, a run
# time); the class plugin writes debug messages only, so its effect is shown
# from those, each named by plugin and instance.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
stage="$PWD/build/demo"
rm -rf "$stage"
cmake --install build --prefix "$stage" >/dev/null
plugdir="$stage/lib/bareos/plugins"
job_values=(--files 1234 --bytes 56789012 --run-time 1.5)
debug_log=$(mktemp)
trap 'rm -f "$debug_log"' EXIT
for form in seed python3; do
  mkdir -p "$stage/etc/$form"
  sed "s#/usr/lib/bareos/plugins#$plugdir#g" "examples/$form/bareos-dir.conf" \
    > "$stage/etc/$form/bareos-dir.conf"
  echo "== $form form: $stage/bin/bareosdir-sim -c $stage/etc/$form -j BackupClient1 ${job_values[*]} -d 100"
  rc=0
  "$stage/bin/bareosdir-sim" -c "$stage/etc/$form" -j BackupClient1 \
    "${job_values[@]}" -d 100 "$@" 2>"$debug_log" || rc=$?
  echo "-- what the plugin did (its debug lines; plugin:instance=N names the sender):"
  grep -E ':instance=[0-9]+: .*(options:|ended:)' "$debug_log" \
    | sed -e 's/^[^ ]* ([0-9]*): [^ ]* /   /' || true
  if [[ $rc -ne 0 ]]; then
    cat "$debug_log" >&2
    exit "$rc"
  fi
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
  "${job_values[@]}" -o "python3:module_name=bareos-dir-graphite-sender:collectorHost=127.0.0.1:collectorPort=$port:timeout=5" "$@"
wait "$receiver"
