#!/usr/bin/env bash
# Tests of the Debian packaging (deb/): shellcheck on the scripts and the
# maintainer scripts; both .debs built twice (same bytes), lintian clean
# (errors and warnings; the overrides each say why, and all are used);
# then with this machine's dpkg, in a mount namespace where /etc, /usr and
# /var are overlays (what dpkg and the scripts write there is gone when
# the test ends; the machine keeps its packages and state):
# install, the files and their modes, `systemd-analyze verify` on the
# installed units, the services not enabled,
# the default configurations refused with the option named (exit 78 for
# `run`, which the units do not restart on), a first start's key and state
# (made as the daemons make them), an edited conffile, an upgrade to a
# higher version that keeps it, remove, purge, and nothing left.
# No service is started (this needs no systemd as PID 1).
#
#   bash deb/tests/run.sh
#
# Root, on Debian or Ubuntu. Packages the x86_64 static musl binaries of
# cross/build.sh (run here: a no-op when they are current; set
# LISPGUARD_DEB_BINARIES=DIR to package DIR's instead). Installs lintian
# and shellcheck with apt-get if missing. Needs overlayfs and unshare(1).
set -uo pipefail

TESTS=$(cd "$(dirname "$0")" && pwd)
DEB=$(dirname "$TESTS")
REPO=$(dirname "$DEB")
PACKAGES=(lispguard lispguard-mapserver)

# shellcheck source-path=SCRIPTDIR/../.. source=tests/checks.sh
source "$REPO/tests/checks.sh"
# mode PATH: "MODE OWNER:GROUP" of PATH.
mode() { stat -c '%a %U:%G' "$1" 2>&1; }
# expect_mode PATH MODE: PATH is root's with MODE.
expect_mode() {
  local got
  got=$(mode "$1")
  if [ "$got" = "$2 root:root" ]; then ok "$1 is $2 root:root"; else not_ok "$1 is $2 root:root" "$got"; fi
}
# installed PACKAGE: dpkg's status of PACKAGE, or nothing.
installed() { dpkg-query -W -f '${db:Status-Abbrev}${Version}' "$1" 2>/dev/null; }

die() {
  echo "deb/tests/run.sh: $*" >&2
  exit 1
}

