#!/usr/bin/env bash
# Tests with WireGuard's kernel backend, the one every OpenWrt router runs:
# netconf's rtnetlink and kernel-WireGuard tests, and the agent's cold first
# contact and roaming scenarios with every daemon on `backend = "kernel"`.
# This machine's kernel has no WireGuard module, so they run in a virtual
# machine (tests/vm/lib.sh): Debian's cloud kernel (wireguard.ko included)
# under qemu, with a busybox initramfs that holds the test binaries at the
# paths cargo built them at, the daemons, and the few host tools the tests
# call (ip, ping).
#
#   bash tests/vm/run.sh            (as root; tests/run.sh calls it)
#
# Installs what it needs (qemu-system-x86, busybox, the kernel
# package, unpacked under target/vm, not installed). Each test binary runs
# with LISPGUARD_TEST_BACKEND=kernel; the VM prints each one's exit status
# and this script fails if any failed or the VM did not finish.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
vm_kernel

# What runs in the VM: test binaries (and the arguments that pick their
# tests), built as `cargo test` builds them.
vm_say "building the tests"
cargo build -q --workspace --bins --locked
tests_json=$(cargo test -q --locked --no-run --message-format=json \
  -p netconf --test rtnl --test wireguard_kernel \
  -p agent --test sites 2>/dev/null)
executable() { # the test binary of target $1
  echo "$tests_json" | grep -F "\"name\":\"$1\"" | grep -o '"executable":"[^"]*"' |
    head -1 | cut -d'"' -f4
}
vm_runs=(
  "$(executable rtnl)"
  "$(executable wireguard_kernel)"
  "$(executable sites) host_a_pings_host_b_with_cold_caches a_node_that_moves"
)
vm_run_args="--test-threads 1"
vm_programs=("$PWD/target/debug/lispguard" "$PWD/target/debug/lispguard-mapserver")
vm_show='^VM:|^test |test result'
vm_initramfs
vm_boot

failed=0
for run in "${vm_runs[@]}"; do
  if ! grep -qF "VM: exit 0 $run" "$vm/console.log"; then
    vm_say "FAILED in the VM: $run (console: $vm/console.log)"
    failed=1
  fi
done
grep -q "VM: done" "$vm/console.log" || { vm_say "the VM did not finish (console: $vm/console.log)"; failed=1; }
[ $failed = 0 ] && vm_say "all passed with the kernel backend"
exit $failed
