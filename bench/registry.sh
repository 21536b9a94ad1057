#!/usr/bin/env bash
# Registry benchmark: `tutti registry` over SQLite holding N (1,000,000) real, verifiable Ed25519
# registrations, pinned to core 0; the load generator (crates/registry/examples/registry_load.rs, one
# thread, plain HTTP/1.1 keep-alive, CONNS connections) pinned to core 1. Loopback only; every phase is
# bounded in seconds.
#
#   bench/registry.sh                     everything (about 3 minutes, plus about 3 for the first fill)
#   N=100000 SECS=3 bench/registry.sh     smaller/faster
#   CACHE_MB=1024 bench/registry.sh       the server's answer cache (--cache-mb, default 64 as the server's
#                                         own default) large enough for every name and address, filled by
#                                         a warm pass (every name and address once, not measured) first
#   RT=0 bench/registry.sh                without real-time priority (by default, as root, server and load
#                                         generator run SCHED_FIFO 50 via chrt, so other work on this
#                                         machine cannot take their cores; the kernel still keeps 5 %)
#
# Measures, against the same server in the same run:
#   - closed-loop throughput (1 s warm-up, SECS measured) of four kinds of request, alternated for
#     ROUNDS (2) rounds so drift shows: the HTTP floor (GET /nothing/NAME: the router's JSON 404
#     fallback, no store access), name lookups (GET /name/NAME, a random registered name), address
#     lookups (GET /addr/ADDR) and unknown names (GET /name/NAME, well-formed, 404 from the store);
#   - name lookups at a fixed RATE (20,000/s) offered open loop, latency p50/p99/p999/max from each
#     request's intended send time (no coordinated omission);
#   - registrations/s: REGS (50,000) fresh registrations signed before the clock starts, POSTed closed
#     loop for at most SECS (the server verifies each signature and group-commits with fsync);
#   - the same fixed RATE of floor requests, for the server's CPU at that rate against the lookups';
#   - server CPU (utime + stime from /proc) in every phase, and per request; RSS after start and after
#     the load; the database's size;
#   - with the server stopped, the SQLite lookup alone (Store::record and Store::name_of of random
#     known entries on core 0, no HTTP) for 3 s each.
# Every answer is checked (status and body); any other answer counts as an error and fails the run.
# The filled database is cached under $target/registry-bench-cache/N and copied fresh for every run
# (the registrations phase adds names), so a second run skips the fill (about 2.5 minutes at 1M).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
SECS=${SECS:-10}
CONNS=${CONNS:-64}
RATE=${RATE:-20000}
REGS=${REGS:-50000}
ROUNDS=${ROUNDS:-2}
RT=${RT:-1}
CACHE_MB=${CACHE_MB:-64}
rt=()
[ "$RT" = 1 ] && [ "$(id -u)" = 0 ] && rt=(chrt -f 50)
target=${CARGO_TARGET_DIR:-target}
out=${OUT:-$target/registry-bench}
cache="$target/registry-bench-cache/$N"
data="$out/data"
mkdir -p "$out"

command -v python3 >/dev/null || { echo "registry.sh: python3 is missing" >&2; exit 1; }
cargo build --release --locked -q -p tutti
cargo build --release --locked -q -p tutti-registry --example registry_fill --example registry_load
tutti="$target/release/tutti"
fill="$target/release/examples/registry_fill"
load="$target/release/examples/registry_load"
ulimit -n "$(ulimit -Hn)"

echo "registry bench: N=$N SECS=$SECS CONNS=$CONNS RATE=$RATE REGS=$REGS ROUNDS=$ROUNDS; real-time: ${rt[*]:-no}; cores: $(nproc) ($(lscpu | sed -n 's/^Model name: *//p'))"
if [ ! -f "$cache/filled" ]; then
  rm -rf "$cache"
  mkdir -p "$cache"
  "$fill" "$cache" "$N" | tee "$cache/fill.txt"
  touch "$cache/filled"
else
  echo "(cached) $(cat "$cache/fill.txt")"
fi
rm -rf "$data"
mkdir -p "$data"
cp "$cache/registry.sqlite3" "$cache/bench-addrs.txt" "$data/"
chmod 700 "$data"
chmod 600 "$data/registry.sqlite3"

