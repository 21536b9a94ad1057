#!/usr/bin/env bash
# Lobby benchmark: `tutti lobby` against a faithful Node.js + socket.io 4.x implementation of the same
# events (bench/anchors/lobby-node/server.mjs), one after the other in one run, each server pinned to
# core 0 and the Rust load generator (crates/lobby/examples/lobby_load.rs, one thread) to core 1.
# Loopback only; every phase is bounded in sockets and seconds.
#
#   bench/lobby.sh                 everything (about 5 minutes)
#   IDLE=5000 SECS=5 bench/lobby.sh  smaller/faster
#   bench/lobby.sh scale           scale-out instead: SCALE (50,000) idle sockets over three
#                                  `tutti lobby --redis` processes sharing one redis-server, from three
#                                  load-generator processes on source addresses 127.0.0.2-4, then a
#                                  match loop whose sockets alternate between the three processes
#   bench/lobby.sh client          only the phases with the official socket.io-client (below)
#   bench/lobby.sh idle            only tutti's RSS per idle socket, write-through on and off
#
# The official socket.io-client phases (bench/anchors/lobby-node/load.mjs, one Node process on core 1):
# closed loop at 100 and 1,000 pairs (matches/s, server and client CPU per match), and open loop at the
# same offered match rate for both servers (OPEN_RATES, default 2,000 and 5,000 matches/s: server CPU
# per match, user and system apart, and relay latency p50/p99). Each against tutti (write-through on),
# tutti with write-through off (TUTTI_LOBBY_WRITE_THROUGH=0) and Node (CLIENT_SERVERS picks).
#
# Measures: server RSS per idle socket (IDLE sockets), server CPU per match (find -> matched -> one
# message each way -> next; closed loop, 100 and 1,000 pairs) and per relayed message (RELAY_RATE
# messages/s offered over 100 pairs), with p50/p99 message latency; CPU is split into user and system
# (kernel) time. Then, in a separate untimed pass (needs `perf`), the server's system calls per match
# and per relayed message: reads, writes, epoll waits and all. Both servers run with the per-socket
# rate limit out of the way (--rate 1000000 --burst 1000000): the load generator requests no acks, so a
# refused event is silent and leaves its socket and its partner waiting for good. A closed loop of 10
# pairs sends about 6,000 events/s per socket, 1,000 pairs about 100; a loop with a socket that
# stopped receiving is reported ("stuck" in its result) and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE=${IDLE:-19000}
SECS=${SECS:-10}
RELAY_RATE=${RELAY_RATE:-10000}
LIMITS=(--rate 1000000 --burst 1000000 --accept-rate-per-address 0)
target=${CARGO_TARGET_DIR:-target}
out=${OUT:-$target/lobby-bench}
mkdir -p "$out"

command -v node >/dev/null || { echo "lobby.sh: node is missing: run ./scripts/test.sh" >&2; exit 1; }
[ -d bench/anchors/lobby-node/node_modules/socket.io ] || (cd bench/anchors/lobby-node && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release --locked -q -p tutti
cargo build --release --locked -q -p tutti-lobby --example lobby_load
tutti="$target/release/tutti"
load="$target/release/examples/lobby_load"

# every process may hold at most 20,000 open files here (hard limit)
ulimit -n "$(ulimit -Hn)"
echo "open files limit: $(ulimit -n); cores: $(nproc); limits raised for both servers: ${LIMITS[*]}"

server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap stop_server EXIT

# listen_addr LOG: the IP:PORT a starting server announces in LOG (up to 10 s), or nothing
listen_addr() {
  local a=""
  for _ in $(seq 100); do
    a=$(grep -o 'http://[0-9.:]*' "$1" | head -1 | sed 's|http://||') || true
    [ -n "$a" ] && break
    sleep 0.1
  done
  echo "$a"
}

# start_server tutti|node -> sets server_pid and addr
start_server() {
  local log="$out/$1-server.log"
  case "$1" in
    tutti) taskset -c 0 "$tutti" lobby --listen 127.0.0.1:0 "${LIMITS[@]}" >"$log" 2>&1 & ;;
    # the same binary with write-through off (every packet through the connection's own task)
    tutti-queued) TUTTI_LOBBY_WRITE_THROUGH=0 taskset -c 0 "$tutti" lobby --listen 127.0.0.1:0 "${LIMITS[@]}" >"$log" 2>&1 & ;;
    node) taskset -c 0 node bench/anchors/lobby-node/server.mjs "${LIMITS[@]}" >"$log" 2>&1 & ;;
  esac
  server_pid=$!
  addr=$(listen_addr "$log")
  [ -n "$addr" ] || { echo "lobby.sh: $1 server did not start:" >&2; cat "$log" >&2; exit 1; }
  sleep 1 # settle before measuring the idle RSS
}

