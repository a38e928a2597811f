#!/usr/bin/env bash
# Build installable .ipk packages of lispguard for OpenWrt 24.10 and
# earlier (opkg), from binaries built outside the OpenWrt SDK:
#
#   openwrt/ipk.sh BINARY_DIR ARCH VERSION OUTDIR
#   openwrt/ipk.sh --all DIST_DIR VERSION OUTDIR
#   openwrt/ipk.sh --luci VERSION OUTDIR
#
# BINARY_DIR holds `lispguard` and/or `lispguard-mapserver`; ARCH is the
# OpenWrt package architecture (mips_24kc, aarch64_cortex-a53, ...).
# With --all, every DIST_DIR/<rust-target>/ of a known target is packaged
# for its OpenWrt architecture. VERSION is the package version as opkg
# compares it, e.g. 0.1.0-1. Writes OUTDIR/<package>_<VERSION>_<ARCH>.ipk.
# With --luci, the LuCI pages (luci-app-lispguard/), architecture `all`.
#
# The layout is that of OpenWrt's scripts/ipkg-build: a gzipped tar (GNU
# format) of ./debian-binary ("2.0"), ./data.tar.gz and ./control.tar.gz,
# in that order; owners numeric 0:0, names sorted, every mtime
# SOURCE_DATE_EPOCH (default: the time of the repository's last commit),
# gzip without names or times. Same input, same bytes.
#
# Environment: SOURCE_DATE_EPOCH, LISPGUARD_MAINTAINER.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
FILES=$HERE/lispguard/files
LUCI=$HERE/luci-app-lispguard
MAINTAINER=${LISPGUARD_MAINTAINER:-lispguard developers}
LICENSE="MIT OR Apache-2.0"

PROG=ipk.sh
# shellcheck source-path=SCRIPTDIR/.. source=cross/package.sh
source "$HERE/../cross/package.sh"

# The OpenWrt architecture of a dist/<rust-target>/ directory.
package_arch() {
  case "$1" in
    mips-unknown-linux-musl) echo mips_24kc ;;
    mipsel-unknown-linux-musl) echo mipsel_24kc ;;
    armv7-unknown-linux-musleabihf) echo arm_cortex-a9_vfpv3-d16 ;;
    aarch64-unknown-linux-musl) echo aarch64_cortex-a53 ;;
    x86_64-unknown-linux-musl) echo x86_64 ;;
    *) return 1 ;;
  esac
}

TAR=(tar --format=gnu --numeric-owner --owner=0 --group=0 --sort=name
  "--mtime=@$SOURCE_DATE_EPOCH")

# tar.gz of the contents of directory $1 (entries ./, ./x, ...) to $2.
pack_dir() {
  (cd "$1" && "${TAR[@]}" -cf - .) | gzip -n -9 > "$2"
}

# The control fields of a package: $1 package,
# $2 version, $3 arch, $4 depends, $5 installed size.
control() {
  local source=lispguard section=net
  [ "$1" != luci-app-lispguard ] || { source=$1 section=luci; }
  printf 'Package: %s\nVersion: %s\nDepends: %s\n' "$1" "$2" "$4"
  printf 'Source: feeds/lispguard/%s\nSourceName: %s\n' "$source" "$source"
  printf 'License: %s\nLicenseFiles: LICENSE-MIT LICENSE-APACHE\n' "$LICENSE"
  printf 'Section: %s\nMaintainer: %s\n' "$section" "$MAINTAINER"
  printf 'Architecture: %s\nInstalled-Size: %s\n' "$3" "$5"
}

# opkg's maintainer scripts as OpenWrt generates them: default_postinst
# runs the package's uci-defaults, then enables and starts its init script
# on a running router (IPKG_INSTROOT empty); in an image build it only
# enables it. default_prerm stops and disables it. A LuCI package ($2
# luci) then, on a running router, drops LuCI's caches and has rpcd reread
# its plugins and ACLs, as OpenWrt does for LuCI packages.
write_scripts() {
  cat > "$1/postinst" <<'SH'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_postinst "$0" "$@"
SH
  [ "${2:-}" != luci ] || cat >> "$1/postinst" <<'SH'
[ -n "${IPKG_INSTROOT}" ] || {
	rm -f /tmp/luci-indexcache.*
	rm -rf /tmp/luci-modulecache/
	killall -HUP rpcd 2>/dev/null
	exit 0
}
SH
  cat > "$1/prerm" <<'SH'
#!/bin/sh
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_prerm "$0" "$@"
SH
  chmod 0755 "$1/postinst" "$1/prerm"
}