server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap stop_server EXIT

log="$out/server.log"
"${rt[@]}" taskset -c 0 "$tutti" registry --listen 127.0.0.1:0 --data-dir "$data" --registrations-per-minute 0 --cache-mb "$CACHE_MB" >"$log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 100); do
  addr=$(grep -o 'http://[0-9.:]*' "$log" | head -1 | sed 's|http://||') || true
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "registry.sh: the server did not start:" >&2; cat "$log" >&2; exit 1; }
sleep 1

results="$out/results.jsonl"
: >"$results"
# memory WHEN: the server's VmRSS, VmHWM, RssAnon and RssFile (KiB) from status, and Pss from smaps_rollup
# (RssFile counts a page of the mapped database once per connection that maps it; Pss divides it)
memory() {
  cat "/proc/$server_pid/status" "/proc/$server_pid/smaps_rollup" | awk -v when="$1" '
    /^(VmRSS|VmHWM|RssAnon|RssFile|Pss):/ { gsub(":", "", $1); v[$1] = $2 }
    END { printf "{\"phase\":\"memory\",\"when\":\"%s\",\"r\":{\"vmrss_kib\":%d,\"vmhwm_kib\":%d,\"rss_anon_kib\":%d,\"rss_file_kib\":%d,\"pss_kib\":%d}}\n",
            when, v["VmRSS"], v["VmHWM"], v["RssAnon"], v["RssFile"], v["Pss"] }' | tee -a "$results"
}
# phase PHASE ROUND LOADGEN-ARGS...
phase() {
  local name=$1 round=$2
  shift 2
  local line
  line=$("${rt[@]}" taskset -c 1 "$load" "$@" | sed -n 's/^result //p')
  [ -n "$line" ] || { echo "registry.sh: no result from $name" >&2; exit 1; }
  echo "{\"phase\":\"$name\",\"round\":$round,\"r\":$line}" | tee -a "$results"
}

echo "load average before: $(cat /proc/loadavg); answer cache ${CACHE_MB} MiB"
memory started
if [ "$CACHE_MB" -gt 64 ]; then
  phase warm 1 warm "$addr" "$data" "$CONNS" 600 "$server_pid"
  memory warmed
fi
for round in $(seq "$ROUNDS"); do
  for mode in floor name addr unknown; do
    phase "$mode" "$round" "$mode" "$addr" "$data" "$CONNS" "$SECS" "$server_pid"
  done
done
phase rate-floor 1 rate-floor "$addr" "$data" "$CONNS" "$SECS" "$server_pid" "$RATE"
phase rate 1 rate "$addr" "$data" "$CONNS" "$SECS" "$server_pid" "$RATE"
memory after-lookups
phase register 1 register "$addr" "$data" "$CONNS" "$SECS" "$server_pid" "$REGS"
memory after-registrations
db_bytes=$(stat -c %s "$data/registry.sqlite3")
wal_bytes=$(stat -c %s "$data/registry.sqlite3-wal" 2>/dev/null || echo 0)
echo "{\"phase\":\"db\",\"r\":{\"db_bytes\":$db_bytes,\"wal_bytes\":$wal_bytes}}" | tee -a "$results"
stop_server
# the SQLite lookup alone, without HTTP, on the server's core (the server is stopped)
line=$("${rt[@]}" taskset -c 0 "$load" store - "$data" 0 3 0 | sed -n 's/^result //p')
echo "{\"phase\":\"store\",\"r\":$line}" | tee -a "$results"
echo "load average after: $(cat /proc/loadavg)"

echo
echo "## Registry benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, server on core 0, load generator on core 1, $N names, answer cache $CACHE_MB MiB)"
python3 - "$results" "$RATE" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rate = float(sys.argv[2])
def runs(p): return [r["r"] for r in rows if r["phase"] == p]
def one(p, key="when", val=None):
    return next(r["r"] for r in rows if r["phase"] == p and (val is None or r.get(key) == val))
