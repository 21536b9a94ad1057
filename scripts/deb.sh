#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installing cargo-deb from crates.io if missing), installs it with
# `apt install ./tutti_*.deb` the way an operator would, and runs the installed /usr/bin/tutti: --version,
# `all --help`, the man page and the example configuration. Needs root (or sudo) for the install step.
#
#   ./scripts/deb.sh            build, install, check
#   ./scripts/deb.sh --no-install   only build target/debian/tutti_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."

install=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "deb.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done
step() { printf '\n==> %s\n' "$*"; }

if ! cargo deb --version >/dev/null 2>&1; then
  step "installing cargo-deb"
  cargo install --locked cargo-deb
fi

step "cargo build --release -p tutti"
cargo build --release --locked -p tutti
step "man pages and shell completions from the clap definitions"
rm -rf target/release/assets
mkdir -p target/release/assets/completions
target/release/tutti man target/release/assets/man
target/release/tutti completions bash > target/release/assets/completions/tutti.bash
target/release/tutti completions zsh > target/release/assets/completions/_tutti
target/release/tutti completions fish > target/release/assets/completions/tutti.fish

step "cargo deb"
rm -f target/debian/tutti_*.deb
cargo deb -p tutti --no-build --strip
deb="$(ls target/debian/tutti_*.deb)"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb" | awk '{print $6}'

[ "$install" -eq 1 ] || exit 0
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
step "apt install ./$deb"
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "./$deb"
step "the installed tutti"
test "$(command -v tutti)" = /usr/bin/tutti || { echo "deb.sh: tutti is not /usr/bin/tutti" >&2; exit 1; }
/usr/bin/tutti --version
/usr/bin/tutti all --help | head -n 3
man -w tutti-all
test -f /etc/tutti/tutti.toml
for unit in all server directory lobby registry turn; do test -f "/lib/systemd/system/tutti-$unit.service"; done
/usr/bin/tutti lobby --config /etc/tutti/tutti.toml --help > /dev/null
echo
echo "the package installs and runs: $deb"
