#!/usr/bin/env bash
# Where the bytes of a cross binary go: builds it unstripped (same flags as
# cross/build.sh, in $CARGO_TARGET_DIR/bloat) and sums llvm-nm's symbol
# sizes per crate (the first path segment of the demangled name; after LTO
# inlined code counts for its caller's crate).
#
#   cross/bloat.sh [TARGET [BIN]]   (default: mips-unknown-linux-musl lispguard)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CROSS_ROOT"
t="${1:-mips-unknown-linux-musl}"
b="${2:-lispguard}"
command -v llvm-nm >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends llvm >/dev/null
ensure_all "$t"
out="$CARGO_TARGET_DIR/bloat"
args=(zigbuild --release --locked --target "$t" --bin "$b" --config profile.release.strip=false)
if needs_build_std "$t"; then
  tc=nightly
  args+=(-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size)
  extra='"-C","panic=immediate-abort","-Z","unstable-options"'
  case "$t" in mips*)
    extra="\"-C\",\"relocation-model=static\",$extra"
    export "CFLAGS_${t//-/_}=$MIPS_NO_PIC_CFLAGS"
    ;;
  esac
  args+=(--config "target.$t.rustflags=[$extra]")
else
  tc=stable
fi
CARGO_TARGET_DIR="$out" cargo "+$tc" "${args[@]}" >&2
f="$out/$t/release/$b"
echo "sections (bytes):"
readelf -SW "$f" | sed 's/^ *\[ *[0-9]*\]//' | awk '$1 ~ /^\./ {print $1, $5}' |
  while read -r n hex; do printf '  %-20s %8d\n' "$n" "$((16#$hex))"; done | sort -k2 -nr | head -8
echo "symbols by crate (bytes, top 25):"
llvm-nm --size-sort -S --demangle --radix=d "$f" | awk '
  { size=$2+0; $1=$2=$3=""; name=substr($0,4)
    sub(/^<[^ ]* as /, "", name); sub(/^</, "", name)
    n=split(name, p, "::"); crate=(n>1 ? p[1] : "[C:musl,sqlite,unnamed]")
    gsub(/^_+/, "", crate)
    s[crate]+=size; tot+=size }
  END { for (c in s) printf "  %-32s %8d\n", c, s[c]; printf "  %-32s %8d\n", "TOTAL(symbols)", tot }' |
  sort -k2 -nr | head -26
