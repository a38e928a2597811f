#!/usr/bin/env bash
# netconf's kernel-backend test (tests/wireguard_kernel.rs) in a VM whose
# kernel has the WireGuard module: Debian's linux-image-cloud-amd64 under
# qemu-system-x86 (plain TCG: a few seconds to boot), booting a
# busybox-static initramfs that loads wireguard.ko and its dependencies and
# runs the test binary. Run as root on Debian 12 (amd64):
#
#   bash tests/kernel-vm.sh
#
# Installs what it needs; the kernel package is only downloaded, into
# $CACHE (default ~/.cache/lispguard-vm). Exits with the test's status.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CACHE:-$HOME/.cache/lispguard-vm}"
log() { echo "kernel-vm: $*" >&2; }

packages=()
command -v qemu-system-x86_64 >/dev/null || packages+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --list | grep -qx insmod || packages+=(busybox-static)
command -v cpio >/dev/null || packages+=(cpio)
if [ ${#packages[@]} -gt 0 ]; then
  log "apt-get install ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
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

# wireguard.ko and what it depends on (modinfo's depends=), in load order.
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
visit wireguard
[ ${#order[@]} -gt 0 ] || { log "no wireguard.ko in $image"; exit 1; }

# The test binary, built as for the host (glibc: its libraries go along).
bin=$(cargo test -p netconf --test wireguard_kernel --no-run --locked --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*wireguard_kernel[^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { log "test binary not built"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,modules,var/run,lib64,lib/x86_64-linux-gnu}
cp /bin/busybox "$root/bin/"
for a in sh mount insmod ip poweroff cat echo; do ln -s busybox "$root/bin/$a"; done
cp "$bin" "$root/bin/test"
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do cp -L "$lib" "$root$lib"; done
i=0
for f in "${order[@]}"; do cp "$f" "$root/modules/$(printf %02d $i)-$(basename "$f")"; i=$((i + 1)); done
cat > "$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /modules/*.ko; do insmod "$m" || echo "insmod $m failed"; done
ip link set lo up
if [ -d /sys/module/wireguard ]; then
  RUST_BACKTRACE=1 /bin/test --test-threads=1
  echo "kernel-vm-result $?"
else
  echo "kernel-vm-result no-module"
fi
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

log "booting $version with ${#order[@]} modules"
timeout 300 qemu-system-x86_64 -accel tcg -m 512 -smp 1 -nographic -no-reboot \
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
