#!/usr/bin/env bash
# The lobby under abuse (issue 26; report in docs/reliability.md). Loopback only, bounded in sockets
# and seconds. Run it serialized and real-time:
#
#   flock /work/notes/bench.lock chrt -f 50 bench/lobby-abuse.sh          everything (about 5 minutes)
#   ABUSERS=200 PAIRS=20 bench/lobby-abuse.sh local                        one phase, smaller
#   LOBBY_ARGS="--accept-rate 500" bench/lobby-abuse.sh "local redis"      with other lobby flags
#   TUTTI=/path/to/tutti bench/lobby-abuse.sh local                        another build (an earlier one) as the lobby
#
# Phases (each with a fresh `tutti lobby`, default limits, pinned to core 0; the load generator
# crates/lobby/examples/lobby_load.rs on core 1):
#   local   ABUSERS (1,000) abusive sockets from 127.0.0.2 against PAIRS (100) honest pairs chatting
#           (a message per socket every 500 ms) from 127.0.0.1: QUIET s without abuse, ABUSE s with it,
#           AFTER s once the abusers left (tutti_lobby::load::scenario). The abusers' thread drops to
#           the normal scheduling policy, so that the honest sockets' thread (real-time) is never
#           queued behind it: the latency is the server's. Reports the honest relay p50/p99 per
#           window, what the abusers did and how they ended, the server's counters (/metrics), RSS.
#   redis   the same with `tutti lobby --redis` (a redis-server of its own), then every key Redis
#           holds once everyone has left, and after the lobby stopped.
#   nofile  the open-files limit as it is (20,000 here): two load generators (127.0.0.3 and .4) hold
#           NOFILE_SOCKETS (2 × 10,500) idle sockets, more than the lobby has descriptors for; the
#           refusals are counted by the lobby and seen by the generators as 503s, the sockets
#           already open stay connected for the hold, plain HTTP is refused too, the lobby's CPU at
#           the limit is read, and after the generators left the lobby answers again.
set -euo pipefail
cd "$(dirname "$0")/.."

ABUSERS=${ABUSERS:-1000}
PAIRS=${PAIRS:-100}
QUIET=${QUIET:-15}
ABUSE=${ABUSE:-30}
AFTER=${AFTER:-10}
NOFILE_SOCKETS=${NOFILE_SOCKETS:-10500}
NOFILE_HOLD=${NOFILE_HOLD:-20}
phases=${1:-local redis nofile}
target=${CARGO_TARGET_DIR:-target}
out=${OUT:-$target/lobby-abuse}
mkdir -p "$out"

cargo build --release --locked -q -p tutti
cargo build --release --locked -q -p tutti-lobby --example lobby_load
tutti=${TUTTI:-$target/release/tutti}
load="$target/release/examples/lobby_load"
ulimit -n "$(ulimit -Hn)"
chrt -p $$ 2>/dev/null | grep -q SCHED_FIFO || echo "lobby-abuse.sh: not real-time; numbers will be noisy (run under chrt -f 50)" >&2
echo "open files limit: $(ulimit -n); cores: $(nproc); $(uptime | sed 's/.*load/load/')"

pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_lobby NAME ARGS...: on a free port; sets lobby_pid and addr once it answers (up to 10 s)
start_lobby() {
  local log="$out/$1.log"
  shift
  addr="127.0.0.1:$(free_port)"
  # shellcheck disable=SC2086 # LOBBY_ARGS: several flags
  taskset -c 0 "$tutti" lobby --listen "$addr" ${LOBBY_ARGS:-} "$@" >"$log" 2>&1 &
  lobby_pid=$!
  pids+=("$lobby_pid")
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://$addr/stats" && break
    sleep 0.1
  done
  curl -s -o /dev/null --max-time 1 "http://$addr/stats" || { echo "lobby-abuse.sh: the lobby did not start:" >&2; cat "$log" >&2; exit 1; }
  sleep 1
}