# The dpkg cycle, as root of a machine without lispguard.
cycle() {
  # -------------------------------------------------------------- install
  echo "# install $V1"
  check "dpkg -i (both)" dpkg -i "${debs1[@]}"
  for p in "${PACKAGES[@]}"; do
    check "$p $V1 installed" test "$(installed "$p")" = "ii $V1"
    check "dpkg --verify $p" dpkg --verify "$p"
    expect_mode "/usr/bin/$p" 755
    expect_mode "/lib/systemd/system/$p.service" 644
    check "$p.service: systemd-analyze verify" systemd-analyze verify "/lib/systemd/system/$p.service"
    check "$p.service not enabled" test ! -e "/etc/systemd/system/multi-user.target.wants/$p.service"
  done
  expect_mode /etc/lispguard 755
  expect_mode /etc/lispguard/agent.toml 600
  expect_mode /etc/lispguard/mapserver.toml 600
  check "conffiles" bash -c "dpkg-query -W -f '\${Conffiles}' lispguard | grep -q '^ /etc/lispguard/agent.toml ' &&
    dpkg-query -W -f '\${Conffiles}' lispguard-mapserver | grep -q '^ /etc/lispguard/mapserver.toml '"
  check "no key or state shipped" test ! -e /var/lib/lispguard

  # The default configurations need editing, and say what.
  out=$(lispguard check-config /etc/lispguard/agent.toml 2>&1)
  rc=$?
  if [ $rc = 1 ] && grep -q 'control_address: missing' <<<"$out" && grep -q 'map_server: at least one' <<<"$out"; then
    ok "agent.toml as shipped: check-config names what is missing"
  else
    not_ok "agent.toml as shipped: check-config names what is missing (exit $rc)" "$out"
  fi
  out=$(lispguard-mapserver check-config /etc/lispguard/mapserver.toml 2>&1)
  rc=$?
  if [ $rc = 1 ] && grep -q 'control_address: missing' <<<"$out"; then
    ok "mapserver.toml as shipped: check-config names what is missing"
  else
    not_ok "mapserver.toml as shipped: check-config names what is missing (exit $rc)" "$out"
  fi
  # What the units' ExecStart does with them: exit 78, which they do not
  # restart on (RestartPreventExitStatus), and nothing made.
  for p in "${PACKAGES[@]}"; do
    exec_start=$(sed -n 's/^ExecStart=//p' "/lib/systemd/system/$p.service")
    read -ra command <<<"$exec_start"
    out=$("${command[@]}" 2>&1)
    rc=$?
    if [ $rc = 78 ] && grep -q 'control_address' <<<"$out"; then
      ok "$p.service's ExecStart on the shipped configuration: exit 78, the option named"
    else
      not_ok "$p.service's ExecStart on the shipped configuration: exit 78 (got $rc)" "$out"
    fi
    check "$p.service: RestartPreventExitStatus=78" grep -qx 'RestartPreventExitStatus=78' "/lib/systemd/system/$p.service"
  done
  check "a refused configuration makes no key" test ! -e /var/lib/lispguard

  # A first start: StateDirectory= makes /var/lib/lispguard (0700); the
  # daemons make their keys (0600) and the map-server its SQLite files.
  install -d -m 0700 /var/lib/lispguard
  (umask 077 && lispguard genkey > /var/lib/lispguard/agent.key &&
    lispguard genkey > /var/lib/lispguard/mapserver.key &&
    : > /var/lib/lispguard/mapserver.db && : > /var/lib/lispguard/mapserver.db-wal &&
    : > /var/lib/lispguard/mapserver.db-shm)

  # The operator fills in the configurations.
  key=$(lispguard genkey | lispguard pubkey)
  cat > /etc/lispguard/agent.toml <<EOF
control_address = "100.64.0.2"
overlay = ["10.0.0.0/8"]
private_key_file = "/var/lib/lispguard/agent.key"

[[map_server]]
address = "192.0.2.1"
public_key = "$key"
control_address = "100.64.0.1"
key = "edited on this machine"

[[eid]]
prefix = "10.1.0.0/24"
iid = 1000
EOF
  sed -i 's/^#control_address = /control_address = /' /etc/lispguard/mapserver.toml
  check "edited agent.toml passes check-config" lispguard check-config /etc/lispguard/agent.toml
  check "edited mapserver.toml passes check-config" lispguard-mapserver check-config /etc/lispguard/mapserver.toml
  sums=$(cd / && md5sum etc/lispguard/agent.toml etc/lispguard/mapserver.toml var/lib/lispguard/*.key)

  # ---------------------------------------------------------------- upgrade
  echo "# upgrade to $V2"
  # stdin closed: a conffile prompt would fail the upgrade.
  check "dpkg -i $V2 (both), no prompt" dpkg -i "${debs2[@]}" </dev/null
  for p in "${PACKAGES[@]}"; do
    check "$p $V2 installed" test "$(installed "$p")" = "ii $V2"
  done
  check "edited conffiles and keys kept" bash -c "cd / && md5sum -c --quiet <<<'$sums'"
  check "no .dpkg-new or .dpkg-dist left" bash -c '! ls /etc/lispguard/*.dpkg-* 2>/dev/null | grep -q .'
  expect_mode /etc/lispguard/agent.toml 600
  expect_mode /etc/lispguard/mapserver.toml 600
  expect_mode /var/lib/lispguard/agent.key 600

  # ---------------------------------------------------------------- remove, purge
  echo "# remove, purge"
  check "dpkg -r lispguard" dpkg -r lispguard
  check "remove keeps its configuration and key" \
    test -e /etc/lispguard/agent.toml -a -e /var/lib/lispguard/agent.key -a ! -e /usr/bin/lispguard
  check "dpkg -P lispguard" dpkg -P lispguard
  check "purge of the agent: its configuration and key gone" \
    test ! -e /etc/lispguard/agent.toml -a ! -e /var/lib/lispguard/agent.key
  check "purge of the agent: the map-server's files kept" \
    test -e /etc/lispguard/mapserver.toml -a -e /var/lib/lispguard/mapserver.key -a -e /var/lib/lispguard/mapserver.db
  check "dpkg -P lispguard-mapserver" dpkg -P lispguard-mapserver
  left=$(find /etc /var/lib /lib/systemd /usr/bin /usr/share/doc /usr/share/lintian -name '*lispguard*' 2>/dev/null)
  if [ -z "$left" ]; then ok "purge leaves nothing"; else not_ok "purge leaves nothing" "$left"; fi
  for p in "${PACKAGES[@]}"; do
    check "$p purged" test -z "$(installed "$p" | grep -v '^[up]n')"
  done
}

# --cycle WORK: the dpkg cycle, run by the test itself under unshare.
if [ "${1:-}" = --cycle ]; then
  WORK=$2
  V1=0.1.0-1
  V2=0.1.1-1
  debs1=("$WORK/$V1"/*.deb)
  debs2=("$WORK/$V2"/*.deb)
  for dir in etc usr var; do
    mkdir -p "$WORK/overlay/$dir/upper" "$WORK/overlay/$dir/work"
    mount -t overlay overlay -o "lowerdir=/$dir,upperdir=$WORK/overlay/$dir/upper,workdir=$WORK/overlay/$dir/work" "/$dir" ||
      die "cannot mount an overlay on /$dir"
  done
  # Start from a machine without lispguard (in the overlay only).
  dpkg --purge "${PACKAGES[@]}" >/dev/null 2>&1
  rm -rf /etc/lispguard /var/lib/lispguard
  cycle
  echo "$passed $failed" > "$WORK/cycle-counts"
  [ "$failed" = 0 ]
  exit
fi

[ "$(id -u)" = 0 ] || die "run me as root (dpkg -i, mounts)"
command -v dpkg >/dev/null || die "dpkg is missing: Debian or Ubuntu only"

missing=()
command -v lintian >/dev/null || missing+=(lintian)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 &&
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; } ||
    die "could not install ${missing[*]}"
fi

WORK=$(mktemp -d)
cleanup() {
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- build
echo "# build"
BIN=${LISPGUARD_DEB_BINARIES:-}
if [ -z "$BIN" ]; then
  if ! out=$(bash "$REPO/cross/build.sh" x86_64-unknown-linux-musl 2>&1); then
    not_ok "cross/build.sh x86_64-unknown-linux-musl" "$(tail -20 <<<"$out")"
    exit 1
  fi
  BIN=$REPO/dist/x86_64-unknown-linux-musl
fi
V1=0.1.0-1
V2=0.1.1-1
for v in $V1 $V2; do
  check "deb/build.sh $v" bash "$DEB/build.sh" "$BIN" amd64 "$v" "$WORK/$v"
done
check "deb/build.sh again: the same bytes" \
  bash -c "bash '$DEB/build.sh' '$BIN' amd64 $V1 '$WORK/again' >/dev/null &&
    cd '$WORK/$V1' && for f in *.deb; do cmp \"\$f\" \"../again/\$f\"; done"
debs1=("$WORK/$V1"/*.deb)
debs2=("$WORK/$V2"/*.deb)
[ ${#debs1[@]} = 2 ] || die "expected 2 packages in $WORK/$V1"

# ---------------------------------------------------------------- shellcheck
echo "# shellcheck"
check "shellcheck deb/build.sh" shellcheck -x "$DEB/build.sh"
check "shellcheck cross/package.sh" shellcheck "$REPO/cross/package.sh"
check "shellcheck deb/tests/run.sh" shellcheck -x "$TESTS/run.sh"
check "shellcheck tests/checks.sh" shellcheck "$REPO/tests/checks.sh"
for deb in "${debs1[@]}"; do
  name=$(basename "$deb" "_${V1}_amd64.deb")
  dpkg-deb -e "$deb" "$WORK/control-$name"
  for s in postinst prerm postrm; do
    check "shellcheck $name.$s" shellcheck -s sh "$WORK/control-$name/$s"
  done
done

# ---------------------------------------------------------------- lintian
echo "# lintian"
for deb in "${debs1[@]}"; do
  name=$(basename "$deb")
  out=$(lintian --fail-on error,warning --display-info "$deb" 2>&1)
  rc=$?
  if [ $rc = 0 ]; then ok "lintian $name: no error or warning"; else not_ok "lintian $name" "$out"; fi
  # Each override (with its reason, in deb/files/) still matches a tag.
  if grep -q 'unused-override\|mismatched-override' <<<"$out"; then
    not_ok "lintian $name: every override used" "$out"
  else
    ok "lintian $name: every override used"
  fi
done

# ---------------------------------------------------------------- dpkg cycle
# In its own mount namespace over overlays of /etc, /usr and /var.
unshare --mount --propagation private bash "$TESTS/run.sh" --cycle "$WORK"
rc=$?
if [ -s "$WORK/cycle-counts" ]; then
  read -r p f < "$WORK/cycle-counts"
  passed=$((passed + p))
  failed=$((failed + f))
fi
if [ ! -s "$WORK/cycle-counts" ]; then
  not_ok "the install cycle did not finish (exit $rc)"
fi

echo
echo "deb: $passed passed, $failed failed"
[ "$failed" = 0 ]
