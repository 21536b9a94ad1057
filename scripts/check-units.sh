#!/usr/bin/env bash
# Checks the systemd units in contrib/systemd/: `systemd-analyze verify` (syntax, directives, the command they
# run) and `systemd-analyze security --offline=yes` (the exposure score; each must stay at or below MAX_EXPOSURE,
# default 2.0). The units run /usr/bin/tutti; here they are checked with that path pointing at this checkout's
# binary (built if missing), in a temporary copy. Prints one score per unit (docs/deploy.md quotes them).
#
#   ./scripts/check-units.sh                 verify and score every unit
#   MAX_EXPOSURE=1.5 ./scripts/check-units.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v systemd-analyze >/dev/null || { echo "check-units.sh: systemd-analyze is missing (apt-get install systemd)" >&2; exit 1; }
max="${MAX_EXPOSURE:-2.0}"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
bin="$target/debug/tutti"
[ -x "$bin" ] || cargo build --quiet --locked -p tutti
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for unit in contrib/systemd/*.service; do
  sed "s|/usr/bin/tutti|$bin|g" "$unit" > "$tmp/$(basename "$unit")"
done
# the lobby on port 443 with its drop-in (the drop-in's lines come last, so they win)
grep -v -e '^#' -e '^\[Service\]' contrib/systemd/privileged-port.conf > "$tmp/drop-in"
awk -v f="$tmp/drop-in" '/^\[Install\]/ { while ((getline line < f) > 0) print line } { print }' \
  "$tmp/tutti-lobby.service" > "$tmp/tutti-lobby-port443.service"
rm "$tmp/drop-in"

status=0
echo "==> systemd-analyze verify"
# verify exits 0 on warnings such as an unknown directive: any output is a problem
if ! out="$(systemd-analyze verify --man=no "$tmp"/*.service 2>&1)" || [ -n "$out" ]; then
  printf '%s\n' "$out" >&2
  echo "check-units.sh: systemd-analyze verify found problems" >&2
  status=1
else
  echo "all units verify"
fi

echo "==> systemd-analyze security --offline=yes (exposure: 0 = fully hardened, 10 = none; at most $max)"
if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
  for unit in "$tmp"/*.service; do
    name="$(basename "$unit")"
    out="$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1 || true)"
    score="$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | tail -n 1)"
    if [ -z "$score" ]; then
      echo "$name: no score"; printf '%s\n' "$out" >&2; status=1; continue
    fi
    verdict="$(awk -v s="$score" -v m="$max" 'BEGIN { print (s <= m) ? "ok" : "TOO EXPOSED" }')"
    printf '%-28s %s  %s\n' "$name" "$score" "$verdict"
    [ "$verdict" = ok ] || status=1
  done
else
  echo "(this systemd-analyze has no --offline: scores skipped)"
fi
exit "$status"
