#!/usr/bin/env bash
# bench/codec.sh - cost of one Opus custom-mode encode/decode per Jamulus mode
# (crates/codec/benches/codec.rs, criterion), summarised as a table.
#
# Usage: bench/codec.sh [extra criterion args]
#   default criterion args: --warm-up-time 1 --measurement-time 3 (about 1 minute in all)
# "floor ms per client-second" = (encode + decode µs) x frames/s / 1000: the CPU time
# one client's stream costs a server per second of audio (one decode + one encode
# per frame), i.e. the codec's share of the mixing budget.
set -euo pipefail

cd "$(dirname "$0")/.."
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--warm-up-time 1 --measurement-time 3)

cargo bench -p tutti-codec --bench codec -- "${args[@]}" >&2

target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
crit="$target_dir/criterion"

# Mean time per iteration (ns) from criterion's estimates.json.
mean_ns() {
  local f="$crit/$1/$2/new/estimates.json"
  [ -f "$f" ] || { echo "bench/codec.sh: missing $f" >&2; exit 1; }
  sed -E 's/.*"mean":\{"confidence_interval":\{[^}]*\},"point_estimate":([0-9.eE+-]+).*/\1/' "$f"
}

version=$(sed -n 's/^const OPUS_VERSION: &str = "\(.*\)";/\1/p' crates/opus-sys/build.rs)
echo "libopus $version (custom modes, float, SSE/SSE2 kernels on x86-64), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
echo "mode                   frames/s  encode µs  decode µs     sum µs   floor ms/s"
for id in opus64_mono_normal opus64_stereo_normal opus128_mono_normal opus128_stereo_normal; do
  case $id in opus64*) fps=750 ;; *) fps=375 ;; esac
  enc=$(mean_ns encode "$id")
  dec=$(mean_ns decode "$id")
  awk -v id="$id" -v fps="$fps" -v e="$enc" -v d="$dec" 'BEGIN {
    printf "%-22s %8d %10.2f %10.2f %10.2f %12.2f\n", id, fps, e / 1000, d / 1000, (e + d) / 1000, (e + d) / 1000 * fps / 1000
  }'
done
