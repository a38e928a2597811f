#!/usr/bin/env bash
# The lispguard demo, on a built-in topology: a map-server, two sites with
# a host behind each, and a robot, in network namespaces of this machine.
# Host A pings host B, the robot pings host B, caches cold; the demo prints
# the timeline (miss, Map-Request, push, Map-Reply, peers, handshake, first
# reply, in milliseconds) and the peers each side ended with. It removes
# everything it made when it ends. Run as root on Debian 12:
#
#   bash demo/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "demo/run.sh: Rust is missing; install it with rustup (https://rustup.rs)" >&2
  exit 1
fi
packages=()
command -v wireguard-go >/dev/null || packages+=(wireguard-go)
command -v ip >/dev/null || packages+=(iproute2)
command -v ping >/dev/null || packages+=(iputils-ping)
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

echo "building lispguard (release)..."
cargo build -q --release --locked --bins --example demo
exec target/release/examples/demo
