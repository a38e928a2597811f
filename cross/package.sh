# What the package builders (openwrt/ipk.sh, deb/build.sh) share, sourced
# by them: the command line (one binary directory, or --all over cross/'s
# dist/<rust-target>/ directories), errors, and the reproducible time
# stamp. Before sourcing, a builder sets PROG (its name in messages); it
# then defines
#   package_arch TARGET    the package architecture of a rust target, or fail
#   build_package PKG BINARY_DIR ARCH VERSION OUTDIR
#   check_version VERSION  and  check_arch ARCH   (die when bad)
# and ends with `package_main "$@"`.
# shellcheck shell=bash

usage() {
  # The lines of the builder's comment that start with its path.
  grep "^#   .*$PROG " "$0" | sed 's/^# *//' >&2
  exit 2
}

die() {
  echo "$PROG: $*" >&2
  exit 1
}

# Every mtime in a package: the last commit's time, unless given.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$(dirname "$0")" log -1 --format=%ct 2>/dev/null || echo 0)
fi
case "$SOURCE_DATE_EPOCH" in
  '' | *[!0-9]*) die "SOURCE_DATE_EPOCH must be a number of seconds" ;;
esac
export SOURCE_DATE_EPOCH

# Both packages whose binary is in $1.
build_dir() {
  local bindir=$1 arch=$2 version=$3 outdir=$4 built=0 pkg
  [ -d "$bindir" ] || die "$bindir: no such directory"
  for pkg in lispguard lispguard-mapserver; do
    if [ -f "$bindir/$pkg" ]; then
      build_package "$pkg" "$bindir" "$arch" "$version" "$outdir"
      built=$((built + 1))
    fi
  done
  [ "$built" -gt 0 ] || die "$bindir: neither lispguard nor lispguard-mapserver is there"
}

# BINARY_DIR ARCH VERSION OUTDIR, or --all DIST_DIR VERSION OUTDIR.
package_main() {
  [ $# -eq 4 ] || usage
  if [ "$1" != --all ]; then
    check_arch "$2"
    check_version "$3"
    build_dir "$1" "$2" "$3" "$4"
    return
  fi
  local dist=$2 version=$3 outdir=$4 found=0 dir target arch
  check_version "$version"
  [ -d "$dist" ] || die "$dist: no such directory"
  for dir in "$dist"/*/; do
    [ -d "$dir" ] || continue
    target=$(basename "$dir")
    if ! arch=$(package_arch "$target"); then
      echo "$PROG: skipping $dir: no package architecture known for $target" >&2
      continue
    fi
    build_dir "$dir" "$arch" "$version" "$outdir"
    found=$((found + 1))
  done
  [ "$found" -gt 0 ] || die "$dist: no known <rust-target>/ directory"
}