if [ "${1:-}" = scale ]; then
  SCALE=${SCALE:-50000}
  HOLD=600 # the load generators are stopped once measured
  command -v redis-server >/dev/null || { echo "lobby.sh: redis-server is missing: run ./scripts/test.sh" >&2; exit 1; }
  rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$out/redis.log" 2>&1 &
  redis_pid=$!
  pids=()
  cleanup_scale() {
    for p in "${pids[@]}" "${loadgens[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    kill "$redis_pid" 2>/dev/null || true
    wait 2>/dev/null || true
  }
  trap cleanup_scale EXIT
  sleep 0.5
  addrs=()
  for i in 1 2 3; do
    "$tutti" lobby --listen 127.0.0.1:0 --redis "redis://127.0.0.1:$rport/" "${LIMITS[@]}" >"$out/scale-$i.log" 2>&1 &
    pids+=($!)
    a=$(listen_addr "$out/scale-$i.log")
    [ -n "$a" ] || { echo "lobby.sh: lobby $i did not start" >&2; cat "$out/scale-$i.log" >&2; exit 1; }
    addrs+=("$a")
  done
  csv=$(IFS=,; echo "${addrs[*]}")
  rss_before_total=$(for p in "${pids[@]}"; do grep VmRSS "/proc/$p/status" | awk '{print $2}'; done | paste -sd+ | bc)
  loadgens=()
  started=$(date +%s.%N)
  for i in 1 2 3; do
    per=$(((SCALE + 3 - i) / 3)) # SCALE split over the three, remainder included
    LOBBY_LOAD_SOURCE="127.0.0.$((i + 1))" "$load" idle "$csv" "$per" "$HOLD" 0 >"$out/scale-load-$i.out" 2>&1 &
    loadgens+=($!)
  done
  for _ in $(seq 3000); do # up to 10 minutes
    [ "$(cat "$out"/scale-load-*.out 2>/dev/null | grep -c '^connected')" -eq 3 ] && break
    sleep 0.2
  done
  [ "$(cat "$out"/scale-load-*.out 2>/dev/null | grep -c '^connected')" -eq 3 ] || { echo "lobby.sh: the load generators did not finish connecting" >&2; exit 1; }
  connect_secs=$(echo "$(date +%s.%N) - $started" | bc)
  connected=$(sed -n 's/^connected //p' "$out"/scale-load-*.out | paste -sd+ | bc)
  sleep 2 # let every process publish its count
  online=$(redis-cli -p "$rport" hvals lobby:online | paste -sd+ | bc)
  rss=$(for p in "${pids[@]}"; do grep VmRSS "/proc/$p/status" | awk '{print $2}'; done | paste -sd' ')
  rss_total=$(echo "$rss" | tr ' ' '+' | bc)
  echo "scale: $connected of $SCALE sockets connected in ${connect_secs}s; online count in Redis: $online; server RSS KiB: $rss"
  match=$("$load" match "$csv" 100 5 "${pids[0]}" | sed -n 's/^result //p')
  echo "scale: match loop (100 pairs alternating over the 3 processes, $connected idle sockets held): $match"
  stuck=$(sed -E 's/.*"stuck":([0-9]+).*/\1/' <<<"$match")
  [ "$stuck" = 0 ] || { echo "lobby.sh: $stuck sockets of the match loop stopped receiving (a lost or reordered notice)" >&2; exit 1; }
  echo "scale: server RSS per connected socket, all three processes: $(echo "scale=2; ($rss_total - $rss_before_total) / $connected" | bc) KiB"
  exit 0
