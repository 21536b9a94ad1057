#!/usr/bin/env bash
# Coverage-guided fuzzing of tutti's parsers and state machines with AFL++ (cargo-afl, stable toolchain).
#
#   scripts/fuzz.sh --list                 the targets
#   scripts/fuzz.sh TARGET [SECONDS [TARGET…]]
#                                          fuzz a target (then the others named) until SECONDS pass (default 3600)
#                                          or EXECS executions (default 10,000,000) are done, whichever comes first
#   scripts/fuzz.sh all [SECONDS]          every target in turn
#   JOBS=2 scripts/fuzz.sh TARGET          one main and JOBS-1 secondary fuzzers on the same queue
#   NO_BUILD=1 scripts/fuzz.sh TARGET      reuse the harness built last time
#
# The seeds are crates/fuzz/corpus/TARGET (made by `cargo run -p tutti-fuzz --bin fuzz-seed`); the findings go to
# target/fuzz/TARGET. Every crash and hang found is copied to crates/fuzz/regressions/TARGET/, which the normal
# test suite replays (crates/fuzz/tests/replay.rs): fix the code, keep the input. A summary line per target
# (executions, paths, crashes, hangs) is appended to target/fuzz/summary.txt for docs/reliability.md.
# Not run in CI (CI replays the corpora instead).
set -euo pipefail
cd "$(dirname "$0")/.."

EXECS=${EXECS:-10000000}
JOBS=${JOBS:-1}
export CARGO_TARGET_DIR=${AFL_TARGET_DIR:-target/afl}
harness="$CARGO_TARGET_DIR/release/fuzz"
out_root=target/fuzz

targets() { sed -n 's/^    ("\([a-z_]*\)", .*/\1/p' crates/fuzz/src/lib.rs; }

if [ "${1:-}" = --list ] || [ $# -eq 0 ]; then
  echo "targets:"; targets | sed 's/^/  /'
  [ $# -eq 0 ] && { echo "usage: scripts/fuzz.sh TARGET|all [SECONDS]" >&2; exit 2; }
  exit 0
fi
target=$1
seconds=${2:-3600}
for name in "$target" "${@:3}"; do
  if [ "$name" != all ] && ! targets | grep -qx "$name"; then
    echo "fuzz.sh: no target $name; the targets are: $(targets | tr '\n' ' ')" >&2
    exit 2
  fi
done

if ! cargo afl --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-afl from crates.io (it builds AFL++ too)"
  cargo install cargo-afl --locked
fi
# NO_BUILD=1 reuses the harness built last time (its targets are those it was built with).
[ "${NO_BUILD:-}" = 1 ] || cargo afl build --release --locked -q -p tutti-fuzz --features afl --bin fuzz

# AFL++'s checks of the machine: a core_pattern that pipes to a crash reporter and a CPU governor it cannot
# read are not errors here (crashes are still caught in-process).
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_SKIP_CRASHES=0
# Not pinned to a core: on a shared machine (or beside a benchmark pinned with taskset) AFL would find none free.
export AFL_NO_AFFINITY=1
mkdir -p "$out_root"

fuzz_one() {
  local name=$1 out="$out_root/$1" pids=() i
  rm -rf "$out"
  for ((i = 1; i < JOBS; i++)); do
    cargo afl fuzz -S "s$i" -i "crates/fuzz/corpus/$name" -o "$out" -V "$seconds" -E "$EXECS" -- "$harness" "$name" \
      >"$out_root/$name-s$i.log" 2>&1 &
    pids+=($!)
  done
  cargo afl fuzz -M main -i "crates/fuzz/corpus/$name" -o "$out" -V "$seconds" -E "$EXECS" -- "$harness" "$name" \
    >"$out_root/$name.log" 2>&1 || { echo "fuzz.sh: afl-fuzz failed on $name:" >&2; tail -20 "$out_root/$name.log" >&2; return 1; }
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  local execs=0 paths=0 crashes=0 hangs=0 secs=0 stats
  for stats in "$out"/*/fuzzer_stats; do
    execs=$((execs + $(sed -n 's/^execs_done *: //p' "$stats")))
    paths=$((paths + $(sed -n 's/^corpus_count *: //p' "$stats")))
    crashes=$((crashes + $(sed -n 's/^saved_crashes *: //p' "$stats")))
    hangs=$((hangs + $(sed -n 's/^saved_hangs *: //p' "$stats")))
    secs=$(sed -n 's/^run_time *: //p' "$stats")
  done
  local found=0 file
  for file in "$out"/*/crashes/id:* "$out"/*/hangs/id:*; do
    [ -f "$file" ] || continue
    mkdir -p "crates/fuzz/regressions/$name"
    cp "$file" "crates/fuzz/regressions/$name/$(sha1sum "$file" | cut -c1-16)"
    found=$((found + 1))
  done
  local line
  line="$(date -u +%F) $name: $execs executions in ${secs}s ($((execs / (secs > 0 ? secs : 1)))/s), $paths paths, $crashes crashes, $hangs hangs"
  echo "$line" | tee -a "$out_root/summary.txt"
  [ "$found" -eq 0 ] || echo "fuzz.sh: $found findings copied to crates/fuzz/regressions/$name/: fix them, keep them" >&2
}

if [ "$target" = all ]; then
  for name in $(targets); do fuzz_one "$name"; done
else
  for name in "$target" "${@:3}"; do fuzz_one "$name"; done
fi
