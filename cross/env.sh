# Shared by cross/build.sh and cross/test.sh: installs (idempotently) what
# the cross builds need and puts it on PATH. Source it; it is not a program.
#
#   - rustup targets x86_64/aarch64-unknown-linux-musl (stable),
#     rust-src for nightly (armv7/mips/mipsel build std from source),
#   - cargo-zigbuild (crates.io), zig (PyPI "ziglang", in a venv),
#   - Debian's qemu-user-static (runners; binfmt is not registered, so
#     .cargo/config.toml names them as `runner`).
#
# Everything downloaded goes to $LISPGUARD_CROSS_CACHE
# (default ~/.cache/lispguard-cross) and ~/.cargo/bin.

CROSS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CROSS_CACHE="${LISPGUARD_CROSS_CACHE:-$HOME/.cache/lispguard-cross}"
# Apart from the host builds: build-std and zig flags would otherwise
# invalidate them on every switch.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CROSS_ROOT/target/cross}"
ZIGLANG_VERSION="${ZIGLANG_VERSION:-0.17.1}"

ALL_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl
  armv7-unknown-linux-musleabihf mips-unknown-linux-musl mipsel-unknown-linux-musl)

# Tier 3 (mips*) or no downloadable rust-std here (armv7): nightly + build-std.
needs_build_std() {
  case "$1" in
    x86_64-unknown-linux-musl | aarch64-unknown-linux-musl) return 1 ;;
    *) return 0 ;;
  esac
}

# C code (SQLite) for mips/mipsel as the Rust code is built there: not
# position-independent (static binaries; PIC on mips costs SQLite 105 KB).
MIPS_NO_PIC_CFLAGS="-fno-pic -mno-abicalls"

qemu_for() {
  case "$1" in
    x86_64-*) echo "" ;; # runs natively
    aarch64-*) echo "qemu-aarch64-static" ;;
    armv7-*) echo "qemu-arm-static" ;;
    mips-*) echo "qemu-mips-static -cpu 24Kc" ;;
    mipsel-*) echo "qemu-mipsel-static -cpu 24Kc" ;;
    *) echo "unknown target $1" >&2; return 1 ;;
  esac
}

log() { echo "cross: $*" >&2; }

ensure_rust() {
  local t need_stable=() need_nightly=0
  local installed
  installed="$(rustup target list --installed --toolchain stable 2>/dev/null || true)"
  for t in "$@"; do
    if needs_build_std "$t"; then
      need_nightly=1
    elif ! grep -qx "$t" <<<"$installed"; then
      need_stable+=("$t")
    fi
  done
  if [ ${#need_stable[@]} -gt 0 ]; then
    log "rustup target add ${need_stable[*]}"
    rustup target add --toolchain stable "${need_stable[@]}"
  fi
  if [ "$need_nightly" = 1 ]; then
    if ! rustup toolchain list | grep -q '^nightly'; then
      log "rustup toolchain install nightly"
      rustup toolchain install nightly --profile minimal
    fi
    if ! rustup component list --installed --toolchain nightly 2>/dev/null | grep -q '^rust-src'; then
      log "rustup component add rust-src --toolchain nightly"
      rustup component add rust-src --toolchain nightly
    fi
    # rustc hands the linker `-L <sysroot>/lib/rustlib/<target>/lib`, where
    # rust-std would be; with build-std there is none, and zig's linker
    # warned on every link that it cannot open it. An empty one (std comes
    # from build-std) is the truth, and ends the warning.
    local sysroot
    sysroot="$(rustc +nightly --print sysroot)"
    for t in "$@"; do
      if needs_build_std "$t"; then mkdir -p "$sysroot/lib/rustlib/$t/lib"; fi
    done
  fi
}

ensure_zig() {
  local venv="$CROSS_CACHE/venv"
  mkdir -p "$CROSS_CACHE/bin"
  if [ "$("$venv/bin/python" -m pip show ziglang 2>/dev/null | sed -n 's/^Version: //p')" != "$ZIGLANG_VERSION" ]; then
    log "pip install ziglang==$ZIGLANG_VERSION (venv $venv)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
  fi
  # A `zig` on PATH, so cargo-zigbuild does not depend on which python3 is first.
  if [ ! -x "$CROSS_CACHE/bin/zig" ]; then
    printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$venv/bin/python" >"$CROSS_CACHE/bin/zig"
    chmod +x "$CROSS_CACHE/bin/zig"
  fi
  export PATH="$CROSS_CACHE/bin:$PATH"
}

ensure_zigbuild() {
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v cargo-zigbuild >/dev/null; then
    log "cargo install cargo-zigbuild --locked"
    # Its own target dir: not ours, and not kept.
    CARGO_TARGET_DIR="$CROSS_CACHE/zigbuild-build" cargo +stable install cargo-zigbuild --locked
    rm -rf "$CROSS_CACHE/zigbuild-build"
  fi
}

ensure_qemu() {
  local t q missing=0
  for t in "$@"; do
    q="$(qemu_for "$t")"
    q="${q%% *}"
    [ -z "$q" ] || command -v "$q" >/dev/null || missing=1
  done
  if [ "$missing" = 1 ]; then
    log "apt-get install qemu-user-static"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends qemu-user-static >/dev/null
  fi
}

ensure_all() {
  ensure_rust "$@"
  ensure_zigbuild
  ensure_zig
  ensure_qemu "$@"
}
