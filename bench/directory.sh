#!/usr/bin/env bash
# Directory throughput: CLM_REQ_SERVER_LIST answers per second on one core, tutti directory with
# 1,000 and 10,000 registered servers, side by side with a real Jamulus 3.9.1 directory at its
# maximum (149 registered servers + itself). The directory is pinned to CPU 0, the load generator
# (bench/directory_load.py: one socket, up to 8 requests outstanding, counts complete answers =
# reduced + full list) to CPU 1. Registries are filled through the persistence file (private
# 10.x addresses, so no hole-punching traffic). tutti runs with --maxlistrate 0 (no per-IP limit;
# the load generator echoes the cookie first, so it is a proven source).
#
#   bench/directory.sh [SECONDS]      default 5 s per run; needs /usr/bin/Jamulus and python3
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet -p tutti
tutti="$target/release/tutti"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# N lines of the Jamulus directory file format.
make_file() {
  python3 - "$1" "$2" <<'PY'
import base64, sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    for i in range(n):
        a, b, c = (i >> 16) & 255, (i >> 8) & 255, i & 255
        name = base64.b64encode(f"Bench server {i}".encode()).decode()
        city = base64.b64encode(b"Benchtown").decode()
        f.write(f"10.{a}.{b}.{c or 1}:{22124 + i % 1000};10.{a}.{b}.{c or 1}:22124;{name};{city};82;10;0\n")
PY
}

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_load() { taskset -c 1 python3 bench/directory_load.py "127.0.0.1:$1" "$seconds"; }

printf '%-34s %8s %12s %12s\n' "directory" "servers" "answers/s" "MB/s out"
for n in 1000 10000; do
  make_file "$n" "$work/tutti-$n.txt"
  port="$(free_port)"
  taskset -c 0 "$tutti" directory --port "$port" --serverbindip 127.0.0.1 -o "BenchDir;Town;de" \
    --maxservers $((n + 1)) --maxlistrate 0 --directoryfile "$work/tutti-$n.txt" 2>"$work/tutti-$n.log" &
  pids+=($!); sleep 1
  read -r answers mbps < <(run_load "$port")
  printf '%-34s %8s %12s %12s\n' "tutti directory" "$n" "$answers" "$mbps"
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done

make_file 149 "$work/jamulus.txt"
port="$(free_port)"
taskset -c 0 /usr/bin/Jamulus --nogui --server --port "$port" --serverbindip 127.0.0.1 --directoryserver localhost \
  --directoryfile "$work/jamulus.txt" --serverinfo "JamDir;Town;82" >"$work/jamulus.log" 2>&1 &
pids+=($!); sleep 2
read -r answers mbps < <(run_load "$port")
printf '%-34s %8s %12s %12s\n' "Jamulus 3.9.1 directory (max)" 149 "$answers" "$mbps"
make_file 149 "$work/tutti-149.txt"
port="$(free_port)"
taskset -c 0 "$tutti" directory --port "$port" --serverbindip 127.0.0.1 -o "BenchDir;Town;de" \
  --maxlistrate 0 --directoryfile "$work/tutti-149.txt" 2>"$work/tutti-149.log" &
pids+=($!); sleep 1
read -r answers mbps < <(run_load "$port")
printf '%-34s %8s %12s %12s\n' "tutti directory (same list)" 149 "$answers" "$mbps"
