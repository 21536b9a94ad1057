#!/usr/bin/env bash
# Soak: `tutti server` (150 channels) and `tutti lobby` under churn for MINUTES (default 30), sampled every
# minute: each process's RSS and open file descriptors, the server's late ticks and its tick-duration p99 (from
# --metrics), and how many jam clients and lobby loops were running. Flat is the goal: at the end the script
# compares the last third of the run with the middle third and fails if RSS grew by more than 10 %, if file
# descriptors grew by more than 16, or if there were late ticks in the last third.
#
#   bench/soak.sh                 30 minutes
#   MINUTES=3 bench/soak.sh       a quick check of the script
#
# Churn: five jam slots, each a loop of `tutti loadgen` runs of 10-30 clients for 20-90 s (so up to 150 clients,
# joining and leaving at random); the lobby gets loops of 50 pairs matching for 20 s and 500 idle sockets held
# for 10 s (crates/lobby/examples/lobby_load.rs). Loopback only. Output: a table, and the raw samples in
# target/soak/samples.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${MINUTES:-30}
target=${CARGO_TARGET_DIR:-target}
out="$target/soak"
mkdir -p "$out"
cargo build --release --locked -q -p tutti
cargo build --release --locked -q -p tutti-lobby --example lobby_load
tutti="$target/release/tutti"
load="$target/release/examples/lobby_load"
free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"; }

jam_port=$(free_port SOCK_DGRAM)
metrics_port=$(free_port SOCK_STREAM)
lobby_port=$(free_port SOCK_STREAM)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# Run under real-time priority (chrt -f N), the jam server gets one step more than the load it shares the machine with,
# as an operator would run it (the load generators and the lobby stay at N): a late tick then is the server's own.
above=()
if chrt -p $$ 2>/dev/null | grep -q SCHED_FIFO; then
  above=(chrt -f $(($(chrt -p $$ | sed -n 's/.*scheduling priority: //p') + 1)))
fi
"${above[@]}" "$tutti" server --port "$jam_port" --serverbindip 127.0.0.1 --numchannels 150 --metrics "$metrics_port" >"$out/server.log" 2>&1 &
server=$!
pids+=("$server")
"$tutti" lobby --listen "127.0.0.1:$lobby_port" --rate 1000000 --burst 1000000 >"$out/lobby.log" 2>&1 &
lobby=$!
pids+=("$lobby")
sleep 2
kill -0 "$server" && kill -0 "$lobby" || { echo "soak.sh: a server did not start" >&2; cat "$out"/*.log >&2; exit 1; }

end=$(($(date +%s) + MINUTES * 60))
jam_slot() {
  while [ "$(date +%s)" -lt "$end" ]; do
    "$tutti" loadgen -c "127.0.0.1:$jam_port" -n $((10 + RANDOM % 21)) --warmup 1 --duration $((20 + RANDOM % 71)) \
      --summary >>"$out/loadgen-$1.log" 2>&1 || true
  done
}
lobby_churn() {
  while [ "$(date +%s)" -lt "$end" ]; do
    "$load" match "127.0.0.1:$lobby_port" 50 20 0 >>"$out/lobby-load.log" 2>&1 || true
    "$load" idle "127.0.0.1:$lobby_port" 500 10 >>"$out/lobby-load.log" 2>&1 || true
  done
}
for slot in 1 2 3 4 5; do
  jam_slot "$slot" &
  pids+=($!)
done
lobby_churn &
pids+=($!)

metric() { curl -s "http://127.0.0.1:$metrics_port/metrics" | awk -v n="$1" '$1 ~ "^"n"[{]" {s += $2} END {print s + 0}'; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
# p99 of the tick duration between two scrapes of the histogram's cumulative buckets (the bucket bound, ms)
tick_buckets() { curl -s "http://127.0.0.1:$metrics_port/metrics" | awk '/^tutti_tick_duration_seconds_bucket/ {match($0, /le="[^"]+"/); print substr($0, RSTART + 4, RLENGTH - 5), $2}'; }
p99() {
  paste <(echo "$1") <(echo "$2") | awk '{d = $4 - $2; b[NR] = $1; c[NR] = d; t = d} END {for (i = 1; i <= NR; i++) if (c[i] >= 0.99 * t) {print (b[i] == "+Inf" ? "inf" : b[i] * 1000); exit}}'
}

samples="$out/samples.tsv"
printf 'minute\tserver_rss_kib\tserver_fds\tlate_ticks\ttick_p99_ms\tclients\tlobby_rss_kib\tlobby_fds\n' | tee "$samples"
late_before=$(metric tutti_late_ticks_total)
buckets_before=$(tick_buckets)
for ((minute = 1; minute <= MINUTES; minute++)); do
  sleep 60
  late=$(metric tutti_late_ticks_total)
  buckets=$(tick_buckets)
  printf '%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n' "$minute" "$(rss "$server")" "$(fds "$server")" $((late - late_before)) \
    "$(p99 "$buckets_before" "$buckets")" "$(metric tutti_clients_connected)" "$(rss "$lobby")" "$(fds "$lobby")" | tee -a "$samples"
  late_before=$late
  buckets_before=$buckets
done

python3 - "$samples" "$MINUTES" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
n = len(rows)
third = max(1, n // 3)
middle, last = rows[third:2 * third] or rows[:1], rows[-third:]
def avg(rs, i): return sum(float(r[i]) for r in rs) / len(rs)
verdict = []
for name, i in [("server RSS", 1), ("lobby RSS", 6)]:
    growth = avg(last, i) / max(1.0, avg(middle, i)) - 1
    verdict.append((f"{name} growth {growth * 100:+.1f} %", growth <= 0.10))
for name, i in [("server fds", 2), ("lobby fds", 7)]:
    growth = max(float(r[i]) for r in last) - max(float(r[i]) for r in middle)
    verdict.append((f"{name} growth {growth:+.0f}", growth <= 16))
late = sum(int(r[3]) for r in last)
verdict.append((f"late ticks in the last third: {late}", late == 0))
for text, ok in verdict:
    print(("ok   " if ok else "FAIL ") + text)
sys.exit(0 if all(ok for _, ok in verdict) else 1)
EOF
