#!/usr/bin/env bash
# First contact, lispguard beside Nebula, trials interleaved in one run
# (agent/benches/first_contact.rs). Run as root on Debian 12:
#
#   bash tests/bench/first-contact.sh [TRIALS]      (default 25)
#   bash tests/bench/first-contact.sh TRIALS --data FILE   (also every trial, as TSV;
#                                   FILE absolute: cargo runs the bench in agent/)
#   bash tests/bench/first-contact.sh --timeline    (where one contact's time goes)
#   bash tests/bench/first-contact.sh --build-only  (only install and build)
#
# Installs Nebula (Debian package: nebula and nebula-cert) and what the
# tests need (tshark, wireguard-go, ...), and builds the daemons in release.
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=()
command -v nebula >/dev/null || packages+=(nebula)
command -v tshark >/dev/null || packages+=(tshark)
command -v wireguard-go >/dev/null || packages+=(wireguard-go)
command -v nft >/dev/null || packages+=(nftables)
command -v ping >/dev/null || packages+=(iputils-ping)
if [ ${#packages[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
# The lab runs the workspace's daemons from target/release: built first, so
# that a map-server changed since the last build is not measured stale.
cargo build --release --workspace --bins --locked
[ "${1:-}" != --build-only ] || exit 0
cargo bench -p agent --bench first_contact --locked -- "$@"
