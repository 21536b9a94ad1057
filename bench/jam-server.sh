#!/usr/bin/env bash
# bench/jam-server.sh - tutti server against the real Jamulus 3.9.1 server, side by side in one run.
#
# Usage: bench/jam-server.sh [--quick] [--cases LIST] [--ns "1 5 10 …"]
#   --quick       N = 10 50 only, and only the default-format cases (about 3 minutes)
#   --cases LIST  comma-separated subset of: opus-default,opus-distinct,opus64-default,opus64-distinct
#   --ns "…"      the client counts to measure
#   --rt          run server and load generator with real-time priority (chrt -f 50, needs root), so
#                 that other work on the machine (a build, say) cannot take their cores' time
#   --baseline BIN  also run another tutti binary (an earlier build, say) as server "tutti-base",
#                 after the others at each N, and print tutti/base (before/after in one run)
#   --servers LIST  space-separated subset of "jamulus jamulus-T tutti" to run (default all)
#
# For each case (audio format x gains) and each N, every server runs alone, pinned to core 0,
# (all N clients join at once; the 6 s warm-up covers the 3 s fade-in, during which every new
# listener's mix is its own, and the catch-up after it),
# with `tutti loadgen` pinned to core 1 emulating N clients (real handshakes, real OPUS frames,
# sequence counters); the load generator reads the server's CPU (utime+stime from /proc) and RSS
# over a measurement window and checks that every client got its mix at full rate (>= 99 % of
# the packets, <= 0.5 % frames missing at a client's jitter buffer).
#   servers:  jamulus     Jamulus --nogui --server -u 150 (default flags)
#             jamulus-T   the same with --multithreading
#             tutti       tutti server -u 150
#   formats:  opus        Jamulus client defaults: OPUS 128-sample frames, mono, normal quality
#             opus64      OPUS64 64-sample frames with --fastupdate on the server
#   gains:    default     every listener leaves all faders at 100 %
#             distinct    every listener sets its own gain for every channel (no two mixes alike)
# Prints a table per case, the ratio tutti/Jamulus, the largest N at full rate per server, and
# tutti's CPU per client against the codec floor (one decode + one encode per frame, measured
# here by the codec micro-benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."

ns="1 5 10 20 50 100 110 120 130 140 150"
cases="opus-default,opus-distinct,opus64-default,opus64-distinct"
warmup=6
duration=5
rt=()
base=""
servers="jamulus jamulus-T tutti"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) ns="10 50"; cases="opus-default,opus-distinct"; shift ;;
    --cases) cases="$2"; shift 2 ;;
    --ns) ns="$2"; shift 2 ;;
    --rt) rt=(chrt -f 50); shift ;;
    --baseline) base="$2"; shift 2 ;;
    --servers) servers="$2"; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "bench/jam-server.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done

[ -z "$base" ] || [ -x "$base" ] || { echo "bench/jam-server.sh: --baseline $base is not an executable" >&2; exit 2; }
[ -x /usr/bin/Jamulus ] || { echo "bench/jam-server.sh: needs the Debian package jamulus (apt-get install jamulus)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "bench/jam-server.sh: needs 2 cores (server and load generator pinned apart)" >&2; exit 1; }
cargo build --release --locked -p tutti >&2
tutti=target/release/tutti
server_core=0
loadgen_core=1
port=$((23000 + RANDOM % 2000))
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
trap stop_server EXIT

# start_server KIND FASTUPDATE: starts it on a fresh port, pinned to the server core.
start_server() {
  local kind=$1 fast=$2 flags=()
  port=$((port + 1))
  [ "$fast" = 1 ] && flags+=(--fastupdate)
  case $kind in
    jamulus) QT_QPA_PLATFORM=offscreen "${rt[@]}" taskset -c $server_core /usr/bin/Jamulus --nogui --server \
               --serverbindip 127.0.0.1 -p "$port" -u 150 "${flags[@]}" >/dev/null 2>&1 & ;;
    jamulus-T) QT_QPA_PLATFORM=offscreen "${rt[@]}" taskset -c $server_core /usr/bin/Jamulus --nogui --server \
               --serverbindip 127.0.0.1 -p "$port" -u 150 -T "${flags[@]}" >/dev/null 2>&1 & ;;
    tutti) "${rt[@]}" taskset -c $server_core "$tutti" server --serverbindip 127.0.0.1 -p "$port" -u 150 \
               "${flags[@]}" >/dev/null 2>&1 & ;;
    tutti-base) "${rt[@]}" taskset -c $server_core "$base" server --serverbindip 127.0.0.1 -p "$port" -u 150 \
               "${flags[@]}" >/dev/null 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 50); do
    ss -Hlun "sport = :$port" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  echo "bench/jam-server.sh: $kind did not bind UDP $port" >&2
  exit 1
}

