#!/usr/bin/env bash
# Tests with WireGuard's kernel backend, the one every OpenWrt router runs:
# netconf's rtnetlink and kernel-WireGuard tests, and the agent's cold first
# contact and roaming scenarios with every daemon on `backend = "kernel"`.
# This machine's kernel has no WireGuard module, so they run in a virtual
# machine: Debian's cloud kernel (wireguard.ko included) under qemu, with a
# busybox initramfs that holds the test binaries at the paths cargo built
# them at, the daemons, and the few host tools the tests call (ip, ping).
#
#   bash tests/vm/run.sh            (as root; tests/run.sh calls it)
#
# Installs what it needs (qemu-system-x86, busybox, the kernel
# package, unpacked under target/vm, not installed). Each test binary runs
# with LISPGUARD_TEST_BACKEND=kernel; the VM prints each one's exit status
# and this script fails if any failed or the VM did not finish.
set -euo pipefail
cd "$(dirname "$0")/../.."
root_dir=$PWD
vm=$root_dir/target/vm
mkdir -p "$vm"

say() { echo "tests/vm: $*" >&2; }

packages=()
command -v qemu-system-x86_64 >/dev/null || packages+=(qemu-system-x86)
# Not busybox-static: its ash prefers its own applets to $PATH, which the
# OpenWrt tests' stand-ins rely on.
command -v busybox >/dev/null || packages+=(busybox)
if [ ${#packages[@]} -gt 0 ]; then
  say "installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# The kernel: the package linux-image-cloud-amd64 points at, unpacked.
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
  awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$kpkg" ]; then
  apt-get update -qq
  kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
fi
kver=${kpkg#linux-image-}
kroot=$vm/kernel-$kver
if [ ! -f "$kroot/boot/vmlinuz-$kver" ]; then
  say "fetching $kpkg"
  rm -rf "$vm/deb" "$kroot"
  mkdir -p "$vm/deb"
  (cd "$vm/deb" && apt-get download -q "$kpkg" 2>/dev/null)
  dpkg-deb -x "$vm"/deb/*.deb "$kroot"
  busybox depmod -b "$kroot" "$kver"
  rm -rf "$vm/deb"
fi

# What runs in the VM: test binaries (and the arguments that pick their
# tests), built as `cargo test` builds them.
say "building the tests"
cargo build -q --workspace --bins --locked
tests_json=$(cargo test -q --locked --no-run --message-format=json \
  -p netconf --test rtnl --test wireguard_kernel \
  -p agent --test sites 2>/dev/null)
executable() { # the test binary of target $1
  echo "$tests_json" | grep -F "\"name\":\"$1\"" | grep -o '"executable":"[^"]*"' |
    head -1 | cut -d'"' -f4
}
runs=(
  "$(executable rtnl)"
  "$(executable wireguard_kernel)"
  "$(executable sites) host_a_pings_host_b_with_cold_caches a_node_that_moves"
)

# The initramfs: busybox, modules, the binaries with their libraries.
initrd=$vm/initrd
rm -rf "$initrd"
mkdir -p "$initrd"/{bin,dev,proc,sys,run,tmp,etc,lib/modules/"$kver"}
for m in wireguard veth tun; do
  grep -E "^kernel/.*/$m\.ko:" "$kroot/lib/modules/$kver/modules.dep" | tr -d ':' | tr ' ' '\n'
done | sort -u | while read -r ko; do
  [ -n "$ko" ] || continue
  mkdir -p "$initrd/lib/modules/$kver/$(dirname "$ko")"
  cp "$kroot/lib/modules/$kver/$ko" "$initrd/lib/modules/$kver/$ko"
done
cp "$kroot/lib/modules/$kver"/modules.{dep,alias,symbols,order,builtin} "$initrd/lib/modules/$kver/" 2>/dev/null || true

copy_elf() { # copies a program and the shared libraries it loads, same paths
  local f=$1
  mkdir -p "$initrd$(dirname "$f")"
  cp -L "$f" "$initrd$f"
  ldd "$f" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
    [ -e "$initrd$lib" ] && continue
    mkdir -p "$initrd$(dirname "$lib")"
    cp -L "$lib" "$initrd$lib"
  done
}
copy_elf "$(command -v busybox)"
cp "$initrd$(command -v busybox)" "$initrd/bin/busybox"
for tool in "$(command -v ip)" "$(command -v ping)"; do copy_elf "$tool"; done
copy_elf "$root_dir/target/debug/lispguard"
copy_elf "$root_dir/target/debug/lispguard-mapserver"
for run in "${runs[@]}"; do copy_elf "${run%% *}"; done
# Debug symbols are most of a debug binary; the VM needs none of them.
find "$initrd$root_dir" -type f -perm -u+x -exec strip --strip-debug {} + 2>/dev/null || true

{
  cat <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
# /tmp stays the initramfs's own (writable): a checkout under /tmp has its
# binaries there.
mkdir -p /var && ln -s /run /var/run
for m in wireguard veth tun; do modprobe $m || echo "VM: modprobe $m failed"; done
ip link set lo up
export LISPGUARD_TEST_BACKEND=kernel RUST_BACKTRACE=1 PATH=/usr/sbin:/usr/bin:/sbin:/bin
EOF
  for run in "${runs[@]}"; do
    echo "echo \"VM: running $run\""
    echo "cd / && $run --test-threads 1; echo \"VM: exit \$? $run\""
  done
  echo 'echo "VM: done"'
  echo 'poweroff -f'
} >"$initrd/init"
chmod 0755 "$initrd/init"
(cd "$initrd" && find . | busybox cpio -o -H newc >"$vm/initrd.cpio" 2>/dev/null)
say "initramfs $(du -m "$vm/initrd.cpio" | cut -f1) MB; booting $kver"

log=$vm/console.log
# Plain emulation (TCG) unless VM_ACCEL says otherwise: /dev/kvm can exist
# where KVM cannot run this kernel (nested, no vmx), as on our machines.
timeout 1500 qemu-system-x86_64 -accel "${VM_ACCEL:-tcg}" -m 3072 -smp 2 -nographic -no-reboot \
  -kernel "$kroot/boot/vmlinuz-$kver" -initrd "$vm/initrd.cpio" \
  -append "console=ttyS0 panic=-1 quiet" </dev/null | tee "$log" | grep --line-buffered -E '^VM:|^test |test result' || true

failed=0
for run in "${runs[@]}"; do
  if ! grep -qF "VM: exit 0 $run" "$log"; then
    say "FAILED in the VM: $run (console: $log)"
    failed=1
  fi
done
grep -q "VM: done" "$log" || { say "the VM did not finish (console: $log)"; failed=1; }
[ $failed = 0 ] && say "all passed with the kernel backend"
exit $failed
