#!/usr/bin/env bash
# bench/jam-latency.sh - the delay a jam server adds to every musician's round trip: tutti against the
# real Jamulus 3.9.1 server, side by side in one run.
#
# Usage: bench/jam-latency.sh [--rounds R] [--ns "1 10 50 100"] [--jitter-buffer B] [--cases LIST] [--quick]
#   --rounds R         repeat the whole table R times, fresh servers each time (default 2)
#   --ns "…"           client counts (default "1 10 50 100"; tutti also runs at 150)
#   --jitter-buffer B  the fixed server jitter buffer every client asks for (default 4 blocks)
#   --cases LIST       comma-separated subset of default,distinct,default-T,distinct-T
#   --window SECS      measurement window per case (default 5: 50 bursts at N = 1, so p99 is nearly the max)
#   --quick            one round, N = 1 10, default gains only
#   --baseline BIN     also run another tutti binary (an earlier build) as server "tutti-base"
#   --keep-off PIDS    comma-separated processes (all their threads) to keep on core 0 during the run, off the
#                      load generator's core, their affinity restored at the end: e.g. a VM agent that stalls
#                      the core it runs on (docs/perf.md, "The instrument's own core")
#
# Every case (N = 150: see below): the server runs alone with --fastupdate (64-sample ticks) and -u 150, pinned to core 0
# (with -T: cores 0-1, which it then shares with the load generator on a 2-core machine), and
# `tutti loadgen --latency` on core 1 emulates N OPUS64 clients (real handshakes, real OPUS frames,
# sequence counters), each asking for the same fixed jitter buffer. Four clients spread over the
# client list take turns putting a 1 ms burst into otherwise quiet audio every 100 ms; every client
# keeps the server's audio with kernel receive stamps and, after the window, decodes its mix around
# each burst: round trip = the burst's send -> arrival of the datagram with its onset + the onset's
# position in it. It includes two codec passes (about 2.8 ms, the same for both servers).
# tutti also runs N = 150 with OPUS (128-sample frames) and 128-sample ticks (no -F), which one core
# can carry, for the server's send delay under full load.
#   gains:  default   every listener leaves all faders at 100 % (one shared mix)
#           distinct every listener sets its own gain for every channel (no two mixes alike)
# Prints per case and N: round trip mean, p50, p99, max (ms), best-to-worst spread of the
# per-client means, mean per-client arrival jitter (stdev of 2-datagram intervals), clients at full
# rate; for tutti also its --metrics send delay (send - tick start per audio datagram) p50/p99 as
# the histogram's bucket bounds, counted over the measurement window; "late" = frame periods in which the load
# generator itself woke over 0.25 ms late (its frames then reach any server after the usual arrival time).
# Before every round, bench/wakeup-lateness.c checks the instrument: how late a real-time thread wakes on the
# load generator's core in 5 s (a wake-up over 1.33 ms late makes the client's frame miss its tick on any server).
# Run it serialized and real-time: flock /work/notes/bench.lock chrt -f 50 bench/jam-latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=2
ns="1 10 50 100"
jb=4
cases="default,distinct,default-T,distinct-T"
base=""
keep_off=""
warmup=6
duration=5
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --ns) ns="$2"; shift 2 ;;
    --jitter-buffer) jb="$2"; shift 2 ;;
    --cases) cases="$2"; shift 2 ;;
    --window) duration="$2"; shift 2 ;;
    --quick) rounds=1; ns="1 10"; cases="default"; shift ;;
    --baseline) base="$2"; shift 2 ;;
    --keep-off) keep_off="$2"; shift 2 ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "bench/jam-latency.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done

[ -z "$base" ] || [ -x "$base" ] || { echo "bench/jam-latency.sh: --baseline $base is not an executable" >&2; exit 2; }
[ -x /usr/bin/Jamulus ] || { echo "bench/jam-latency.sh: needs the Debian package jamulus (apt-get install jamulus)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "bench/jam-latency.sh: needs 2 cores (server and load generator pinned apart)" >&2; exit 1; }
chrt -p $$ 2>/dev/null | grep -q SCHED_FIFO || echo "bench/jam-latency.sh: not real-time; numbers will be noisy (run under chrt -f 50)" >&2
nice -n 10 cargo build --release --locked -p tutti >&2
tutti=target/release/tutti
port=$((25000 + RANDOM % 2000))
metrics_port=$((27000 + RANDOM % 2000))
server_pid=""

stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
# --keep-off: each thread's affinity as it was, restored on exit
kept_off=()
restore_affinity() {
  local entry
  for entry in "${kept_off[@]}"; do taskset -p "${entry#*:}" "${entry%%:*}" >/dev/null 2>&1 || :; done
}
finish() { stop_server; restore_affinity; }
trap finish EXIT
IFS=, read -r -a keep_off_pids <<<"$keep_off"
for pid in "${keep_off_pids[@]}"; do
  [ -d "/proc/$pid/task" ] || { echo "bench/jam-latency.sh: --keep-off $pid: no such process" >&2; exit 2; }
  for task in /proc/"$pid"/task/*; do
    tid=${task##*/}
    mask=$(taskset -p "$tid" 2>/dev/null | awk '{print $NF}') || continue
    taskset -p 1 "$tid" >/dev/null && kept_off+=("$tid:$mask")
  done
done

