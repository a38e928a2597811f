#!/usr/bin/env bash
# Build the Debian/Ubuntu packages of lispguard, with systemd units:
#
#   deb/build.sh BINARY_DIR ARCH VERSION OUTDIR
#   deb/build.sh --all DIST_DIR VERSION OUTDIR
#
# BINARY_DIR holds `lispguard` and/or `lispguard-mapserver`; ARCH is the
# Debian architecture (amd64, arm64, armhf). With --all, every
# DIST_DIR/<rust-target>/ of a known target is packaged for its Debian
# architecture. VERSION is a Debian version with a revision, e.g. 0.1.0-1.
# Writes OUTDIR/<package>_<VERSION>_<ARCH>.deb.
#
# The binaries are meant to be cross/build.sh's static musl builds: they
# need no shared library, so one .deb installs on every Debian and Ubuntu
# release. The packages are staged here and packed by dpkg-deb (root-owned,
# every mtime SOURCE_DATE_EPOCH, default the last commit's time): the same
# input gives the same bytes. Neither service is enabled or started on
# installation; its configuration must be filled in first (README.Debian).
#
# Environment: SOURCE_DATE_EPOCH, LISPGUARD_MAINTAINER.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
FILES=$HERE/files
MAINTAINER=${LISPGUARD_MAINTAINER:-lispguard developers <lispguard@example.org>}

PROG=build.sh
# shellcheck source-path=SCRIPTDIR/.. source=cross/package.sh
source "$HERE/../cross/package.sh"

# The Debian architecture of a dist/<rust-target>/ directory.
package_arch() {
  case "$1" in
    x86_64-unknown-linux-musl) echo amd64 ;;
    aarch64-unknown-linux-musl) echo arm64 ;;
    armv7-unknown-linux-musleabihf) echo armhf ;;
    *) return 1 ;;
  esac
}

# The maintainer scripts of a package whose unit is $1, as
# dh_installsystemd writes them with --no-enable --no-start: systemd learns
# of the unit, a running service is restarted on upgrade and stopped on
# removal. $2: what the service made at run time, deleted on purge (its
# directory too once empty: both packages share /var/lib/lispguard).
write_scripts() {
  local unit=$1 made=$2 dir=$3
  cat > "$dir/postinst" <<SH
#!/bin/sh
set -e
# Not enabled or started here: /etc/lispguard/ must be filled in first
# (/usr/share/doc/*/README.Debian).
if [ "\$1" = configure ] || [ "\$1" = abort-upgrade ] || [ "\$1" = abort-deconfigure ] || [ "\$1" = abort-remove ]; then
	if command -v deb-systemd-helper >/dev/null; then
		deb-systemd-helper update-state '$unit' >/dev/null || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "\$2" ]; then
			deb-systemd-invoke try-restart '$unit' >/dev/null || true
		fi
	fi
fi
SH
  cat > "$dir/prerm" <<SH
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
	deb-systemd-invoke stop '$unit' >/dev/null || true
fi
SH
  cat > "$dir/postrm" <<SH
#!/bin/sh
set -e
if [ "\$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "\$1" = purge ]; then
	if command -v deb-systemd-helper >/dev/null; then
		deb-systemd-helper purge '$unit' >/dev/null || true
	fi
	# What the service made: not in the package, so dpkg does not know it.
	rm -f $made
	rmdir /var/lib/lispguard 2>/dev/null || true
fi
SH
  chmod 0755 "$dir/postinst" "$dir/prerm" "$dir/postrm"
}

# /usr/share/doc/$1: copyright (machine-readable), changelog, README.Debian.
write_doc() {
  local pkg=$1 version=$2 doc=$3
  install -d "$doc"
  {
    printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n'
    printf 'Upstream-Name: lispguard\n\n'
    printf 'Files: *\nCopyright: lispguard developers\nLicense: MIT or Apache-2.0\n\n'
    printf 'License: MIT\n'
    sed -e 's/^$/./' -e 's/^/ /' "$REPO/LICENSE-MIT"
    printf '\nLicense: Apache-2.0\n'
    printf ' On Debian systems, the complete text of the Apache License 2.0 is in\n'
    printf ' /usr/share/common-licenses/Apache-2.0.\n'
  } > "$doc/copyright"
  {
    printf '%s (%s) unstable; urgency=medium\n\n' "$pkg" "$version"
    printf '  * Built by deb/build.sh from the lispguard repository.\n\n'
    printf ' -- %s  %s\n' "$MAINTAINER" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
  } | gzip -n -9 > "$doc/changelog.Debian.gz"
  install -m 0644 "$FILES/$pkg.README.Debian" "$doc/README.Debian"
}