# measure N FORMAT GAINS -> "ms full rss"
measure() {
  local n=$1 format=$2 gains=$3 args=()
  [ "$format" = opus64 ] && args+=(--codec opus64)
  [ "$gains" = distinct ] && args+=(--distinct-gains)
  local line
  if ! line=$("${rt[@]}" taskset -c $loadgen_core "$tutti" loadgen -c "127.0.0.1:$port" -n "$n" --warmup $warmup \
           --duration $duration --server-pid "$server_pid" --summary "${args[@]}" 2>/tmp/jam-bench-loadgen.err); then
    echo "bench/jam-server.sh: the load generator failed at N=$n: $(tail -n 3 /tmp/jam-bench-loadgen.err)" >&2
    echo "- 0 0 -"
    return 0
  fi
  local ms full rss lg
  ms=$(sed -E 's/.*server_ms_per_client_s=([^ ]+).*/\1/' <<<"$line")
  full=$(sed -E 's/.*full_rate=([0-9]+).*/\1/' <<<"$line")
  rss=$(sed -E 's/.*server_rss_kib=([^ ]+).*/\1/' <<<"$line")
  lg=$(sed -E 's/.*loadgen_cpu_pct=([^ ]+).*/\1/' <<<"$line")
  echo "$ms $full $rss $lg"
}

# The codec floor (one decode + one encode per frame), from the codec micro-benchmark.
echo "measuring the codec floor (bench/codec.sh) ..." >&2
cargo bench --locked -p tutti-codec --bench codec --no-run >&2 2>/dev/null # build outside real-time priority
floor_table=$("${rt[@]}" taskset -c $server_core bench/codec.sh 2>/dev/null)
floor_opus=$(awk '$1 == "opus128_mono_normal" {print $6}' <<<"$floor_table")
floor_opus64=$(awk '$1 == "opus64_mono_normal" {print $6}' <<<"$floor_table")

echo "tutti $("$tutti" --version | awk '{print $2}') vs Jamulus $(/usr/bin/Jamulus --version 2>&1 | grep -o 'Version [^ ]*' | head -1 | cut -d' ' -f2)"
echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(date -u +%F)"
echo "server on core $server_core, load generator on core $loadgen_core$([ ${#rt[@]} -gt 0 ] && echo ', both real-time (chrt -f 50)'); window ${duration} s after ${warmup} s warm-up"
echo "codec floor (ms per client-second): OPUS $floor_opus, OPUS64 $floor_opus64"

IFS=, read -r -a case_list <<<"$cases"
for c in "${case_list[@]}"; do
  format=${c%-*}
  gains=${c#*-}
  fast=0; [ "$format" = opus64 ] && fast=1
  floor=$floor_opus; [ "$format" = opus64 ] && floor=$floor_opus64
  echo
  echo "== $format, $gains gains$([ $fast = 1 ] && echo ', servers with --fastupdate') =="
  printf "%5s | %-22s | %-22s | %-22s | %13s | %11s\n" N "jamulus ms/cs full RSS" "jamulus-T ms/cs full" "tutti ms/cs full RSS" "tutti/jamulus" "tutti/floor"
  declare -A max_full=([jamulus]=0 [jamulus-T]=0 [tutti]=0 [tutti-base]=0)
  for n in $ns; do
    declare -A ms=([jamulus]=- [jamulus-T]=- [tutti]=-) full=([jamulus]=0 [jamulus-T]=0 [tutti]=0) rss=()
    for kind in $servers ${base:+tutti-base}; do
      start_server "$kind" $fast
      sleep 0.5
      read -r m f r _ < <(measure "$n" "$format" "$gains")
      stop_server
      ms[$kind]=$m; full[$kind]=$f; rss[$kind]=$r
      if [ "$f" = "$n" ] && [ "$n" -gt "${max_full[$kind]}" ]; then max_full[$kind]=$n; fi
    done
    ratio=$(awk -v a="${ms[tutti]}" -v b="${ms[jamulus]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    vs_floor=$(awk -v a="${ms[tutti]}" -v f="$floor" 'BEGIN { if (f > 0) printf "%.2f", a / f; else print "-" }')
    printf "%5d | %7s %4s/%-4s %6s | %7s %4s/%-4s        | %7s %4s/%-4s %6s | %13s | %11s\n" "$n" \
      "${ms[jamulus]}" "${full[jamulus]}" "$n" "$(( ${rss[jamulus]:-0} / 1024 ))M" \
      "${ms[jamulus-T]}" "${full[jamulus-T]}" "$n" \
      "${ms[tutti]}" "${full[tutti]}" "$n" "$(( ${rss[tutti]:-0} / 1024 ))M" "$ratio" "$vs_floor"
    if [ -n "$base" ]; then
      printf "%5s   baseline tutti %s ms/cs, %s/%s full, %sM; tutti/baseline %s\n" "" "${ms[tutti-base]}" \
        "${full[tutti-base]}" "$n" "$(( ${rss[tutti-base]:-0} / 1024 ))" \
        "$(awk -v a="${ms[tutti]}" -v b="${ms[tutti-base]}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')"
    fi
  done
  echo "largest N measured with every client at full rate: jamulus ${max_full[jamulus]}, jamulus -T ${max_full[jamulus-T]}, tutti ${max_full[tutti]}${base:+, baseline tutti ${max_full[tutti-base]}}"
done
