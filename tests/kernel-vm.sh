#!/usr/bin/env bash
# The kernel backend against a real WireGuard module: netconf's
# tests/wireguard_kernel.rs, and the agent's end-to-end cold first contact
# and roaming scenarios with every daemon on `backend = "kernel"`
# (LISPGUARD_TEST_BACKEND), in a VM: Debian's linux-image-cloud-amd64 under
# qemu-system-x86 (plain TCG: a few seconds to boot), booting a
# busybox-static initramfs that loads wireguard.ko (and its dependencies),
# veth and tun, and runs the test binaries. Run as root on Debian 12 (amd64):
#
#   bash tests/kernel-vm.sh
#
# Installs what it needs; the kernel and busybox-static are only downloaded, into
# $CACHE (default ~/.cache/lispguard-vm). Exits with the test's status.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CACHE:-$HOME/.cache/lispguard-vm}"
log() { echo "kernel-vm: $*" >&2; }

packages=()
command -v qemu-system-x86_64 >/dev/null || packages+=(qemu-system-x86)
command -v cpio >/dev/null || packages+=(cpio)
if [ ${#packages[@]} -gt 0 ]; then
  log "apt-get install ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# busybox-static, downloaded and unpacked (installing it would replace the
# host's busybox, which other tools may want).
bb="$CACHE/busybox-static/bin/busybox"
if [ ! -x "$bb" ]; then
  mkdir -p "$CACHE"
  (cd "$CACHE" && apt-get download busybox-static 2>/dev/null && dpkg-deb -x busybox-static_*.deb "$CACHE/busybox-static" && rm -f busybox-static_*.deb)
fi

# The kernel: the package linux-image-cloud-amd64 points to, unpacked.
image=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-.*\)/\1/p' | head -1)
[ -n "$image" ] || { apt-get update -qq; image=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-.*\)/\1/p' | head -1); }
version=${image#linux-image-}
kroot="$CACHE/$image"
if [ ! -f "$kroot/boot/vmlinuz-$version" ]; then
  log "downloading $image"
  mkdir -p "$CACHE"
  (cd "$CACHE" && apt-get download "$image" 2>/dev/null && dpkg-deb -x "$CACHE/${image}"_*.deb "$kroot" && rm -f "$CACHE/${image}"_*.deb)
fi
modules="$kroot/lib/modules/$version/kernel"

# The modules and what they depend on (modinfo's depends=), in load order.
declare -A ko seen
while read -r f; do n=$(basename "$f" .ko); ko[${n//-/_}]=$f; done < <(find "$modules" -name '*.ko')
order=()
visit() {
  local n=${1//-/_} dep
  [ -n "${seen[$n]:-}" ] && return
  seen[$n]=1
  [ -n "${ko[$n]:-}" ] || return 0 # built in
  for dep in $(strings "${ko[$n]}" | sed -n 's/^depends=//p' | tr , ' '); do visit "$dep"; done
  order+=("${ko[$n]}")
}
for m in wireguard veth tun; do visit $m; done
[ -n "${ko[wireguard]:-}" ] || { log "no wireguard.ko in $image"; exit 1; }

# The test binaries and the daemons, built as for the host (glibc: their
# libraries go along). The daemons keep their paths: the lab finds them
# beside CARGO_BIN_EXE_lispguard, compiled in.
test_binary() {
  cargo test -p "$1" --test "$2" --no-run --locked --message-format=json 2>/dev/null |
    sed -n "s/.*\"executable\":\"\([^\"]*\/$2-[^\"]*\)\".*/\1/p" | tail -1
}
cargo build -p agent -p mapserver --bins --locked -q
netconf_test=$(test_binary netconf wireguard_kernel)
sites_test=$(test_binary agent sites)
daemons=("$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"/debug/lispguard{,-mapserver})
for b in "$netconf_test" "$sites_test" "${daemons[@]}"; do
  [ -x "$b" ] || { log "not built: $b"; exit 1; }
done
# The scenarios of agent/tests/sites.rs run here.
scenarios=(host_a_pings_host_b_with_cold_caches_and_the_first_ping_is_answered
  a_node_that_moves_reregisters_and_traffic_resumes_even_when_both_move)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,modules,run,lib64,lib/x86_64-linux-gnu}
ln -s ../run "$root/var/run" 2>/dev/null || { mkdir -p "$root/var" && ln -s ../run "$root/var/run"; }
cp "$bb" "$root/bin/busybox"
for a in sh mount insmod poweroff cat echo sleep; do ln -s busybox "$root/bin/$a"; done
cp "$netconf_test" "$root/bin/netconf-test"
cp "$sites_test" "$root/bin/sites-test"
for b in "${daemons[@]}"; do mkdir -p "$root$(dirname "$b")" && cp "$b" "$root$b"; done
tools=("$(command -v ip)" "$(command -v ping)" "$(command -v sysctl)")
for t in "${tools[@]}"; do cp "$t" "$root/bin/"; done
for lib in $(ldd "$netconf_test" "$sites_test" "${daemons[@]}" "${tools[@]}" | grep -o '/[^ ]*\.so[^ ]*' | sort -u); do
  cp -L "$lib" "$root$lib"
done
i=0
for f in "${order[@]}"; do cp "$f" "$root/modules/$(printf %02d $i)-$(basename "$f")"; i=$((i + 1)); done
cat > "$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /modules/*.ko; do insmod "$m" || echo "insmod $m failed"; done
mkdir -p /dev/net /run/netns
[ -e /dev/net/tun ] || mknod /dev/net/tun c 10 200
export PATH=/bin RUST_BACKTRACE=1
ip link set lo up
if [ -d /sys/module/wireguard ]; then
  /bin/netconf-test --test-threads=1
  netconf=$?
  LISPGUARD_TEST_BACKEND=kernel /bin/sites-test --test-threads=1 --exact SCENARIOS
  sites=$?
  echo "kernel-vm-result $((netconf + sites))"
else
  echo "kernel-vm-result no-module"
fi
poweroff -f
EOF
sed -i "s/SCENARIOS/${scenarios[*]}/" "$root/init"
for a in mknod mkdir; do ln -s busybox "$root/bin/$a"; done
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

log "booting $version with ${#order[@]} modules"
timeout 600 qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -nographic -no-reboot \
  -kernel "$kroot/boot/vmlinuz-$version" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1" </dev/null >"$work/console" 2>&1 || true
rc=$(sed -n 's/.*kernel-vm-result \([0-9a-z-]*\).*/\1/p' "$work/console" | tail -1)
if [ "$rc" != 0 ]; then
  tr -d '\r' <"$work/console" >&2
  log "failed (status ${rc:-none: the VM did not finish})"
  exit 1
fi
grep -a '^test \|^test result' "$work/console" | tr -d '\r'
log "passed"
