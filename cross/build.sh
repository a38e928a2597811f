#!/usr/bin/env bash
# Static musl release builds of `lispguard` and `lispguard-mapserver` for the
# routers' CPUs, into dist/<target>/, then a table of their stripped sizes.
#
#   cross/build.sh [TARGET ...]     (default: all five below)
#
# Installs what it needs by itself (cross/env.sh). The release profile
# already strips and optimizes for size; for the build-std targets
# (armv7, mips, mipsel: nightly) this adds, unless told otherwise:
#   SIZE_STD=1        -Zbuild-std-features=optimize_for_size
#   SIZE_RELOC=1      mips/mipsel: non-PIC code, Rust (-C relocation-model=static)
#                     and C (SQLite: -fno-pic -mno-abicalls)
#   SIZE_PANIC=1      -C panic=immediate-abort -Z unstable-options
#   SIZE_PDR=1        mips/mipsel: drop .pdr (MIPS procedure descriptors,
#                     debugger-only, 144 KB, kept by `strip`) with objcopy
# Set any to 0 to measure without it. DIST=dir puts the binaries elsewhere.
# Each built binary is run once (`--help`, under qemu where needed) so a
# flag that breaks the binary shows in the table.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CROSS_ROOT"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
DIST="${DIST:-$CROSS_ROOT/dist}"
SIZE_STD="${SIZE_STD:-1}"
SIZE_RELOC="${SIZE_RELOC:-1}"
SIZE_PANIC="${SIZE_PANIC:-1}"
SIZE_PDR="${SIZE_PDR:-1}"
OBJCOPY="$(command -v llvm-objcopy || command -v objcopy || true)"
BINS=(lispguard lispguard-mapserver)

ensure_all "${targets[@]}"

declare -A flags_used built pdr_removed
status=0
for t in "${targets[@]}"; do
  args=(zigbuild --release --locked --target "$t")
  extra=()
  if needs_build_std "$t"; then
    toolchain=nightly
    args+=(-Zbuild-std=std,panic_abort)
    [ "$SIZE_STD" = 1 ] && args+=(-Zbuild-std-features=optimize_for_size)
    if [ "$SIZE_RELOC" = 1 ]; then
      case "$t" in mips*)
        extra+=('"-C"' '"relocation-model=static"')
        export "CFLAGS_${t//-/_}=$MIPS_NO_PIC_CFLAGS"
        ;;
      esac
    fi
    [ "$SIZE_PANIC" = 1 ] && extra+=('"-C"' '"panic=immediate-abort"' '"-Z"' '"unstable-options"')
  else
    toolchain=stable
  fi
  if [ ${#extra[@]} -gt 0 ]; then
    # Joined with the target's rustflags from .cargo/config.toml (arrays merge).
    args+=(--config "target.$t.rustflags=[$(IFS=,; echo "${extra[*]}")]")
  fi
  cflags_var="CFLAGS_${t//-/_}"
  flags_used[$t]="${!cflags_var:+$cflags_var=\"${!cflags_var}\" }cargo +$toolchain ${args[*]}"
  mkdir -p "$DIST/$t"
  # One binary at a time, so that one failing to build does not hide the other.
  for b in "${BINS[@]}"; do
    log "cargo +$toolchain ${args[*]} --bin $b"
    start=$SECONDS
    rm -f "$DIST/$t/$b"
    if cargo "+$toolchain" "${args[@]}" --bin "$b"; then
      cp "$CARGO_TARGET_DIR/$t/release/$b" "$DIST/$t/$b"
      case "$t" in mips*)
        if [ "$SIZE_PDR" = 1 ] && [ -n "$OBJCOPY" ]; then
          "$OBJCOPY" --remove-section .pdr "$DIST/$t/$b"
          pdr_removed[$t]=" + objcopy --remove-section .pdr"
        fi ;;
      esac
      built[$t/$b]=1
      log "$t $b built in $((SECONDS - start)) s"
    else
      log "$t $b FAILED to build ($((SECONDS - start)) s)"
      status=1
    fi
  done
done

# The table: bytes as shipped (the profile strips; `file` confirms static).
printf '\n%-32s %-22s %10s %8s  %s\n' target binary bytes MB runs
for t in "${targets[@]}"; do
  q="$(qemu_for "$t")"
  for b in "${BINS[@]}"; do
    f="$DIST/$t/$b"
    if [ -z "${built[$t/$b]:-}" ]; then
      printf '%-32s %-22s %10s %8s  %s\n' "$t" "$b" - - "BUILD FAILED"
      continue
    fi
    bytes=$(stat -c %s "$f")
    # shellcheck disable=SC2086 # q is "qemu-x -cpu y"
    if $q "$f" --help >/dev/null 2>&1; then runs=yes; else runs=NO; fi
    kind=$(file -b "$f" | grep -o 'statically linked\|dynamically linked\|static-pie linked' | head -1)
    stripped=$(file -b "$f" | grep -o 'not stripped\|stripped' | head -1)
    printf '%-32s %-22s %10d %8.2f  %s (%s, %s)\n' "$t" "$b" "$bytes" \
      "$(awk "BEGIN{print $bytes/1000000}")" "$runs" "$kind" "$stripped"
  done
done
echo
for t in "${targets[@]}"; do echo "flags $t: ${flags_used[$t]}${pdr_removed[$t]:-}"; done
exit $status
