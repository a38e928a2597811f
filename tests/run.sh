#!/usr/bin/env bash
# The test suite, with everything it needs. Run as root on Debian 12:
#
#   bash tests/run.sh
#
# Installs the Debian packages the tests use — tshark (to check our bytes
# against Wireshark's LISP dissector), wireguard-go (real WireGuard where
# the kernel has no module), iproute2, ping and nftables (to build test
# namespaces and look through them), libsqlite3-dev (the system SQLite the
# OpenWrt build of the map-server links) — then checks formatting and
# lints, then runs every test of the workspace, then the kernel-backend
# tests in a VM (tests/vm/run.sh installs what it needs).
# Tests that build network namespaces need root.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "tests/run.sh: Rust is missing; install it with rustup (https://rustup.rs)" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

packages=()
command -v tshark >/dev/null || packages+=(tshark)
command -v wireguard-go >/dev/null || packages+=(wireguard-go)
command -v ip >/dev/null || packages+=(iproute2)
command -v ping >/dev/null || packages+=(iputils-ping)
command -v nft >/dev/null || packages+=(nftables)
# The system SQLite the map-server links where it is not compiled in
# (OpenWrt's feed links the router's).
[ -e /usr/include/sqlite3.h ] || packages+=(libsqlite3-dev)
if [ ${#packages[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run the binaries as processes.
cargo build --workspace --bins --locked
cargo test --workspace --locked
# The map-server's store on a system SQLite, as the OpenWrt feed builds it.
cargo test -p mapserver --no-default-features --lib --locked

# The demo's story (README's first command), in a debug build: it fails
# when a first contact does not go as it tells; its output then.
cargo build -p agent --example demo --locked
demo_out=$(mktemp)
if ! target/debug/examples/demo > "$demo_out" 2>&1; then
  cat "$demo_out"
  rm -f "$demo_out"
  exit 1
fi
rm -f "$demo_out"
echo "demo: both first contacts as it tells them"

# OpenWrt packaging: init scripts, uci-defaults, ipk.sh, feed Makefile.
bash openwrt/tests/run.sh

# Debian packaging: lintian, the units, dpkg install / upgrade / purge (in
# overlays: the machine keeps its packages). Builds the x86_64 musl binaries.
bash deb/tests/run.sh

# WireGuard's kernel backend (every OpenWrt router's), in a VM whose kernel
# has the module: netconf's tests, cold first contact and roaming.
bash tests/vm/run.sh
