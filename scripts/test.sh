#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need when it is missing (idempotent),
# then formatting and lint gates, then every Rust test in the workspace, then the interop suites.
#
#   ./scripts/test.sh            everything
#   ./scripts/test.sh --no-lint  skip fmt/clippy (quicker local runs)
set -euo pipefail
cd "$(dirname "$0")/.."

lint=1
for arg in "$@"; do
  case "$arg" in
    --no-lint) lint=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }

# --- what the tests need -------------------------------------------------------------------------
# Debian packages: a C compiler for the vendored libopus (crates/opus-sys); the real Jamulus 3.9.1
# (client and server) and JACK with its dummy driver for the interop tests; strace for the privacy tests;
# Node.js, Chromium and redis-server for the lobby's socket.io-client, browser and scale-out tests.
# PostgreSQL for the registry's shared-database tests (started by the tests themselves, in a temp dir).
# The real Jami daemon (jami-daemon, with a D-Bus session bus and python3-dbus/gi for its driver; iproute2 for
# the loopback-only network namespace) for the registry's interop test.
# coturn (turnserver, turnutils_uclient, turnutils_peer) for the TURN interop tests and benchmark (started by them);
# faketime (libfaketime) to run a lobby whose clock is behind, handing out already expired TURN credentials.
# nginx (in front of the lobby, with docs/deploy.md's configuration), openssl (test certificates) and curl for the
# HTTPS tests; systemd (systemd-analyze) for scripts/check-units.sh.
# opus-tools (opusdec) decodes the listen-in stream in its tests; icecast2 is the real Icecast the stream is pushed to.
apt_packages=(gcc make jamulus jackd2 strace nodejs chromium redis-server postgresql jami-daemon dbus-daemon python3-dbus python3-gi iproute2 coturn faketime nginx-light openssl curl systemd opus-tools icecast2)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
if ! command -v npm >/dev/null 2>&1; then
  step "installing npm"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq npm
fi
# npm packages (committed package-lock.json) of the lobby's Node tests and benchmark anchor.
for d in crates/tutti/tests/lobby_support/js bench/anchors/lobby-node; do
  if [ ! -f "$d/node_modules/.package-lock.json" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
    step "npm ci in $d"
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
# cargo-deny for the licence, ban and source gate (deny.toml); from crates.io, once.
if ! cargo deny --version >/dev/null 2>&1; then
  step "installing cargo-deny"
  cargo install --locked cargo-deny
fi
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    step "installing the Rust component $c"
    rustup component add "$c"
  fi
done

# --- gates ---------------------------------------------------------------------------------------
if [ "$lint" -eq 1 ]; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
  step "cargo clippy (warnings are errors)"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  step "cargo deny check licenses bans sources (advisories: the database cannot be fetched here)"
  cargo deny --log-level error check licenses bans sources
fi

# --- tests ---------------------------------------------------------------------------------------
step "cargo test --workspace"
cargo test --workspace --locked

step "systemd units: verify and security scores"
./scripts/check-units.sh

step "smoke test of the binary"
cargo run --quiet --locked -p tutti -- --version
cargo run --quiet --locked -p tutti -- inspect crates/proto/tests/fixtures/jamulus-directory.pcap --proto-only | tail -n 1
cargo run --quiet --locked -p tutti -- server --help > /dev/null

echo
echo "all tests passed"
