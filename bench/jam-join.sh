#!/usr/bin/env bash
# bench/jam-join.sh - what musicians joining and leaving a full server cost everybody else's audio.
#
# Usage: bench/jam-join.sh [--clients N] [--joins J] [--rounds R] [--baseline BIN]
#   --clients N      clients already playing (default 149, OPUS, default gains: one core carries them)
#   --joins J        how many times one more client joins for 1 s and leaves again, 1 s apart (default 8)
#   --rounds R       runs per server, alternating with --baseline when given (default 2)
#   --baseline BIN   also run another tutti binary (an earlier build), alternating with this one
#
# The server runs with -u 150 pinned to core 0, `tutti loadgen` on core 1 with N clients; after the warm-up,
# `tutti client` joins and leaves J times (on core 1). From the server's --metrics, over the joins and over
# 4 quiet seconds after them: ticks that took longer than a period (2.67 ms) and the send delay (send - tick
# start per audio datagram) p50/p99/p99.9 as histogram bounds, and how many audio datagrams left more than a
# period after their tick started. Run it serialized and real-time: chrt -f 50 bench/jam-join.sh
set -euo pipefail
cd "$(dirname "$0")/.."

clients=149
joins=8
rounds=2
base=""
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) clients="$2"; shift 2 ;;
    --joins) joins="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --baseline) base="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench/jam-join.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ -z "$base" ] || [ -x "$base" ] || { echo "bench/jam-join.sh: --baseline $base is not an executable" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "bench/jam-join.sh: needs 2 cores (server and load generator pinned apart)" >&2; exit 1; }
chrt -p $$ 2>/dev/null | grep -q SCHED_FIFO || echo "bench/jam-join.sh: not real-time; numbers will be noisy (run under chrt -f 50)" >&2
nice -n 10 cargo build --release --locked -p tutti >&2
tutti=target/release/tutti
work=$(mktemp -d)
server_pid=""
finish() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || :
  rm -rf "$work"
}
trap finish EXIT

# run KIND BIN: one server, N clients, J joins; prints one line for the joins and one for the quiet after
run() {
  local kind=$1 bin=$2 port metrics_port loadgen
  port=$((32000 + RANDOM % 2000)); metrics_port=$((port + 1))
  taskset -c 0 "$bin" server --serverbindip 127.0.0.1 -p "$port" -u 150 --metrics "$metrics_port" >/dev/null 2>&1 &
  server_pid=$!
  sleep 0.5
  taskset -c 1 "$tutti" loadgen -c "127.0.0.1:$port" -n "$clients" --codec opus --warmup 6 \
    --duration $((2 * joins + 8)) --server-pid "$server_pid" --summary > "$work/loadgen.txt" 2>&1 &
  loadgen=$!
  sleep 9
  curl -sf "http://127.0.0.1:$metrics_port/metrics" > "$work/a.txt"
  for i in $(seq "$joins"); do
    taskset -c 1 "$tutti" client -c "127.0.0.1:$port" --codec opus --name "joiner$i" --duration 1 >/dev/null 2>&1 || :
    sleep 1
  done
  curl -sf "http://127.0.0.1:$metrics_port/metrics" > "$work/b.txt"
  sleep 4
  curl -sf "http://127.0.0.1:$metrics_port/metrics" > "$work/c.txt"
  wait "$loadgen" || :
  kill "$server_pid" 2>/dev/null || :
  wait "$server_pid" 2>/dev/null || :
  server_pid=""
  python3 - "$kind" "$work" "$(grep -o 'full_rate=[0-9]*' "$work/loadgen.txt" | cut -d= -f2)" "$clients" <<'PY'
import sys
sys.path.insert(0, "bench")
from histogram import above, between, quantile, total
kind, work, full, n = sys.argv[1:5]
PERIOD = 0.00267  # a 128-sample tick period: counts what lies above the 2.667 ms bucket
def counted(a, b, name):
    return between(open(f"{work}/{a}.txt").read(), open(f"{work}/{b}.txt").read(), name)
for a, b, what in (("a", "b", "joins"), ("b", "c", "quiet")):
    ticks, sends = counted(a, b, "tutti_tick_duration_seconds"), counted(a, b, "tutti_audio_send_delay_seconds")
    print(f"{kind:10} {what:5} | {int(total(ticks)):6} {above(ticks, PERIOD):5} | "
          f"{quantile(sends, .5):>6} {quantile(sends, .99):>6} {quantile(sends, .999):>6} {above(sends, PERIOD):7} | {full}/{n}")
PY
}

echo "tutti $("$tutti" --version | awk '{print $2}'); $clients OPUS clients on a server pinned to core 0, load generator and joiner on core 1; $joins joins"
echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(date -u '+%F %H:%M')"
printf "%-10s %5s | %6s %5s | %6s %6s %6s %7s | %s\n" server when ticks late "p50" "p99" "p99.9" "late tx" "full rate"
for _ in $(seq "$rounds"); do
  run tutti "$tutti"
  [ -z "$base" ] || run tutti-base "$base"
done
