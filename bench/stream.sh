#!/usr/bin/env bash
# Listen-in benchmark: `tutti server --stream` serving its Ogg Opus stream to 1, 100 and 1,000 HTTP listeners, side
# by side in one run with Icecast 2 (Debian's icecast2) serving the same stream (tutti pushes it there with
# --stream-to) to the same numbers of listeners. tutti, its tone client and Icecast run on core 0; the load
# generator (bench/stream_load.py: reads and counts bytes) on core 1. Loopback only; about 3 minutes.
#
#   flock /work/notes/bench.lock chrt -f 50 bench/stream.sh
#   SECS=5 COUNTS="1 100" bench/stream.sh      smaller/faster (TUTTI=path: another tutti binary)
#   PAGES_PER_WRITE=1 bench/stream.sh          tutti's --stream-pages-per-write (default: tutti's own, 3)
#
# Per count: the server's CPU (sum of its threads' /proc/PID/task/*/schedstat run time) over SECS seconds with the listeners, minus the same
# server's CPU over SECS seconds without listeners (tutti: the jam tick and the one encode; Icecast: taking in the
# source), per listener-second; RSS with the listeners connected minus RSS before, per listener. For tutti also: late
# ticks and the tick-duration histogram from --metrics (the jam must not notice the listeners), the bytes each
# listener got (none dropped: min vs max), and the mean time from the tick handing a 20 ms frame over to its page
# going out (/status.json page_delay_us_mean).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-10}
COUNTS=${COUNTS:-"1 100 1000"}
target=${CARGO_TARGET_DIR:-target}
out=${OUT:-$target/stream-bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)