# Build one package: $1 package, $2 binary dir, $3 arch, $4 version, $5 outdir.
build_package() {
  local pkg=$1 bindir=$2 arch=$3 version=$4 outdir=$5
  local work root ctl depends description conffiles keep size
  work=$(mktemp -d)
  root=$work/data
  ctl=$work/control
  mkdir -p "$root" "$ctl"

  case "$pkg" in
    lispguard)
      depends="kmod-wireguard, kmod-tun"
      description="The lispguard agent asks a map-server for the key and endpoint of a
 WireGuard peer the first time traffic goes to it, and sets the peer up.
 Configured with UCI (/etc/config/lispguard); disabled until enabled there."
      install -D -m 0755 "$bindir/lispguard" "$root/usr/bin/lispguard"
      install -D -m 0755 "$FILES/lispguard.init" "$root/etc/init.d/lispguard"
      install -D -m 0600 "$FILES/lispguard.config" "$root/etc/config/lispguard"
      install -D -m 0755 "$FILES/lispguard.uci-defaults" "$root/etc/uci-defaults/90-lispguard"
      conffiles="/etc/config/lispguard"
      keep="/etc/lispguard/agent.key"
      ;;
    lispguard-mapserver)
      depends="kmod-wireguard"
      description="The lispguard map-server keeps the sites' registrations, answers the
 agents' Map-Requests over WireGuard and pushes changes to them.
 Configured in /etc/lispguard/mapserver.toml; enabled in
 /etc/config/lispguard-mapserver."
      install -D -m 0755 "$bindir/lispguard-mapserver" "$root/usr/bin/lispguard-mapserver"
      install -D -m 0755 "$FILES/lispguard-mapserver.init" "$root/etc/init.d/lispguard-mapserver"
      install -D -m 0600 "$FILES/lispguard-mapserver.config" "$root/etc/config/lispguard-mapserver"
      install -D -m 0600 "$FILES/mapserver.toml" "$root/etc/lispguard/mapserver.toml"
      conffiles="/etc/config/lispguard-mapserver
/etc/lispguard/mapserver.toml"
      keep="/etc/lispguard/mapserver.key"
      ;;
    luci-app-lispguard)
      depends="luci-base, lispguard"
      description="Status and settings pages for the lispguard agent (WireGuard peers
 on demand over LISP) in LuCI, and the rpcd plugin behind the status page."
      # as luci.mk installs an app: htdocs/ to /www, root/ to /
      mkdir -p "$root/www"
      cp -R "$LUCI/htdocs/." "$root/www/"
      cp -R "$LUCI/root/." "$root/"
      find "$root" -type f -exec chmod 0644 {} +
      chmod 0755 "$root/usr/libexec/rpcd/lispguard"
      conffiles=""
      keep=""
      ;;
    *) die "unknown package $pkg" ;;
  esac
  # The WireGuard key is made on the router and never shipped; sysupgrade
  # keeps it (OpenWrt writes keep.d for conffiles absent from a package).
  if [ -n "$keep" ]; then
    install -D -m 0644 /dev/null "$root/lib/upgrade/keep.d/$pkg"
    echo "$keep" > "$root/lib/upgrade/keep.d/$pkg"
  fi
  find "$root" -type d -exec chmod 0755 {} +

  pack_dir "$root" "$work/data.tar.gz"
  size=$(gzip -dc "$work/data.tar.gz" | wc -c)

  {
    control "$pkg" "$version" "$arch" "$depends" "$size"
    printf 'Description: %s\n' "$description"
  } > "$ctl/control"
  [ -z "$conffiles" ] || printf '%s\n' "$conffiles" | LC_ALL=C sort > "$ctl/conffiles"
  case "$pkg" in
    luci-app-*) write_scripts "$ctl" luci ;;
    *) write_scripts "$ctl" ;;
  esac
  chmod 0644 "$ctl/control"
  [ ! -e "$ctl/conffiles" ] || chmod 0644 "$ctl/conffiles"
  chmod 0755 "$ctl"
  pack_dir "$ctl" "$work/control.tar.gz"

  echo "2.0" > "$work/debian-binary"
  chmod 0644 "$work/debian-binary" "$work/data.tar.gz" "$work/control.tar.gz"
  mkdir -p "$outdir"
  local out=$outdir/${pkg}_${version}_${arch}.ipk
  (cd "$work" && "${TAR[@]}" --no-recursion -cf - ./debian-binary ./data.tar.gz ./control.tar.gz) |
    gzip -n -9 > "$out"
  rm -rf "$work"
  echo "$out"
}

check_version() {
  case "$1" in
    '' | *[!A-Za-z0-9.+~-]*) die "bad version '$1'" ;;
  esac
}

check_arch() {
  case "$1" in
    '' | *[!A-Za-z0-9_.+-]*) die "bad architecture '$1'" ;;
  esac
}

if [ "${1:-}" = --luci ]; then
  [ $# -eq 3 ] || usage
  check_version "$2"
  build_package luci-app-lispguard "" all "$2" "$3"
  exit 0
fi
package_main "$@"