fi

results="$out/results.jsonl"
: >"$results"
# fill_args LOADGEN-ARGS...: into the caller's `args`, with @ADDR@ and @PID@ of the running server
fill_args() {
  for a in "$@"; do
    a=${a//@ADDR@/$addr}
    args+=("${a//@PID@/$server_pid}")
  done
}

# measure SERVER PHASE PROGRAM ARGS...: starts SERVER, runs the load generator on core 1 (@ADDR@ and
# @PID@ in ARGS are filled in once the server runs), stops the server; its result line into `line`
measure() {
  local server=$1 phase=$2
  shift 2
  start_server "$server"
  local args=()
  fill_args "$@"
  line=$(taskset -c 1 "${args[@]}" | sed -n 's/^result //p')
  stop_server
  [ -n "$line" ] || { echo "lobby.sh: no result from $server $phase" >&2; exit 1; }
}

# run SERVER PHASE LOADGEN-ARGS...: a phase with the Rust load generator
run() {
  local line
  measure "$1" "$2" "$load" "${@:3}"
  case "$line" in *'"stuck":0'* | *'"mode":"idle"'* | *'"mode":"relay"'*) ;; *)
    echo "lobby.sh: $1 $2: sockets stopped receiving (refused events?): $line" >&2
    exit 1 ;;
  esac
  echo "{\"server\":\"$1\",\"phase\":\"$2\",\"r\":$line}" | tee -a "$results"
}

# syscalls SERVER PHASE OPS-KEY LOADGEN-ARGS...: a separate, untimed pass that counts the server's system
# calls with `perf stat` (in-kernel counters on the syscall tracepoints) over a whole load-generator run,
# divided by the operations of that run (OPS-KEY: matches_total or messages_total; the connects add
# well under 1 %)
SYSCALLS="raw_syscalls:sys_enter"
for call in read readv recvfrom recvmsg write writev sendto sendmsg epoll_wait epoll_pwait; do
  SYSCALLS="$SYSCALLS,syscalls:sys_enter_$call"
done
syscalls() {
  local server=$1 phase=$2 key=$3
  shift 3
  start_server "$server"
  local args=()
  fill_args "$@"
  perf stat -x, -o "$out/$server-$phase.perf" -e "$SYSCALLS" -p "$server_pid" &
  local perf_pid=$!
  sleep 0.5
  local line
  line=$(taskset -c 1 "$load" "${args[@]}" | sed -n 's/^result //p')
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  stop_server
  local ops
  ops=$(echo "$line" | grep -o "\"$key\":[0-9]*" | cut -d: -f2)
  [ -n "$ops" ] && [ "$ops" -gt 0 ] || { echo "lobby.sh: no operations in $server $phase: $line" >&2; exit 1; }
  awk -F, -v ops="$ops" -v server="$server" -v phase="$phase" '
    $3 == "raw_syscalls:sys_enter" { all = $1 }
    $3 ~ /sys_enter_(read|readv|recvfrom|recvmsg)$/ { reads += $1 }
    $3 ~ /sys_enter_(write|writev|sendto|sendmsg)$/ { writes += $1 }
    $3 ~ /sys_enter_epoll_p?wait$/ { polls += $1 }
    END { printf "{\"server\":\"%s\",\"phase\":\"%s\",\"r\":{\"ops\":%d,\"reads_per_op\":%.3f,\"writes_per_op\":%.3f,\"epoll_waits_per_op\":%.3f,\"syscalls_per_op\":%.3f}}\n",
            server, phase, ops, reads / ops, writes / ops, polls / ops, all / ops }' "$out/$server-$phase.perf" | tee -a "$results"
}

