#!/usr/bin/env bash
# First contact, lispguard beside Nebula, trials interleaved in one run
# (agent/benches/first_contact.rs). Run as root on Debian 12:
#
#   bash tests/bench/first-contact.sh [TRIALS]      (default 25)
#   bash tests/bench/first-contact.sh TRIALS --data FILE   (also every trial, as TSV;
#                                   FILE absolute: cargo runs the bench in agent/)
#   bash tests/bench/first-contact.sh --timeline    (where one contact's time goes)
#   bash tests/bench/first-contact.sh --build-only  (only install and build)
#   bash tests/bench/first-contact.sh --vm [TRIALS] [--data FILE] [--timeline]
#                                   (the same on WireGuard's kernel backend, in a
#                                   VM: tests/vm/lib.sh; emulated, so slow: compare
#                                   ratios, not times)
#
# Installs Nebula (Debian package: nebula and nebula-cert) and what the
# tests need (tshark, wireguard-go, ...), and builds the daemons in release.
set -euo pipefail
cd "$(dirname "$0")/../.."
in_vm=false
if [ "${1:-}" = --vm ]; then
  in_vm=true
  shift
fi
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
$in_vm || exec cargo bench -p agent --bench first_contact --locked -- "$@"

# In the VM: the bench's binary and the release daemons at their host paths,
# Nebula, and for --timeline the capture tools.
. tests/vm/lib.sh
vm_kernel
bench=$(cargo bench -p agent --bench first_contact --locked --no-run --message-format=json 2>/dev/null |
  grep -o '"executable":"[^"]*first_contact[^"]*"' | head -1 | cut -d'"' -f4)
args=()
data=""
while [ $# -gt 0 ]; do
  case $1 in
    --data) data=$2; args+=(--data /tmp/first-contact.tsv); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
vm_programs=("$PWD/target/release/lispguard" "$PWD/target/release/lispguard-mapserver"
  "$(command -v nebula)" "$(command -v nebula-cert)")
if [[ " ${args[*]} " == *" --timeline "* ]]; then
  vm_programs+=("$(command -v dumpcap)" "$(command -v tshark)")
  vm_files=(/usr/share/wireshark /usr/lib/x86_64-linux-gnu/wireshark)
fi
# The bench's logs stay in the VM until it is done: a serial console is
# slow enough to weigh on what it measures.
run="$bench ${args[*]} >/tmp/bench.out 2>/tmp/bench.log"
vm_runs=("$run")
vm_outputs=(/tmp/bench.out /tmp/bench.log /tmp/first-contact.tsv)
vm_memory=4096
vm_timeout=7200
vm_initramfs
echo "in a VM: qemu $(qemu-system-x86_64 --version | head -1 | grep -o '[0-9][0-9.]*' | head -1), ${VM_ACCEL:-tcg}, 2 vCPUs, ${vm_memory} MB; Linux $kver, WireGuard's kernel module (every daemon: backend = \"kernel\")"
echo "host: $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
vm_boot
echo "host load after: $(cut -d' ' -f1-3 /proc/loadavg)"
out=$vm/out/tmp
if ! grep -qF "VM: exit 0 $run" "$vm/console.log"; then
  tail -n 40 "$out/bench.log" 2>/dev/null || true
  vm_say "the bench failed in the VM (console: $vm/console.log; its log: $out/bench.log)"
  exit 1
fi
cat "$out/bench.out"
[ -z "$data" ] || cp "$out/first-contact.tsv" "$data"