# Build one package: $1 package, $2 binary dir, $3 arch, $4 version, $5 outdir.
build_package() {
  local pkg=$1 bindir=$2 arch=$3 version=$4 outdir=$5
  local work root ctl description conffile suggests made size
  work=$(mktemp -d)
  root=$work/root
  ctl=$root/DEBIAN
  mkdir -p "$ctl"

  case "$pkg" in
    lispguard)
      description="WireGuard peers on demand, through a LISP map-server
 The lispguard agent asks a map-server for the key and endpoint of a
 WireGuard peer the first time traffic goes to it, and sets the peer up;
 for a site's router (a LISP xTR) or a mobile node such as a robot.
 Configured in /etc/lispguard/agent.toml; not enabled until configured."
      conffile=/etc/lispguard/agent.toml
      install -D -m 0600 "$FILES/agent.toml" "$root$conffile"
      made=/var/lib/lispguard/agent.key
      ;;
    lispguard-mapserver)
      description="LISP map-server handing out WireGuard keys and endpoints
 The lispguard map-server keeps the sites' registrations, answers the
 agents' Map-Requests over WireGuard and pushes changes to them.
 Configured in /etc/lispguard/mapserver.toml; not enabled until
 configured."
      conffile=/etc/lispguard/mapserver.toml
      install -D -m 0600 "$FILES/mapserver.toml" "$root$conffile"
      made="/var/lib/lispguard/mapserver.key /var/lib/lispguard/mapserver.db /var/lib/lispguard/mapserver.db-wal /var/lib/lispguard/mapserver.db-shm /var/lib/lispguard/mapserver.db-journal"
      ;;
    *) die "unknown package $pkg" ;;
  esac
  suggests="wireguard-tools, wireguard-go"
  install -D -m 0755 "$bindir/$pkg" "$root/usr/bin/$pkg"
  install -D -m 0644 "$FILES/$pkg.service" "$root/lib/systemd/system/$pkg.service"
  install -D -m 0644 "$FILES/$pkg.lintian-overrides" "$root/usr/share/lintian/overrides/$pkg"
  write_doc "$pkg" "$version" "$root/usr/share/doc/$pkg"
  find "$root" -type d -exec chmod 0755 {} +

  size=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)
  {
    printf 'Package: %s\nVersion: %s\nArchitecture: %s\n' "$pkg" "$version" "$arch"
    printf 'Maintainer: %s\nInstalled-Size: %s\n' "$MAINTAINER" "$size"
    printf 'Suggests: %s\nSection: net\nPriority: optional\n' "$suggests"
    printf 'Description: %s\n' "$description"
  } > "$ctl/control"
  echo "$conffile" > "$ctl/conffiles"
  # For debsums and `dpkg --verify`.
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | LC_ALL=C sort |
    sed 's|^\./||' | xargs md5sum) > "$ctl/md5sums"
  write_scripts "$pkg.service" "$made" "$ctl"
  chmod 0644 "$ctl/control" "$ctl/conffiles" "$ctl/md5sums"

  mkdir -p "$outdir"
  local out=$outdir/${pkg}_${version}_${arch}.deb
  # --root-owner-group: root:root whoever builds; -Zxz: what Debian ships.
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
  rm -rf "$work"
  echo "$out"
}

check_version() {
  case "$1" in
    *-*) ;;
    *) die "bad version '$1': a Debian revision is needed (0.1.0-1)" ;;
  esac
  case "$1" in
    [0-9]*) ;;
    *) die "bad version '$1'" ;;
  esac
  case "$1" in
    *[!A-Za-z0-9.+~-]*) die "bad version '$1'" ;;
  esac
}

check_arch() {
  case "$1" in
    '' | *[!a-z0-9-]*) die "bad architecture '$1'" ;;
  esac
}

command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (package dpkg)"

package_main "$@"