# run_client SERVER PHASE LOAD-MJS-ARGS...: a phase with the official socket.io-client
run_client() {
  local line
  measure "$1" "$2" node bench/anchors/lobby-node/load.mjs "${@:3}"
  echo "{\"server\":\"$1\",\"phase\":\"$2\",\"r\":$line}" | tee -a "$results"
}

OPEN_RATES=${OPEN_RATES:-2000 5000}
# tutti-queued: tutti with write-through off (TUTTI_LOBBY_WRITE_THROUGH=0), to show what it changes
CLIENT_SERVERS=${CLIENT_SERVERS:-tutti tutti-queued node}
client_phases() {
  for server in $CLIENT_SERVERS; do
    run_client "$server" client100 "http://@ADDR@" 100 "$SECS" @PID@
    run_client "$server" client1000 "http://@ADDR@" 1000 "$SECS" @PID@
    for r in $OPEN_RATES; do
      run_client "$server" "open$r" "http://@ADDR@" 500 "$SECS" @PID@ "$r"
    done
  done
}

client_table() {
  node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const get = (s, p) => (rows.find((r) => r.server === s && r.phase === p) || {}).r || {};
const f = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? "n/a" : Number(x).toFixed(d));
const better = (t, n, cost) => (t && n ? (cost ? n / t : t / n).toFixed(2) + "x" : "n/a");
console.log("| official socket.io-client | tutti | tutti, write-through off | node socket.io | tutti better by |");
console.log("|---|---|---|---|---|");
const line = (name, key, phase, d, cost = true) => {
  const t = get("tutti", phase)[key], q = get("tutti-queued", phase)[key], n = get("node", phase)[key];
  console.log(`| ${name} | ${f(t, d)} | ${f(q, d)} | ${f(n, d)} | ${better(t, n, cost)} |`);
};
// at the client: socket events handled, and the event-loop turns (I/O polls) that brought them
const client = (name, p) => {
  line(`${name}: client events per match`, "client_events_per_match", p, 2);
  line(`${name}: client event-loop turns with events, per match`, "client_turns_per_match", p, 2);
  line(`${name}: client waits (voluntary context switches) per match`, "client_waits_per_match", p, 2);
};
for (const pairs of [100, 1000]) {
  const p = "client" + pairs;
  line(`closed loop, ${pairs} pairs: matches/s`, "matches_per_sec", p, 0, false);
  line(`closed loop, ${pairs} pairs: server CPU per match, µs`, "server_cpu_us_per_match", p);
  line(`closed loop, ${pairs} pairs: client CPU per match, µs`, "client_cpu_us_per_match", p);
  line(`closed loop, ${pairs} pairs: server CPU, %`, "server_cpu_percent", p, 0);
  line(`closed loop, ${pairs} pairs: cycle time p50, ms`, "cycle_p50_ms", p, 1);
  client(`closed loop, ${pairs} pairs`, p);
}
for (const r of process.argv[2].split(" ")) {
  const p = "open" + r;
  line(`open loop ${r}/s: matches/s`, "matches_per_sec", p, 0, false);
  line(`open loop ${r}/s: server CPU per match, µs`, "server_cpu_us_per_match", p);
  line(`open loop ${r}/s: — user, µs`, "server_user_us_per_match", p);
  line(`open loop ${r}/s: — system, µs`, "server_system_us_per_match", p);
  line(`open loop ${r}/s: relay latency p50, ms`, "msg_p50_ms", p, 3);
  line(`open loop ${r}/s: relay latency p99, ms`, "msg_p99_ms", p, 3);
  line(`open loop ${r}/s: client CPU per match, µs`, "client_cpu_us_per_match", p);
  client(`open loop ${r}/s`, p);
}
' "$results" "$OPEN_RATES"
}

if [ "${1:-}" = idle ]; then
  # only tutti's RSS per idle socket (IDLE sockets), write-through on and off
  for server in tutti tutti-queued; do
    run "$server" idle idle @ADDR@ "$IDLE" 5 @PID@
  done
  exit 0
fi

