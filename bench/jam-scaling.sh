#!/usr/bin/env bash
# bench/jam-scaling.sh - how many jam clients one tutti process serves at full rate on 1, 2, 4, … cores.
#
# Usage: bench/jam-scaling.sh [--cores "1 2 4 8"] [--servers-per-core S] [--clients C] [--distinct-gains]
#                             [--opus64] [--rt]
#   --cores LIST          server core counts to measure (default: 1 2 4 8 16, those that leave at
#                         least one core for the load generators)
#   --servers-per-core S  jam servers ([[server]] tables, one thread each) per server core (default 1)
#   --clients C           emulated clients per server (default 150, the protocol's maximum)
#   --distinct-gains      every listener sets its own gain for every channel (no two mixes alike)
#   --opus64              OPUS64 (64-sample frames) clients, servers with --fastupdate
#   --rt                  server and load generators at real-time priority (chrt -f 50, needs root)
#
# For each core count K: one `tutti server` process with K*S [[server]] tables, pinned to cores
# 0..K-1 (taskset); the clients are spread over the servers and emulated by `tutti loadgen`
# processes pinned one per core on the remaining cores (as many as needed at ~300 clients each, at
# most one per remaining core). Prints per K: servers, clients, clients at full rate (>= 99 % of the
# packets, <= 0.5 % frames missing), the server process's CPU (sum of its threads, ms per
# client-second and % of its K cores), its RSS, and the busiest load generator's CPU (if that is
# near 100 %, the load generator, not the server, is the limit: use fewer clients per core).
# Made for the 16-core scaling run of issue 13; on a 2-core machine only K = 1 fits.
set -euo pipefail
cd "$(dirname "$0")/.."

cores_list=""
per_core=1
clients=150
loadgen_args=()
server_args=()
rt=()
warmup=6
duration=5
while [ $# -gt 0 ]; do
  case "$1" in
    --cores) cores_list="$2"; shift 2 ;;
    --servers-per-core) per_core="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --distinct-gains) loadgen_args+=(--distinct-gains); shift ;;
    --opus64) loadgen_args+=(--codec opus64); server_args+=(--fastupdate); shift ;;
    --rt) rt=(chrt -f 50); shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "bench/jam-scaling.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
cpus=$(nproc)
[ -n "$cores_list" ] || for k in 1 2 4 8 16; do [ "$k" -lt "$cpus" ] && cores_list+="$k "; done
[ "$clients" -ge 1 ] && [ "$clients" -le 150 ] || { echo "bench/jam-scaling.sh: --clients must be 1..150" >&2; exit 2; }

cargo build --release --locked -p tutti >&2
tutti=target/release/tutti
work=$(mktemp -d)
server_pid=""
loadgen_pids=()
cleanup() {
  for pid in "${loadgen_pids[@]}" $server_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${loadgen_pids[@]}" $server_pid; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

field() { sed -E "s/.*$1=([^ ]+).*/\\1/" <<<"$2"; }

echo "tutti $("$tutti" --version | awk '{print $2}'), $cpus cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), $(date -u +%F)"
echo "$per_core server(s) per server core, $clients clients per server${loadgen_args[*]:+, loadgen ${loadgen_args[*]}}${rt[*]:+, real-time priority}; window ${duration} s after ${warmup} s warm-up"
printf "%5s | %7s | %7s | %9s | %8s | %12s | %7s | %11s\n" cores servers clients "full rate" "ms/cs" "% of cores" "RSS MB" "loadgen max%"
base_port=$((24000 + RANDOM % 4000))
for k in $cores_list; do
  if [ "$k" -ge "$cpus" ]; then
    echo "bench/jam-scaling.sh: $k server cores leave no core for the load generator on this $cpus-core machine; skipped" >&2
    continue
  fi
  servers=$((k * per_core))
  total=$((servers * clients))
  # one load generator per free core, each for about 300 clients or more
  procs=$(((total + 299) / 300))
  [ "$procs" -le $((cpus - k)) ] || procs=$((cpus - k))
  [ "$procs" -le "$servers" ] || procs=$servers
  config="$work/servers-$k.toml"
  : >"$config"
  for i in $(seq 0 $((servers - 1))); do
    printf '[[server]]\nport = %d\nnumchannels = 150\n\n' $((base_port + i)) >>"$config"
  done
  "${rt[@]}" taskset -c "0-$((k - 1))" "$tutti" server --config "$config" --serverbindip 127.0.0.1 \
    "${server_args[@]}" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do
    [ "$(ss -Hlun | grep -c "127.0.0.1:\($(seq -s '\|' $base_port $((base_port + servers - 1)))\) ")" -ge "$servers" ] && break
    sleep 0.1
  done
  loadgen_pids=()
  for j in $(seq 0 $((procs - 1))); do
    args=()
    n=0
    for i in $(seq "$j" "$procs" $((servers - 1))); do
      args+=(-c "127.0.0.1:$((base_port + i))")
      n=$((n + clients))
    done
    [ "$j" = 0 ] && args+=(--server-pid "$server_pid")
    "${rt[@]}" taskset -c $((k + j)) "$tutti" loadgen "${args[@]}" -n "$n" --warmup $warmup --duration $duration \
      --summary "${loadgen_args[@]}" >"$work/loadgen-$j.out" 2>"$work/loadgen-$j.err" &
    loadgen_pids+=($!)
  done
  failed=0
  for pid in "${loadgen_pids[@]}"; do wait "$pid" || failed=1; done
  loadgen_pids=()
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  if [ "$failed" = 1 ]; then
    echo "bench/jam-scaling.sh: a load generator failed at $k cores: $(cat "$work"/loadgen-*.err | tail -n 3)" >&2
    continue
  fi
  full=0
  lg_max=0
  for j in $(seq 0 $((procs - 1))); do
    line=$(cat "$work/loadgen-$j.out")
    full=$((full + $(field full_rate "$line")))
    lg_max=$(awk -v a="$lg_max" -v b="$(field loadgen_cpu_pct "$line")" 'BEGIN { print (b > a ? b : a) }')
  done
  # loadgen 0 measured the whole server process but divides by its own clients only
  first=$(cat "$work/loadgen-0.out")
  ms=$(awk -v m="$(field server_ms_per_client_s "$first")" -v n0="$(field clients "$first")" -v n="$total" \
    'BEGIN { printf "%.4f", m * n0 / n }')
  rss=$(field server_rss_kib "$first")
  awk -v k="$k" -v s="$servers" -v n="$total" -v f="$full" -v ms="$ms" -v rss="$rss" -v lg="$lg_max" 'BEGIN {
    printf "%5d | %7d | %7d | %9s | %8.3f | %12.1f | %7.1f | %11.1f\n", k, s, n, f "/" n, ms, ms * n / 10 / k, rss / 1024, lg
  }'
done