# the instrument's floor: how late a real-time thread wakes on the load generator's core
probe=""
if command -v cc >/dev/null; then
  mkdir -p target/bench
  cc -O2 -o target/bench/wakeup-lateness bench/wakeup-lateness.c && probe=target/bench/wakeup-lateness
fi
probe_core() {
  if [ -n "$probe" ]; then
    echo "wake-ups on the load generator's core 1: $(taskset -c 1 chrt -f 50 "$probe" 5 2>&1)"
  else
    echo "wake-ups on the load generator's core 1: not checked (no C compiler)"
  fi
}

# start_server KIND THREADS(0|1) FASTUPDATE(0|1)
start_server() {
  local kind=$1 threads=$2 cores=0 flags=() bin
  [ "$3" = 1 ] && flags+=(--fastupdate)
  port=$((port + 1)); metrics_port=$((metrics_port + 1))
  if [ "$threads" = 1 ]; then cores=0-1; flags+=(-T); fi
  case $kind in
    jamulus) QT_QPA_PLATFORM=offscreen taskset -c $cores /usr/bin/Jamulus --nogui --server \
               --serverbindip 127.0.0.1 -p "$port" -u 150 "${flags[@]}" >/dev/null 2>&1 & ;;
    tutti|tutti-base) bin=$tutti; [ "$kind" = tutti-base ] && bin=$base
               taskset -c $cores "$bin" server --serverbindip 127.0.0.1 -p "$port" -u 150 \
               --metrics "$metrics_port" "${flags[@]}" >/dev/null 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 50); do
    ss -Hlun "sport = :$port" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  echo "bench/jam-latency.sh: $kind did not bind UDP $port" >&2
  exit 1
}

scrape() { curl -sf --max-time 5 "http://127.0.0.1:$metrics_port/metrics"; }

# send_delay START: p50/p99 (bucket upper bounds, ms) of tutti's send delay histogram between the scrape in the
# file START and the one on stdin
send_delay() { python3 bench/histogram.py "$1" - tutti_audio_send_delay_seconds 0.5 0.99; }

field() { sed -E "s/.*$1=([^ ]+).*/\\1/" <<<"$2"; }

echo "tutti $("$tutti" --version | awk '{print $2}') vs Jamulus $(/usr/bin/Jamulus --version 2>&1 | grep -o 'Version [^ ]*' | head -1 | cut -d' ' -f2)"
echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(date -u '+%F %H:%M')"
echo "OPUS64 mono clients, servers -F -u 150 on core 0 (-T: cores 0-1), load generator on core 1; fixed jitter buffer $jb; window ${duration} s after ${warmup} s"
[ ${#kept_off[@]} = 0 ] || echo "kept on core 0: ${#kept_off[@]} threads of process(es) $keep_off"
IFS=, read -r -a case_list <<<"$cases"
for round in $(seq "$rounds"); do
  echo
  probe_core
  for c in "${case_list[@]}"; do
    gains=${c%-T}; threads=0; [ "$c" != "$gains" ] && threads=1
    echo
    echo "== round $round: $gains gains$([ $threads = 1 ] && echo ', -T') =="
    printf "%-10s %4s | %6s %6s %6s %6s | %6s | %6s | %5s | %4s | %s\n" server N mean p50 p99 max spread jitter full late "send p50/p99 ms"
    for n in $ns 150; do
      for kind in jamulus tutti ${base:+tutti-base}; do
        [ "$n" = 150 ] && [ "$kind" = jamulus ] && continue
        # 150 clients of 64-sample ticks are beyond one core (bench/jam-server.sh): that row is OPUS
        # with 128-sample ticks, for the server's send delay at full load.
        fast=1; codec=opus64; [ "$n" = 150 ] && { fast=0; codec=opus; }
        start_server "$kind" $threads $fast
        sleep 0.5
        args=(--latency --jitter-buffer "$jb" --codec $codec)
        [ "$gains" = distinct ] && args+=(--distinct-gains)
        # tutti's send delay is counted over the window only: the histogram is read just after the warm-up
        # (150 clients connecting at once hold the server up for a while) and again at the end.
        [ "$kind" != jamulus ] && { sleep "$warmup"; scrape > /tmp/jam-latency-metrics-start.txt || :; } &
        scraper=$!
        if ! line=$(taskset -c 1 "$tutti" loadgen -c "127.0.0.1:$port" -n "$n" --warmup $warmup --duration $duration \
                     --server-pid "$server_pid" --summary "${args[@]}" 2>/tmp/jam-latency-loadgen.err); then
          echo "bench/jam-latency.sh: the load generator failed: $(tail -n 3 /tmp/jam-latency-loadgen.err)" >&2
          wait $scraper || :
          stop_server
          continue
        fi
        wait $scraper || :
        sends="-"
        [ "$kind" != jamulus ] && sends=$(scrape | send_delay /tmp/jam-latency-metrics-start.txt || echo "-")
        stop_server
        printf "%-10s %4d | %6s %6s %6s %6s | %6s | %6s | %5s | %4s | %s\n" "$kind" "$n" \
          "$(field rt_mean_ms "$line")" "$(field rt_p50_ms "$line")" "$(field rt_p99_ms "$line")" \
          "$(field rt_max_ms "$line")" "$(field rt_spread_ms "$line")" "$(field jitter_ms "$line")" \
          "$(field full_rate "$line")/$n" "$(field loadgen_late_wakeups "$line")" "$sends"
      done
    done
  done
done