command -v icecast2 >/dev/null || { echo "stream.sh: icecast2 is missing: run ./scripts/test.sh" >&2; exit 1; }
tutti=${TUTTI:-$target/release/tutti}
[ -x "$tutti" ] || cargo build --release --locked -q -p tutti
ulimit -n "$(ulimit -Hn)"
echo "open files limit: $(ulimit -n); cores: $(nproc); $(icecast2 -v 2>&1 | head -1)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
udp=$(free_port); http=$(free_port); ice=$(free_port); metrics=$(free_port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# Icecast with its own configuration (as its own user when run as root, which it insists on).
mkdir -p "$out/icecast/logs"
owner=""
if [ "$(id -u)" = 0 ]; then
  chmod 755 "$out" "$out/icecast"; chmod 777 "$out/icecast/logs"
  owner="<changeowner><user>icecast2</user><group>icecast</group></changeowner>"
fi
cat >"$out/icecast/icecast.xml" <<XML
<icecast><location>bench</location><admin>bench@localhost</admin>
<limits><clients>5000</clients><sources>2</sources><queue-size>524288</queue-size><client-timeout>30</client-timeout>
<header-timeout>15</header-timeout><source-timeout>10</source-timeout><burst-size>65535</burst-size></limits>
<authentication><source-password>bench-source</source-password><admin-user>admin</admin-user>
<admin-password>bench-admin</admin-password></authentication><hostname>127.0.0.1</hostname>
<listen-socket><port>$ice</port><bind-address>127.0.0.1</bind-address></listen-socket><fileserve>1</fileserve>
<paths><basedir>/usr/share/icecast2</basedir><logdir>$out/icecast/logs</logdir><webroot>/usr/share/icecast2/web</webroot>
<adminroot>/usr/share/icecast2/admin</adminroot></paths>
<logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>1</loglevel></logging>
<security><chroot>0</chroot>$owner</security></icecast>
XML
taskset -c 0 icecast2 -c "$out/icecast/icecast.xml" >"$out/icecast.log" 2>&1 &
ice_pid=$!; pids+=("$ice_pid")
taskset -c 0 "$tutti" server --port "$udp" --serverbindip 127.0.0.1 --stream "127.0.0.1:$http" --metrics "$metrics" \
  --stream-to "icecast://source:bench-source@127.0.0.1:$ice/jam.opus" \
  ${PAGES_PER_WRITE:+--stream-pages-per-write "$PAGES_PER_WRITE"} >"$out/tutti.log" 2>&1 &
tutti_pid=$!; pids+=("$tutti_pid")
sleep 1
taskset -c 0 "$tutti" client --connect "127.0.0.1:$udp" --name Tone --input tone:440 >"$out/client.log" 2>&1 &
pids+=("$!")
sleep 6
curl -sf --max-time 2 "http://127.0.0.1:$ice/jam.opus" -o /dev/null || [ $? = 28 ] \
  || { echo "stream.sh: Icecast does not serve the stream" >&2; cat "$out/tutti.log" >&2; exit 1; }

# CPU time in ns of all threads (schedstat: clock-tick resolution would hide one listener).
cpu() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f", s}'; }
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$1/status"; }
tick() { curl -s "http://127.0.0.1:$metrics/metrics" | awk -v n="$1" 'index($0, n) == 1 && !done {print $NF; done = 1}'; }
hz=1000000000

results="$out/results.jsonl"
: >"$results"
# measure NAME PID URL N
measure() {
  local name=$1 pid=$2 url=$3 n=$4 c0 c1 idle r0 r1 load late0 late1 ticks0 ticks1 within0 within1
  c0=$(cpu "$pid"); sleep "$SECS"; idle=$(( $(cpu "$pid") - c0 ))
  r0=$(rss "$pid")
  late0=$(tick tutti_late_ticks_total); ticks0=$(tick tutti_tick_duration_seconds_count)
  within0=$(tick 'tutti_tick_duration_seconds_bucket{port="'"$udp"'",le="0.002667"}')
  taskset -c 1 python3 bench/stream_load.py "$url" "$n" "$((SECS + 4))" >"$out/load.json" &
  local load_pid=$!
  sleep 3; c0=$(cpu "$pid"); sleep "$SECS"; c1=$(cpu "$pid"); r1=$(rss "$pid")
  wait "$load_pid"; load=$(cat "$out/load.json")
  late1=$(tick tutti_late_ticks_total); ticks1=$(tick tutti_tick_duration_seconds_count)
  within1=$(tick 'tutti_tick_duration_seconds_bucket{port="'"$udp"'",le="0.002667"}')
  local status; status=$(curl -s "http://127.0.0.1:$http/status.json")
  echo "{\"server\":\"$name\",\"n\":$n,\"secs\":$SECS,\"hz\":$hz,\"cpu_idle\":$idle,\"cpu\":$((c1 - c0)),\"rss0\":$r0,\"rss1\":$r1,\"load\":$load,\"late_ticks\":$((late1 - late0)),\"ticks\":$((ticks1 - ticks0)),\"ticks_within_period\":$((within1 - within0)),\"status\":$status}" | tee -a "$results"
}

for n in $COUNTS; do
  measure tutti "$tutti_pid" "http://127.0.0.1:$http/stream.opus" "$n"
  measure icecast "$ice_pid" "http://127.0.0.1:$ice/jam.opus" "$n"
done

echo
echo "summary (CPU in µs per listener-second above the idle server; memory in bytes per listener):"
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {(r["server"], r["n"]): r for r in rows}
print(f'{"listeners":>9} {"server":<8} {"µs/listener-s":>14} {"B/listener":>11} {"kB/s/listener":>14} {"min/max bytes":>14} {"ended":>6} {"late ticks":>10} {"ticks ≤ period":>14}')
for n in sorted({r["n"] for r in rows}):
    for s in ["tutti", "icecast"]:
        r = by.get((s, n))
        if not r:
            continue
        us = (r["cpu"] - r["cpu_idle"]) / r["hz"] * 1e6 / (n * r["secs"])
        mem = (r["rss1"] - r["rss0"]) / n
        l = r["load"]
        rate = l["bytes"] / n / (r["secs"] + 4) / 1000
        within = f'{r["ticks_within_period"] / r["ticks"]:.4f}' if s == "tutti" and r["ticks"] else "-"
        late = r["late_ticks"] if s == "tutti" else "-"
        print(f'{n:>9} {s:<8} {us:>14.1f} {mem:>11.0f} {rate:>14.1f} {l["min"] / max(l["max"], 1):>14.3f} {l["ended_early"]:>6} {late:>10} {within:>14}')
    t, i = by.get(("tutti", n)), by.get(("icecast", n))
    if t and i:
        ct = (t["cpu"] - t["cpu_idle"]) / (n * t["secs"]); ci = (i["cpu"] - i["cpu_idle"]) / (n * i["secs"])
        mt = (t["rss1"] - t["rss0"]) / n; mi = (i["rss1"] - i["rss0"]) / n
        print(f'{n:>9} tutti/icecast: CPU {ct / ci if ci > 0 else float("nan"):.2f}x, memory {mt / mi if mi > 0 else float("nan"):.2f}x')
print("tick hand-over to page out (queue + encode + broadcast):", rows[-1]["status"].get("page_delay_us_mean"), "µs mean per 20 ms frame")
PY
