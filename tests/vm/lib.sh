# shellcheck shell=bash
# A VM with WireGuard's kernel module, for what this machine's kernel
# cannot run: Debian's cloud kernel (wireguard.ko included) under qemu,
# with a busybox initramfs that holds the programs at their host paths.
# Sourced, from the repository's root, by tests/vm/run.sh (the
# kernel-backend tests) and tests/bench/first-contact.sh --vm (the
# first-contact bench on the kernel backend):
#
#   vm_kernel                 installs qemu and busybox, fetches the kernel
#   vm_programs=(...)         programs (absolute paths; their libraries too)
#   vm_files=(...)            other files or directories, copied as they are
#   vm_runs=(...)             commands the VM runs one after the other
#   vm_outputs=(...)          files the VM hands back (absolute; in $vm/out)
#   vm_initramfs; vm_boot     builds the initramfs; boots it
#
# Each run's exit status is on the console as "VM: exit N RUN", then
# "VM: done" when all ran.

vm=$PWD/target/vm
mkdir -p "$vm"
vm_programs=()
vm_files=()
vm_runs=()
vm_outputs=()
vm_run_args=""          # appended to every run's command (not to its name)
vm_memory=3072          # MB
vm_timeout=1500         # s, for the whole VM
vm_show='^VM:'          # console lines shown as they come

vm_say() { echo "tests/vm: $*" >&2; }

# Installs qemu and busybox if missing, and unpacks (not installs) the
# kernel package linux-image-cloud-amd64 points at: sets kver and kroot.
vm_kernel() {
  local packages=()
  command -v qemu-system-x86_64 >/dev/null || packages+=(qemu-system-x86)
  # Not busybox-static: its ash prefers its own applets to $PATH, which the
  # OpenWrt tests' stand-ins rely on.
  command -v busybox >/dev/null || packages+=(busybox)
  if [ ${#packages[@]} -gt 0 ]; then
    vm_say "installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  fi
  local kpkg
  kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  if [ -z "$kpkg" ]; then
    apt-get update -qq
    kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  fi
  kver=${kpkg#linux-image-}
  kroot=$vm/kernel-$kver
  if [ ! -f "$kroot/boot/vmlinuz-$kver" ]; then
    vm_say "fetching $kpkg"
    rm -rf "$vm/deb" "$kroot"
    mkdir -p "$vm/deb"
    (cd "$vm/deb" && apt-get download -q "$kpkg" 2>/dev/null)
    dpkg-deb -x "$vm"/deb/*.deb "$kroot"
    busybox depmod -b "$kroot" "$kver"
    rm -rf "$vm/deb"
  fi
}

# $vm/initrd.cpio: busybox, the modules, ip and ping, vm_programs and
# vm_files, and an init that runs vm_runs with LISPGUARD_TEST_BACKEND=kernel.
vm_initramfs() {
  local initrd=$vm/initrd
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
  for tool in "$(command -v ip)" "$(command -v ping)" "${vm_programs[@]}"; do copy_elf "$tool"; done
  for run in "${vm_runs[@]}"; do copy_elf "${run%% *}"; done
  for f in "${vm_files[@]}"; do
    mkdir -p "$initrd$(dirname "$f")"
    cp -a "$f" "$initrd$f"
  done
  # Debug symbols are most of a debug binary; the VM needs none of them.
  find "$initrd$PWD" -type f -perm -u+x -exec strip --strip-debug {} + 2>/dev/null || true

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
    for run in "${vm_runs[@]}"; do
      echo "echo \"VM: running $run\""
      echo "cd / && $run $vm_run_args; echo \"VM: exit \$? $run\""
    done
    if [ ${#vm_outputs[@]} -gt 0 ]; then
      # A tar on the second serial port, the host's $vm/out.tar.
      echo "stty -F /dev/ttyS1 raw -echo && tar -cf /dev/ttyS1 -C / ${vm_outputs[*]#/}"
    fi
    echo 'echo "VM: done"'
    echo 'poweroff -f'
  } >"$initrd/init"
  chmod 0755 "$initrd/init"
  (cd "$initrd" && find . | busybox cpio -o -H newc >"$vm/initrd.cpio" 2>/dev/null)
}

# Boots the initramfs; the console goes to $vm/console.log, its lines
# matching vm_show to standard output; vm_outputs to $vm/out.
vm_boot() {
  local serial=()
  rm -rf "$vm/out" "$vm/out.tar"
  [ ${#vm_outputs[@]} -eq 0 ] || serial=(-serial mon:stdio -serial "file:$vm/out.tar")
  vm_say "initramfs $(du -m "$vm/initrd.cpio" | cut -f1) MB; booting $kver"
  # Plain emulation (TCG) unless VM_ACCEL says otherwise: /dev/kvm can exist
  # where KVM cannot run this kernel (nested, no vmx), as on our machines.
  timeout "$vm_timeout" qemu-system-x86_64 -accel "${VM_ACCEL:-tcg}" -m "$vm_memory" -smp 2 -nographic -no-reboot \
    "${serial[@]}" -kernel "$kroot/boot/vmlinuz-$kver" -initrd "$vm/initrd.cpio" \
    -append "console=ttyS0 panic=-1 quiet" </dev/null | tee "$vm/console.log" | grep --line-buffered -E "$vm_show" || true
  if [ ${#vm_outputs[@]} -gt 0 ] && [ -s "$vm/out.tar" ]; then
    mkdir -p "$vm/out"
    tar -xf "$vm/out.tar" -C "$vm/out" 2>/dev/null || true
  fi
}