errors = sum(r["r"].get("errors", 0) for r in rows)
def us(r): return r["server_cpu_pct"] * 1e4 / r["per_sec"] if r["per_sec"] else float("nan")
print("| request (closed loop) | req/s by round | mean req/s | p50 / p99 ms | server CPU % (user/sys) | server µs/request | vs floor |")
print("|---|---|---|---|---|---|---|")
means = {}
for p, label in [("floor", "floor: GET /nothing/NAME (JSON 404, no store)"), ("name", "GET /name/NAME (known)"),
                 ("addr", "GET /addr/ADDR (known)"), ("unknown", "GET /name/NAME (unknown, 404 from the store)")]:
    rs = runs(p)
    means[p] = sum(r["per_sec"] for r in rs) / len(rs)
    by = " / ".join(f'{r["per_sec"]:,.0f}' for r in rs)
    lat = " ; ".join(f'{r["p50_ms"]:.2f} / {r["p99_ms"]:.2f}' for r in rs)
    cpu = " ; ".join(f'{r["server_cpu_pct"]:.0f} ({r["server_user_pct"]:.0f}/{r["server_system_pct"]:.0f})' for r in rs)
    per = " / ".join(f'{us(r):.1f}' for r in rs)
    print(f'| {label} | {by} | {means[p]:,.0f} | {lat} | {cpu} | {per} | {means[p] / means["floor"]:.2f}x |')
print()
for p, what in [("rate-floor", "floor requests"), ("rate", "name lookups")]:
    r = runs(p)[0]
    print(f'open loop, {rate:,.0f} {what}/s offered: {r["per_sec"]:,.0f}/s answered, p50 {r["p50_ms"]:.2f} ms, p99 {r["p99_ms"]:.2f} ms, '
          f'p999 {r["p999_ms"]:.2f} ms, max {r["max_ms"]:.2f} ms; server CPU {r["server_cpu_pct"]:.0f} % '
          f'({r["server_user_pct"]:.0f} user / {r["server_system_pct"]:.0f} sys) = {us(r):.1f} µs/request; longest backlog {r["max_backlog"]}')
s = one("store")
print(f'SQLite lookup alone (no HTTP, one thread on core 0): Store::record {s["name_per_sec"]:,.0f}/s = {s["name_us_each"]:.1f} µs each, '
      f'Store::name_of {s["addr_per_sec"]:,.0f}/s = {s["addr_us_each"]:.1f} µs each')
g = runs("register")[0]
print(f'registrations (closed loop, {g["conns"]} connections, {g["ok"]:,} in {g["secs"]:.1f} s): {g["per_sec"]:,.0f}/s, '
      f'p50 {g["p50_ms"]:.2f} ms, p99 {g["p99_ms"]:.2f} ms; server CPU {g["server_cpu_pct"]:.0f} % '
      f'({g["server_user_pct"]:.0f} user / {g["server_system_pct"]:.0f} sys)')
for when in ["started", "warmed", "after-lookups", "after-registrations"]:
    if not any(r["phase"] == "memory" and r.get("when") == when for r in rows):
        continue
    m = one("memory", "when", when)
    print(f'server memory {when}: VmRSS {m["vmrss_kib"] / 1024:.1f} MiB (anon {m["rss_anon_kib"] / 1024:.1f}, '
          f'file {m["rss_file_kib"] / 1024:.1f}), Pss {m["pss_kib"] / 1024:.1f} MiB, VmHWM {m["vmhwm_kib"] / 1024:.1f} MiB')
d = one("db")
print(f'database: {d["db_bytes"] / 1e6:.1f} MB (+ WAL {d["wal_bytes"] / 1e6:.1f} MB) after the registrations')
ratio = means["name"] / means["floor"]
print()
print(f'goal: name lookups >= 0.8x the floor: {ratio:.2f}x -> {"met" if ratio >= 0.8 else "NOT met"}')
r = runs("rate")[0]
ok = r["p99_ms"] < 5 and r["per_sec"] >= 0.99 * rate
print(f'goal: p99 < 5 ms at {rate:,.0f} lookups/s: p99 {r["p99_ms"]:.2f} ms at {r["per_sec"]:,.0f}/s -> {"met" if ok else "NOT met"}')
print(f'errors (unexpected answers) in all phases: {errors}')
sys.exit(1 if errors else 0)
EOF