stop_lobby() {
  kill "$lobby_pid" 2>/dev/null || true
  wait "$lobby_pid" 2>/dev/null || true
}

# abuse NAME: the scenario against the running lobby; its result line, also in $out/NAME.json
abuse() {
  local line
  line=$(LOBBY_ABUSE_SOURCE=127.0.0.2 taskset -c 1 "$load" abuse "$addr" "$ABUSERS" "$PAIRS" "$QUIET" "$ABUSE" "$AFTER" "$lobby_pid" | sed -n 's/^result //p')
  [ -n "$line" ] || { echo "lobby-abuse.sh: no result from $1" >&2; exit 1; }
  echo "$line" >"$out/$1.json"
  echo "$1: $line"
  echo "$1: $(uptime | sed 's/.*load/load/')"
}

for phase in $phases; do
  case "$phase" in
    local)
      start_lobby local
      abuse local
      stop_lobby
      ;;
    redis)
      rport=$(free_port)
      chrt -o 0 taskset -c 1 redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$out/redis-server.log" 2>&1 &
      redis_pid=$!
      pids+=("$redis_pid")
      sleep 0.5
      start_lobby redis --redis "redis://127.0.0.1:$rport/"
      abuse redis
      sleep 2
      echo "redis: keys with the lobby running and everyone gone:"
      for k in $(redis-cli -p "$rport" --scan --pattern '*'); do
        echo "  $k $(redis-cli -p "$rport" type "$k") $(redis-cli -p "$rport" memory usage "$k") bytes"
      done
      stop_lobby
      echo "redis: keys after the lobby stopped: $(redis-cli -p "$rport" --scan --pattern '*' | paste -sd' ')"
      kill "$redis_pid"
      wait "$redis_pid" 2>/dev/null || true
      ;;
    nofile)
      # 10,500 sockets from each of two addresses: no per-address pace here
      start_lobby nofile --accept-rate-per-address 0
      fds_before=$(ls "/proc/$lobby_pid/fd" | wc -l)
      cpu() { awk '{print $14 + $15}' "/proc/$lobby_pid/stat"; }
      gens=()
      for src in 127.0.0.3 127.0.0.4; do
        LOBBY_LOAD_SOURCE=$src taskset -c 1 "$load" idle "$addr" "$NOFILE_SOCKETS" "$NOFILE_HOLD" "$lobby_pid" >"$out/nofile-$src.out" 2>&1 &
        gens+=($!)
        pids+=($!)
      done
      for _ in $(seq 600); do
        [ "$(cat "$out"/nofile-*.out | grep -c '^connected')" -eq 2 ] && break
        sleep 0.2
      done
      sleep 2
      fds_full=$(ls "/proc/$lobby_pid/fd" | wc -l)
      http=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$addr/stats" || true)
      cpu0=$(cpu)
      sleep 5
      cpu1=$(cpu)
      echo "nofile: descriptors $fds_before before, $fds_full at the limit; plain HTTP at the limit: $http; lobby CPU idle at the limit: $(((cpu1 - cpu0) * 10)) ms in 5 s"
      for g in "${gens[@]}"; do wait "$g" || true; done
      for src in 127.0.0.3 127.0.0.4; do
        echo "nofile $src: $(grep -m1 'connect failed' "$out/nofile-$src.out" || true) $(sed -n 's/^result //p' "$out/nofile-$src.out")"
      done
      sleep 2
      curl -s "http://$addr/metrics" | grep -E '^lobby_(connections_refused|sockets_connected|accept_errors)' | sed 's/^/nofile: /'
      echo "nofile: after the generators left: /stats $(curl -s --max-time 5 "http://$addr/stats")"
      stop_lobby
      ;;
    *) echo "lobby-abuse.sh: unknown phase $phase (local, redis, nofile)" >&2; exit 2 ;;
  esac
done
