#!/usr/bin/env bash
# TURN benchmark: `tutti turn` against coturn 4.6 (Debian's turnserver) side by side in one run, each server
# pinned to core 0 and the Rust load generator (crates/turn/examples/turn_load.rs, one thread) to core 1.
# Loopback only; every phase is bounded in allocations and seconds (about 3 minutes in all).
#
#   bench/turn.sh                       everything
#   SECS=5 COUNTS="100" bench/turn.sh   smaller/faster
#
# Per allocation count (COUNTS, default "100 1000"): N allocations over UDP with REST credentials, each with
# one channel to an echo peer in the load generator, ChannelData with 200-byte payloads at RATE packets/s per
# allocation (default 50: Opus at 20 ms) and echoed back through the relay, so every round trip is two relayed
# packets. Measures over SECS seconds (after a 2 s warm-up): packets relayed, the server's CPU (utime + stime from
# /proc/PID/stat) per relayed packet and relayed packets per CPU-second, round-trip time p50/p99 (the same
# traffic with no server in between, "direct", is the floor), and server RSS per allocation (after the
# allocations were made, minus before). Then HIGH_RATE packets/s per allocation over 100 allocations, near what
# one core can carry. coturn runs with its defaults (relay threads: one per CPU it sees) and again with
# --relay-threads 1; both with the same secret and realm, loopback peers allowed for both.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-10}
RATE=${RATE:-50}
HIGH_RATE=${HIGH_RATE:-400}
COUNTS=${COUNTS:-"100 1000"}
SECRET=bench-secret
REALM=bench.test
target=${CARGO_TARGET_DIR:-target}
out=${OUT:-$target/turn-bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)

command -v turnserver >/dev/null || { echo "turn.sh: turnserver (coturn) is missing: run ./scripts/test.sh" >&2; exit 1; }
cargo build --release --locked -q -p tutti
cargo build --release --locked -q -p tutti-turn --example turn_load
tutti="$target/release/tutti"
load="$target/release/examples/turn_load"

ulimit -n "$(ulimit -Hn)"
echo "open files limit: $(ulimit -n); cores: $(nproc); $(turnserver --version 2>/dev/null | tail -1 | sed 's/^/coturn /')"
echo "rate per allocation: $RATE packets/s of 200-byte payloads (high phase: $HIGH_RATE over 100); $SECS s per phase"

server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap stop_server EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_server tutti|coturn|coturn-1t -> sets server_pid and port
start_server() {
  port=$(free_port)
  local log="$out/$1-server.log"
  case "$1" in
    tutti)
      taskset -c 0 "$tutti" turn --listening-ip 127.0.0.1 --listening-port "$port" --static-auth-secret "$SECRET" \
        --realm "$REALM" --allow-loopback-peers >"$log" 2>&1 &
      ;;
    coturn | coturn-1t)
      local threads=()
      [ "$1" = coturn-1t ] && threads=(--relay-threads 1)
      taskset -c 0 turnserver -n --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 --listening-port "$port" \
        --use-auth-secret --static-auth-secret "$SECRET" --realm "$REALM" --allow-loopback-peers --no-cli --no-tls \
        --no-dtls --log-file "$out/$1-turnserver.log" --pidfile "$out/$1.pid" "${threads[@]}" >"$log" 2>&1 &
      ;;
  esac
  server_pid=$!
  sleep 1.5
  kill -0 "$server_pid" 2>/dev/null || { echo "turn.sh: $1 did not start:" >&2; cat "$log" >&2; exit 1; }
}

results="$out/results.jsonl"
: >"$results"
# run SERVER PHASE ALLOCATIONS RATE
run() {
  local server=$1 phase=$2 n=$3 rate=$4 line
  if [ "$server" = direct ]; then
    line=$(taskset -c 1 "$load" direct "$n" "$rate" "$SECS" | sed -n 's/^result //p')
  else
    start_server "$server"
    line=$(taskset -c 1 "$load" "127.0.0.1:$port" "$n" "$rate" "$SECS" "$SECRET" "$REALM" "$server_pid" | sed -n 's/^result //p')
    stop_server
  fi
  [ -n "$line" ] || { echo "turn.sh: no result from $server $phase" >&2; exit 1; }
  echo "{\"server\":\"$server\",\"phase\":\"$phase\",\"r\":$line}" | tee -a "$results"
}

for n in $COUNTS; do
  for server in direct tutti coturn coturn-1t; do
    run "$server" "alloc$n" "$n" "$RATE"
  done
done
for server in direct tutti coturn coturn-1t; do
  run "$server" high100 100 "$HIGH_RATE"
done

echo
echo "summary (packets per server CPU-second, higher is better; RTT in µs; memory in bytes per allocation):"
python3 - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {(r["server"], r["phase"]): r["r"] for r in rows}
phases = sorted({r["phase"] for r in rows}, key=lambda p: [r["phase"] for r in rows].index(p))
print(f'{"phase":<10} {"server":<10} {"relayed/s":>10} {"loss":>8} {"cpu share":>9} {"pkts/cpu-s":>11} {"µs/pkt":>7} {"rtt p50":>8} {"rtt p99":>8} {"B/alloc":>8}')
for p in phases:
    for s in ["direct", "tutti", "coturn", "coturn-1t"]:
        r = by.get((s, p))
        if not r:
            continue
        print(f'{p:<10} {s:<10} {r["relayed_per_s"]:>10.0f} {r["loss"]:>8.4f} {r["server_cpu_share"]:>9.3f} '
              f'{r["packets_per_cpu_s"]:>11.0f} {r["cpu_us_per_packet"]:>7.2f} {r["rtt_p50_us"]:>8} {r["rtt_p99_us"]:>8} '
              f'{r["bytes_per_allocation"]:>8.0f}')
    d = by.get(("direct", p))
    for s in ["tutti", "coturn", "coturn-1t"]:
        r = by.get((s, p))
        if r and d:
            print(f'{p:<10} {s:<10} added latency (RTT minus direct RTT, two relay passes): '
                  f'p50 {r["rtt_p50_us"] - d["rtt_p50_us"]} µs, p99 {r["rtt_p99_us"] - d["rtt_p99_us"]} µs')
    t = by.get(("tutti", p))
    for anchor in ["coturn", "coturn-1t"]:
        c = by.get((anchor, p))
        if t and c and t["packets_per_cpu_s"] and c["packets_per_cpu_s"]:
            print(f'{p:<10} tutti/{anchor}: packets per CPU-second {t["packets_per_cpu_s"] / c["packets_per_cpu_s"]:.2f}x, '
                  f'rtt p50 {t["rtt_p50_us"]} vs {c["rtt_p50_us"]} µs, p99 {t["rtt_p99_us"]} vs {c["rtt_p99_us"]} µs')
EOF