if [ "${1:-}" = client ]; then
  client_phases
  echo
  echo "## Lobby benchmark, official socket.io-client ($(date -u +%Y-%m-%d), $(nproc) cores, server on core 0, client on core 1)"
  client_table
  exit 0
fi

for server in tutti node; do
  run "$server" idle idle @ADDR@ "$IDLE" 5 @PID@
  run "$server" match100 match @ADDR@ 100 "$SECS" @PID@
  run "$server" match1000 match @ADDR@ 1000 "$SECS" @PID@
  run "$server" relay100 relay @ADDR@ 100 "$RELAY_RATE" "$SECS" @PID@
done
if command -v perf >/dev/null; then
  for server in tutti node; do
    syscalls "$server" sys_match100 matches_total match @ADDR@ 100 3 @PID@
    syscalls "$server" sys_relay100 messages_total relay @ADDR@ 100 "$RELAY_RATE" 3 @PID@
  done
else
  echo "lobby.sh: perf is missing (apt-get install linux-perf): no system call counts" >&2
fi

echo
echo "## Lobby benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, server on core 0, load generator on core 1)"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const get = (s, p) => (rows.find((r) => r.server === s && r.phase === p) || {}).r || {};
const f = (x, d = 1) => (x === undefined || Number.isNaN(x) ? "n/a" : Number(x).toFixed(d));
// "tutti better by": node ÷ tutti for costs (lower is better), tutti ÷ node for rates (higher is better)
const better = (t, n, cost) => (t && n ? (cost ? n / t : t / n).toFixed(2) + "x" : "n/a");
console.log("| metric | tutti | node socket.io | tutti better by |");
console.log("|---|---|---|---|");
const line = (name, key, phase, d, cost = true) => {
  const t = get("tutti", phase)[key], n = get("node", phase)[key];
  console.log(`| ${name} | ${f(t, d)} | ${f(n, d)} | ${better(t, n, cost)} |`);
};
line(`RSS per idle socket, KiB (${get("tutti", "idle").sockets} / ${get("node", "idle").sockets} sockets)`, "kib_per_socket", "idle", 2);
line("server CPU per match, µs (100 pairs)", "server_cpu_us_per_match", "match100");
line("server CPU per match, µs (1,000 pairs)", "server_cpu_us_per_match", "match1000");
line("— of which user, µs per match (100 pairs)", "server_user_us_per_match", "match100");
line("— of which system, µs per match (100 pairs)", "server_system_us_per_match", "match100");
line("server CPU per relayed message, µs (100 pairs)", "server_cpu_us_per_message", "relay100", 2);
line("— of which user, µs per message", "server_user_us_per_message", "relay100", 2);
line("— of which system, µs per message", "server_system_us_per_message", "relay100", 2);
line("system calls per match: reads (read/recvfrom)", "reads_per_op", "sys_match100", 2);
line("system calls per match: writes (write/writev/sendto)", "writes_per_op", "sys_match100", 2);
line("system calls per match: epoll waits", "epoll_waits_per_op", "sys_match100", 2);
line("system calls per match: all", "syscalls_per_op", "sys_match100", 2);
line("system calls per relayed message: reads", "reads_per_op", "sys_relay100", 2);
line("system calls per relayed message: writes", "writes_per_op", "sys_relay100", 2);
line("system calls per relayed message: all", "syscalls_per_op", "sys_relay100", 2);
line("matches/s (100 pairs, closed loop)", "matches_per_sec", "match100", 0, false);
line("matches/s (1,000 pairs, closed loop)", "matches_per_sec", "match1000", 0, false);
line("relayed messages/s (offered '"$RELAY_RATE"', 100 pairs)", "messages_per_sec", "relay100", 0, false);
line("message latency p50, ms (relay)", "msg_p50_ms", "relay100", 2);
line("message latency p99, ms (relay)", "msg_p99_ms", "relay100", 2);
line("message latency p50, ms (match, 100 pairs)", "msg_p50_ms", "match100", 2);
line("message latency p99, ms (match, 100 pairs)", "msg_p99_ms", "match100", 2);
' "$results"
client_phases
echo
client_table
