#!/usr/bin/env bash
# Tests of the OpenWrt packaging (openwrt/): shellcheck on every shell
# script; the procd init scripts and the uci-defaults script run with
# stand-ins for procd, UCI, logger and the binaries; ipk.sh on dummy
# binaries; the feed Makefile's install sections run with a stand-in of
# the OpenWrt build system; luci-app-lispguard: its JSON and JavaScript
# checked, its rpcd plugin run as rpcd runs it against a live agent in a
# network namespace (lab.sh). Needs bash, GNU tar, gzip, GNU make, and for
# the lab root, ip, wireguard-go and the binaries (built with cargo when
# cargo is there); installs the packages shellcheck, busybox (for ash),
# jq and nodejs with apt-get if missing.
#
#   bash openwrt/tests/run.sh
set -uo pipefail

TESTS=$(cd "$(dirname "$0")" && pwd)
OPENWRT=$(dirname "$TESTS")
FILES=$OPENWRT/lispguard/files
STUBS=$TESTS/stubs

# shellcheck source-path=SCRIPTDIR/../.. source=tests/checks.sh
source "$OPENWRT/../tests/checks.sh"
# json_file FILE FILTER: FILE holds one JSON value, for which FILTER is
# true (jq 1.6's -e alone passes an empty file).
json_file() { jq -e --slurp "length == 1 and (.[0] | $2)" "$1"; }
# has FILE LINE: FILE has exactly this line.
has() { grep -qxF -- "$2" "$1"; }
hasnt() { ! grep -qxF -- "$2" "$1"; }

missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v busybox >/dev/null || missing+=(busybox)
command -v jq >/dev/null || missing+=(jq)
command -v node >/dev/null || missing+=(nodejs)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 &&
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; } ||
    echo "note: could not install ${missing[*]}"
fi

# The routers' shell is busybox ash; dash is the nearest stand-in.
if command -v busybox >/dev/null; then
  ASH=(busybox ash)
else
  ASH=(dash)
  echo "note: busybox missing, running the init scripts with dash"
fi

WORK=$(mktemp -d)
# shellcheck source-path=SCRIPTDIR source=lab.sh
source "$TESTS/lab.sh"
trap 'lab_stop; rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- shellcheck
echo "# shellcheck"
if command -v shellcheck >/dev/null; then
  for f in "$FILES"/*.init "$FILES"/*.uci-defaults "$TESTS"/procd-stubs.sh "$STUBS"/* \
    "$OPENWRT"/luci-app-lispguard/root/usr/libexec/rpcd/lispguard; do
    check "shellcheck -s sh ${f#"$OPENWRT"/}" shellcheck -s sh "$f"
  done
  for f in "$OPENWRT"/ipk.sh "$TESTS"/run.sh "$TESTS"/lab.sh; do
    check "shellcheck ${f#"$OPENWRT"/}" shellcheck -x "$f"
  done
else
  not_ok "shellcheck is not installed"
fi

# ---------------------------------------------------------------- init scripts
echo "# init scripts (with stand-ins for procd, UCI and the binaries)"

# run_init SCRIPT PROG FUNCTION...: source the init script as rc.common
# would, with PROG on $PATH, and call the functions; their output and
# return codes go to $WORK/out. Stand-ins record into $WORK/{calls,stub,log}.
run_init() {
  local script=$1 prog=$2
  shift 2
  : > "$WORK/calls"
  : > "$WORK/stub"
  : > "$WORK/log"
  # shellcheck disable=SC2016 # expanded by ash
  env CALLS="$WORK/calls" STUB_LOG="$WORK/stub" LOGGER_LOG="$WORK/log" \
    UCI_CONFIG_DIR="$WORK/uci" STUBS_DIR="$TESTS" PATH="$STUBS:$PATH" \
    "${ASH[@]}" -c '
      . "$STUBS_DIR/procd-stubs.sh"
      . "$1"; PROG=$2; shift 2
      for f in "$@"; do "$f"; echo "$f: rc=$?"; done
    ' sh "$FILES/$script" "$prog" "$@" > "$WORK/out" 2>&1
}

mkdir -p "$WORK/uci"
uci_agent() { # $1: enabled value, or "" for no enabled option
  {
    echo "config agent 'main'"
    [ -z "$1" ] || echo "	option enabled '$1'"
    echo "	option interface 'lg0'"
    echo "	option private_key 'generate'"
    echo "config map_server 'ms1'"
    echo "	option address '192.0.2.1'"
  } > "$WORK/uci/lispguard"
}

# agent, enabled, valid configuration
uci_agent 1
export STUB_CHECK_RC=0 STUB_CHECK_OUT=""
run_init lispguard.init lispguard start_service service_triggers
check "agent: start_service returns 0" has "$WORK/out" "start_service: rc=0"
check "agent: reads UCI package lispguard" has "$WORK/calls" "config_load lispguard"
check "agent: runs check-config on /etc/config/lispguard first" \
  has "$WORK/stub" "lispguard check-config /etc/config/lispguard"
check "agent: one instance" test "$(grep -c '^procd_open_instance' "$WORK/calls")" = 1
check "agent: command line" \
  has "$WORK/calls" "procd_set_param command lispguard run -c /etc/config/lispguard --syslog"
check "agent: respawn" grep -q '^procd_set_param respawn' "$WORK/calls"
check "agent: watches /etc/config/lispguard" \
  has "$WORK/calls" "procd_set_param file /etc/config/lispguard"
check "agent: stdout to log" has "$WORK/calls" "procd_set_param stdout 1"
check "agent: stderr to log" has "$WORK/calls" "procd_set_param stderr 1"
check "agent: reload sends SIGHUP (it starts again in place, tunnels kept)" \
  has "$WORK/calls" "procd_set_param reload_signal HUP"
check "agent: instance closed" has "$WORK/calls" "procd_close_instance"
check "agent: reload trigger on UCI package lispguard" \
  has "$WORK/calls" "procd_add_reload_trigger lispguard"
check "agent: init script's own PROG is /usr/bin/lispguard" \
  grep -qx 'PROG=/usr/bin/lispguard' "$FILES/lispguard.init"
check "agent: START and STOP set" \
  sh -c "grep -qx 'START=[0-9][0-9]' '$FILES/lispguard.init' && grep -qx 'STOP=[0-9][0-9]' '$FILES/lispguard.init' && grep -qx 'USE_PROCD=1' '$FILES/lispguard.init'"

# a token and no map-server yet: the agent enrols first, then starts
{
  echo "config agent 'main'"
  echo "	option enabled '1'"
  echo "	option token 'lgt2.AAAA'"
} > "$WORK/uci/lispguard"
export STUB_CHECK_OUT=""
run_init lispguard.init lispguard start_service
check "agent: a token and no map_server: lispguard join before check-config" \
  sh -c "grep -n . '$WORK/stub' | grep -q '^1:lispguard join lgt2.AAAA -c /etc/config/lispguard --no-start'"
check "agent: starts after the join" has "$WORK/calls" "procd_close_instance"
uci_agent 1
run_init lispguard.init lispguard start_service
check "agent: no token: no join" sh -c "! grep -q join '$WORK/stub'"

# warnings are logged, the agent still starts
export STUB_CHECK_OUT="warning: /etc/config/lispguard:9: agent.foo: unknown option, ignored"
run_init lispguard.init lispguard start_service
check "agent: check-config warnings logged at daemon.warn" \
  has "$WORK/log" "-t lispguard -p daemon.warn | $STUB_CHECK_OUT"
check "agent: starts despite warnings" has "$WORK/calls" "procd_close_instance"

# enabled '0', and no enabled option: nothing starts
for value in 0 ""; do
  uci_agent "$value"
  run_init lispguard.init lispguard start_service
  what="enabled '$value'"
  [ -n "$value" ] || what="no enabled option"
  check "agent, $what: nothing started" sh -c "! grep -q procd_open_instance '$WORK/calls'"
  check "agent, $what: check-config not run" test ! -s "$WORK/stub"
  check "agent, $what: start_service returns 0" has "$WORK/out" "start_service: rc=0"
done

# the shipped default: disabled
cp "$FILES/lispguard.config" "$WORK/uci/lispguard"
run_init lispguard.init lispguard start_service
check "agent, shipped /etc/config/lispguard: nothing started" \
  sh -c "! grep -q procd_open_instance '$WORK/calls'"

# check-config fails: nothing starts, errors logged
uci_agent 1
export STUB_CHECK_RC=1 STUB_CHECK_OUT="/etc/config/lispguard:4: agent.listen_port: not a port"
run_init lispguard.init lispguard start_service
check "agent, bad config: nothing started" sh -c "! grep -q procd_open_instance '$WORK/calls'"
check "agent, bad config: start_service fails" has "$WORK/out" "start_service: rc=1"
check "agent, bad config: error logged at daemon.err" \
  has "$WORK/log" "-t lispguard -p daemon.err | $STUB_CHECK_OUT"
check "agent, bad config: error printed" grep -qF "$STUB_CHECK_OUT" "$WORK/out"

# reload with a bad config keeps the running agent (start is not called)
run_init lispguard.init lispguard reload_service
check "agent, reload with bad config: refused" has "$WORK/out" "reload_service: rc=1"
check "agent, reload with bad config: running agent kept" sh -c "! grep -q '^start' '$WORK/calls'"
export STUB_CHECK_RC=0 STUB_CHECK_OUT=""
run_init lispguard.init lispguard reload_service
check "agent, reload with good config: start (procd sends SIGHUP on change)" has "$WORK/calls" "start"
check "agent, reload with good config: instance" has "$WORK/calls" "procd_close_instance"
uci_agent 0
run_init lispguard.init lispguard reload_service
check "agent, reload when disabled: start with no instance (procd stops it)" \
  sh -c "grep -qx start '$WORK/calls' && ! grep -q procd_open_instance '$WORK/calls'"

# map-server
uci_ms() { # $1 enabled, $2 config path or ""
  {
    echo "config mapserver 'main'"
    echo "	option enabled '$1'"
    [ -z "$2" ] || echo "	option config '$2'"
  } > "$WORK/uci/lispguard-mapserver"
}
uci_ms 1 ""
run_init lispguard-mapserver.init lispguard-mapserver start_service service_triggers
check "mapserver: start_service returns 0" has "$WORK/out" "start_service: rc=0"
check "mapserver: reads UCI package lispguard-mapserver" \
  has "$WORK/calls" "config_load lispguard-mapserver"
check "mapserver: runs check-config on the TOML file first" \
  has "$WORK/stub" "lispguard-mapserver check-config /etc/lispguard/mapserver.toml"
check "mapserver: command line" has "$WORK/calls" \
  "procd_set_param command lispguard-mapserver run -c /etc/lispguard/mapserver.toml --syslog"
check "mapserver: respawn" grep -q '^procd_set_param respawn' "$WORK/calls"
check "mapserver: reload sends SIGHUP" has "$WORK/calls" "procd_set_param reload_signal HUP"
check "mapserver: watches its TOML file" \
  has "$WORK/calls" "procd_set_param file /etc/lispguard/mapserver.toml"
check "mapserver: stdout and stderr to log" \
  sh -c "grep -qx 'procd_set_param stdout 1' '$WORK/calls' && grep -qx 'procd_set_param stderr 1' '$WORK/calls'"
check "mapserver: reload trigger on UCI package lispguard-mapserver" \
  has "$WORK/calls" "procd_add_reload_trigger lispguard-mapserver"
check "mapserver: init script's own PROG is /usr/bin/lispguard-mapserver" \
  grep -qx 'PROG=/usr/bin/lispguard-mapserver' "$FILES/lispguard-mapserver.init"

uci_ms 1 /srv/ms.toml
run_init lispguard-mapserver.init lispguard-mapserver start_service
check "mapserver: option config is used" has "$WORK/calls" \
  "procd_set_param command lispguard-mapserver run -c /srv/ms.toml --syslog"

uci_ms 0 ""
run_init lispguard-mapserver.init lispguard-mapserver start_service
check "mapserver, enabled '0': nothing started" sh -c "! grep -q procd_open_instance '$WORK/calls'"
check "mapserver, enabled '0': check-config not run" test ! -s "$WORK/stub"

cp "$FILES/lispguard-mapserver.config" "$WORK/uci/lispguard-mapserver"
run_init lispguard-mapserver.init lispguard-mapserver start_service
check "mapserver, shipped /etc/config/lispguard-mapserver: nothing started" \
  sh -c "! grep -q procd_open_instance '$WORK/calls'"

uci_ms 1 ""
export STUB_CHECK_RC=1 STUB_CHECK_OUT="/etc/lispguard/mapserver.toml:3: wireguard.listen_port: bad"
run_init lispguard-mapserver.init lispguard-mapserver start_service reload_service
check "mapserver, bad config: nothing started" sh -c "! grep -q procd_open_instance '$WORK/calls'"
check "mapserver, bad config: start_service fails" has "$WORK/out" "start_service: rc=1"
check "mapserver, bad config: error logged at daemon.err" \
  has "$WORK/log" "-t lispguard-mapserver -p daemon.err | $STUB_CHECK_OUT"
check "mapserver, reload with bad config: refused, not sent" \
  sh -c "grep -qx 'reload_service: rc=1' '$WORK/out' && ! grep -q '^start' '$WORK/calls'"
export STUB_CHECK_RC=0 STUB_CHECK_OUT=""

# ---------------------------------------------------------------- uci-defaults
echo "# uci-defaults"
run_defaults() {
  : > "$WORK/log"
  env LOGGER_LOG="$WORK/log" STUB_LOG=/dev/null PATH="$STUBS:$PATH" \
    UCI_GET_lispguard_main_private_key_file="$WORK/keys/agent.key" \
    "${ASH[@]}" "$FILES/lispguard.uci-defaults" > "$WORK/out" 2>&1
}
rm -rf "$WORK/keys"
STUB_KEY=c2VjcmV0 run_defaults
rc=$?
check "uci-defaults: exits 0" test "$rc" = 0
check "uci-defaults: key created with genkey" test "$(cat "$WORK/keys/agent.key" 2>&1)" = c2VjcmV0
check "uci-defaults: key mode 0600" test "$(stat -c %a "$WORK/keys/agent.key" 2>&1)" = 600
check "uci-defaults: key directory mode 0700" test "$(stat -c %a "$WORK/keys" 2>&1)" = 700
check "uci-defaults: public key logged" \
  has "$WORK/log" "-t lispguard | agent public key: PUB(c2VjcmV0)"
STUB_KEY=b3RoZXI= run_defaults
check "uci-defaults: an existing key is kept" test "$(cat "$WORK/keys/agent.key")" = c2VjcmV0
rm -rf "$WORK/keys"
STUB_KEY=fail run_defaults
rc=$?
check "uci-defaults: genkey failure still exits 0" test "$rc" = 0
check "uci-defaults: genkey failure leaves no key" test ! -e "$WORK/keys/agent.key"
check "uci-defaults: genkey failure logged" grep -q 'daemon.err | could not create' "$WORK/log"
check "uci-defaults: default key path /etc/lispguard/agent.key" \
  grep -qF "KEY=\${KEY:-/etc/lispguard/agent.key}" "$FILES/lispguard.uci-defaults"

# ---------------------------------------------------------------- ipk.sh
echo "# ipk.sh"
BIN=$WORK/bin
mkdir -p "$BIN" "$WORK/dist/mips-unknown-linux-musl" "$WORK/dist/aarch64-unknown-linux-musl" \
  "$WORK/dist/riscv64gc-unknown-linux-musl"
for b in lispguard lispguard-mapserver; do
  printf '#!/bin/sh\necho %s\n' "$b" > "$BIN/$b"
  chmod 0644 "$BIN/$b" # ipk.sh must make it 0755
  cp "$BIN/$b" "$WORK/dist/mips-unknown-linux-musl/"
  cp "$BIN/$b" "$WORK/dist/riscv64gc-unknown-linux-musl/"
done
cp "$BIN/lispguard" "$WORK/dist/aarch64-unknown-linux-musl/"
echo "never ship me" > "$BIN/agent.key"
export SOURCE_DATE_EPOCH=1700000000

check "ipk.sh: builds both packages" "$OPENWRT/ipk.sh" "$BIN" mipsel_24kc 0.1.0-1 "$WORK/out1"
check "ipk.sh: same input, same bytes" "$OPENWRT/ipk.sh" "$BIN" mipsel_24kc 0.1.0-1 "$WORK/out2"
for pkg in lispguard lispguard-mapserver; do
  f=${pkg}_0.1.0-1_mipsel_24kc.ipk
  check "$pkg: deterministic" cmp "$WORK/out1/$f" "$WORK/out2/$f"
done

# inspect PKG: unpack the outer archive and both inner ones into $WORK/x/PKG
inspect() {
  local pkg=$1 ipk=$2 d=$WORK/x/$1
  rm -rf "$d"
  mkdir -p "$d/outer" "$d/control" "$d/data"
  tar -tvzf "$ipk" > "$d/outer.list" &&
    tar -xzf "$ipk" -C "$d/outer" &&
    tar -xzf "$d/outer/control.tar.gz" -C "$d/control" &&
    tar -tvzf "$d/outer/data.tar.gz" --full-time --numeric-owner > "$d/data.list" &&
    tar -tzf "$d/outer/data.tar.gz" | LC_ALL=C sort > "$d/data.paths" &&
    tar -xzf "$d/outer/data.tar.gz" -C "$d/data"
}
# mode_of PKG PATH: the permissions of PATH in the data tar, as tar lists them
mode_of() { awk -v p="./$2" '$NF == p { print $1 }' "$WORK/x/$1/data.list"; }

for pkg in lispguard lispguard-mapserver; do
  ipk=$WORK/out1/${pkg}_0.1.0-1_mipsel_24kc.ipk
  d=$WORK/x/$pkg
  if ! inspect "$pkg" "$ipk"; then
    not_ok "$pkg: unpack"
    continue
  fi
  check "$pkg: outer archive is gzip" test "$(head -c 2 "$ipk" | od -An -tx1 | tr -d ' ')" = 1f8b
  check "$pkg: outer members ./debian-binary ./data.tar.gz ./control.tar.gz in order" \
    test "$(tar -tzf "$ipk" | tr '\n' ' ')" = "./debian-binary ./data.tar.gz ./control.tar.gz "
  check "$pkg: outer members owned 0/0" sh -c "! awk '\$2 != \"0/0\"' '$d/outer.list' | grep -q ."
  check "$pkg: debian-binary is 2.0" test "$(cat "$d/outer/debian-binary")" = 2.0
  check "$pkg: inner archives are gzip" sh -c \
    "gzip -t '$d/outer/data.tar.gz' && gzip -t '$d/outer/control.tar.gz'"
  c=$d/control/control
  check "$pkg: control Package" has "$c" "Package: $pkg"
  check "$pkg: control Version" has "$c" "Version: 0.1.0-1"
  check "$pkg: control Architecture" has "$c" "Architecture: mipsel_24kc"
  check "$pkg: control License" has "$c" "License: MIT OR Apache-2.0"
  check "$pkg: control Section" has "$c" "Section: net"
  check "$pkg: control Source" grep -q '^Source: ' "$c"
  check "$pkg: control Maintainer" grep -q '^Maintainer: .' "$c"
  check "$pkg: control Description" grep -q '^Description: .' "$c"
  check "$pkg: control Installed-Size is the data tar's size" has "$c" \
    "Installed-Size: $(gzip -dc "$d/outer/data.tar.gz" | wc -c)"
  check "$pkg: control and scripts" test "$(cd "$d/control" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | tr '\n' ' ')" = \
    "conffiles control postinst prerm "
  check "$pkg: postinst runs default_postinst" grep -qxF "default_postinst \"\$0\" \"\$@\"" "$d/control/postinst"
  check "$pkg: prerm runs default_prerm" grep -qxF "default_prerm \"\$0\" \"\$@\"" "$d/control/prerm"
  check "$pkg: postinst, prerm executable" test -x "$d/control/postinst" -a -x "$d/control/prerm"
  check "$pkg: every data entry owned 0/0" sh -c "! awk '\$2 != \"0/0\"' '$d/data.list' | grep -q ."
  check "$pkg: every mtime is SOURCE_DATE_EPOCH" sh -c \
    "! awk '\$4\" \"\$5 != \"$(date -u -d @"$SOURCE_DATE_EPOCH" '+%Y-%m-%d %H:%M:%S')\"' '$d/data.list' | grep -q ." 
  check "$pkg: no key shipped" sh -c "! grep -q '\\.key\$' '$d/data.paths'"
  check "$pkg: binary mode 0755" test "$(mode_of "$pkg" "usr/bin/$pkg")" = -rwxr-xr-x
  check "$pkg: init script mode 0755" test "$(mode_of "$pkg" "etc/init.d/$pkg")" = -rwxr-xr-x
  check "$pkg: /etc/config/$pkg mode 0600" test "$(mode_of "$pkg" "etc/config/$pkg")" = -rw-------
  check "$pkg: binary is the given one" cmp "$d/data/usr/bin/$pkg" "$BIN/$pkg"
  check "$pkg: init script is files/$pkg.init" cmp "$d/data/etc/init.d/$pkg" "$FILES/$pkg.init"
done

# Depends and the data paths of each package
c=$WORK/x/lispguard/control/control
check "lispguard: Depends kmod-wireguard, kmod-tun" has "$c" "Depends: kmod-wireguard, kmod-tun"
check "lispguard: conffiles" test "$(cat "$WORK/x/lispguard/control/conffiles")" = /etc/config/lispguard
check "lispguard: data paths" diff - "$WORK/x/lispguard/data.paths" <<'PATHS'
./
./etc/
./etc/config/
./etc/config/lispguard
./etc/init.d/
./etc/init.d/lispguard
./etc/uci-defaults/
./etc/uci-defaults/90-lispguard
./lib/
./lib/upgrade/
./lib/upgrade/keep.d/
./lib/upgrade/keep.d/lispguard
./usr/
./usr/bin/
./usr/bin/lispguard
PATHS
check "lispguard: sysupgrade keeps the key" \
  test "$(cat "$WORK/x/lispguard/data/lib/upgrade/keep.d/lispguard")" = /etc/lispguard/agent.key
check "lispguard: default config is files/lispguard.config" \
  cmp "$WORK/x/lispguard/data/etc/config/lispguard" "$FILES/lispguard.config"
check "lispguard: uci-defaults mode 0755" \
  test "$(mode_of lispguard etc/uci-defaults/90-lispguard)" = -rwxr-xr-x

c=$WORK/x/lispguard-mapserver/control/control
check "lispguard-mapserver: Depends kmod-wireguard" has "$c" "Depends: kmod-wireguard"
check "lispguard-mapserver: conffiles" diff - "$WORK/x/lispguard-mapserver/control/conffiles" <<'CONF'
/etc/config/lispguard-mapserver
/etc/lispguard/mapserver.toml
CONF
check "lispguard-mapserver: data paths" diff - "$WORK/x/lispguard-mapserver/data.paths" <<'PATHS'
./
./etc/
./etc/config/
./etc/config/lispguard-mapserver
./etc/init.d/
./etc/init.d/lispguard-mapserver
./etc/lispguard/
./etc/lispguard/mapserver.toml
./lib/
./lib/upgrade/
./lib/upgrade/keep.d/
./lib/upgrade/keep.d/lispguard-mapserver
./usr/
./usr/bin/
./usr/bin/lispguard-mapserver
PATHS
check "lispguard-mapserver: mapserver.toml mode 0600" \
  test "$(mode_of lispguard-mapserver etc/lispguard/mapserver.toml)" = -rw-------
check "lispguard-mapserver: sysupgrade keeps the key" test \
  "$(cat "$WORK/x/lispguard-mapserver/data/lib/upgrade/keep.d/lispguard-mapserver")" = /etc/lispguard/mapserver.key

# postinst follows OpenWrt: nothing with IPKG_NO_SCRIPT=1, else
# default_postinst from $IPKG_INSTROOT/lib/functions.sh
root=$WORK/instroot
mkdir -p "$root/lib"
printf 'default_postinst() { echo "default_postinst $*"; }\ndefault_prerm() { echo "default_prerm $*"; }\n' \
  > "$root/lib/functions.sh"
postinst=$WORK/x/lispguard/control/postinst
pi_out=$(env IPKG_INSTROOT="$root" "${ASH[@]}" "$postinst" configure 2>&1)
check "postinst: calls default_postinst" test "$pi_out" = "default_postinst $postinst configure"
pi_out=$(env IPKG_NO_SCRIPT=1 IPKG_INSTROOT="$root" "${ASH[@]}" "$postinst" 2>&1)
check "postinst: IPKG_NO_SCRIPT=1 does nothing" test -z "$pi_out"
pi_out=$(env IPKG_INSTROOT="$root" "${ASH[@]}" "$WORK/x/lispguard/control/prerm" remove 2>&1)
check "prerm: calls default_prerm" test "$pi_out" = "default_prerm $WORK/x/lispguard/control/prerm remove"
check "postinst: no /lib/functions.sh, exits 0" env IPKG_INSTROOT="$WORK/nowhere" "${ASH[@]}" "$postinst"

# --all
check "ipk.sh --all" "$OPENWRT/ipk.sh" --all "$WORK/dist" 0.2.0-1 "$WORK/all"
check "--all: mips-unknown-linux-musl -> mips_24kc, both packages" test -f \
  "$WORK/all/lispguard_0.2.0-1_mips_24kc.ipk" -a -f "$WORK/all/lispguard-mapserver_0.2.0-1_mips_24kc.ipk"
check "--all: aarch64-unknown-linux-musl -> aarch64_cortex-a53, only the agent there" sh -c \
  "test -f '$WORK/all/lispguard_0.2.0-1_aarch64_cortex-a53.ipk' && test ! -e '$WORK/all/lispguard-mapserver_0.2.0-1_aarch64_cortex-a53.ipk'"
check "--all: unknown target skipped" test "$(find "$WORK/all" -name '*.ipk' | wc -l)" = 3
check "--all: Architecture of the mips package" sh -c \
  "tar -xzOf '$WORK/all/lispguard_0.2.0-1_mips_24kc.ipk' ./control.tar.gz | tar -xzO ./control | grep -qx 'Architecture: mips_24kc'"
for t in mipsel-unknown-linux-musl:mipsel_24kc armv7-unknown-linux-musleabihf:arm_cortex-a9_vfpv3-d16 \
  x86_64-unknown-linux-musl:x86_64; do
  rm -rf "$WORK/one" && mkdir -p "$WORK/one/${t%%:*}" && cp "$BIN/lispguard" "$WORK/one/${t%%:*}/"
  check "--all: ${t%%:*} -> ${t#*:}" sh -c \
    "'$OPENWRT/ipk.sh' --all '$WORK/one' 1-1 '$WORK/one-out' >/dev/null && test -f '$WORK/one-out/lispguard_1-1_${t#*:}.ipk'"
done

check "ipk.sh: wrong usage exits 2" sh -c "'$OPENWRT/ipk.sh' a b 2>/dev/null; test \$? = 2"
check "ipk.sh: missing binary dir fails" sh -c "! '$OPENWRT/ipk.sh' '$WORK/none' x86_64 1 '$WORK/o' 2>/dev/null"
mkdir -p "$WORK/empty"
check "ipk.sh: dir without binaries fails" sh -c "! '$OPENWRT/ipk.sh' '$WORK/empty' x86_64 1 '$WORK/o' 2>/dev/null"
check "ipk.sh: bad version refused" sh -c "! '$OPENWRT/ipk.sh' '$BIN' x86_64 '1 2' '$WORK/o' 2>/dev/null"

# ---------------------------------------------------------------- Makefile
echo "# feed Makefile (with a stand-in of the OpenWrt build system)"
if command -v make >/dev/null; then
  top=$WORK/top
  mkdir -p "$top/include" "$top/feeds/packages/lang/rust"
  cp "$TESTS/buildroot-stub.mk" "$top/rules.mk"
  : > "$top/include/package.mk"
  : > "$top/feeds/packages/lang/rust/rust-package.mk"
  mk() {
    make --no-print-directory -C "$OPENWRT/lispguard" TOPDIR="$top" INCLUDE_DIR="$top/include" \
      PKG_BUILD_DIR="$WORK/build" PKG_INSTALL_DIR="$WORK/pkginstall" "$@"
  }
  check "Makefile: parses" mk -s stub-info
  mk -s stub-info > "$WORK/mkinfo" 2>&1
  version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$OPENWRT/../Cargo.toml" | head -n 1)
  check "Makefile: PKG_VERSION is the workspace's ($version)" has "$WORK/mkinfo" "PKG_VERSION=$version"
  check "Makefile: PKG_LICENSE" has "$WORK/mkinfo" "PKG_LICENSE=MIT OR Apache-2.0"
  check "Makefile: packages lispguard lispguard-mapserver" has "$WORK/mkinfo" "PACKAGES=lispguard lispguard-mapserver"
  check "Makefile: lispguard DEPENDS" has "$WORK/mkinfo" "DEPENDS(lispguard)=@RUST +kmod-wireguard +kmod-tun"
  check "Makefile: lispguard-mapserver DEPENDS" has "$WORK/mkinfo" "DEPENDS(lispguard-mapserver)=@RUST +kmod-wireguard +libsqlite3"
  check "Makefile: lispguard conffiles" has "$WORK/mkinfo" \
    "CONFFILES(lispguard)=/etc/config/lispguard /etc/lispguard/agent.key"
  check "Makefile: lispguard-mapserver conffiles" has "$WORK/mkinfo" \
    "CONFFILES(lispguard-mapserver)=/etc/config/lispguard-mapserver /etc/lispguard/mapserver.toml /etc/lispguard/mapserver.key"
  check "Makefile: compiles agent (UCI only) and mapserver (OpenWrt's SQLite) with the feed's cargo" sh -c \
    "grep -qx 'COMPILE=cargo:agent\\[--no-default-features\\] cargo:mapserver\\[--no-default-features\\]' '$WORK/mkinfo'"
  check "Makefile: mips gets --cfg fix_y2038" sh -c \
    "make --no-print-directory -s -C '$OPENWRT/lispguard' TOPDIR='$top' INCLUDE_DIR='$top/include' ARCH=mipsel stub-info | grep -qx 'CARGO_RUSTFLAGS=--cfg fix_y2038'"
  check "Makefile: the map-server links the SDK's libsqlite3" sh -c \
    "grep -q '^CARGO_PKG_VARS=.*SQLITE3_LIB_DIR=.*/usr/lib' '$WORK/mkinfo'"
  check "Makefile: Build/Prepare copies the workspace" sh -c \
    "make --no-print-directory -s -C '$OPENWRT/lispguard' TOPDIR='$top' INCLUDE_DIR='$top/include' PKG_BUILD_DIR='$WORK/build' stub-prepare && test -f '$WORK/build/Cargo.lock' && test -f '$WORK/build/agent/Cargo.toml' && test -f '$WORK/build/mapserver/Cargo.toml'"
  # the install sections, with the binaries from the dummy dir
  mkdir -p "$WORK/pkginstall/bin" && cp "$BIN/lispguard" "$BIN/lispguard-mapserver" "$WORK/pkginstall/bin/"
  for pkg in lispguard lispguard-mapserver; do
    check "Makefile: Package/$pkg/install runs" mk -s stub-install PKG="$pkg" DEST="$WORK/mkroot/$pkg"
    # ipk.sh ships the same tree, plus the keep.d file OpenWrt generates
    # from conffiles that are not in the package (the key)
    { echo ./; cd "$WORK/mkroot/$pkg" && find . -mindepth 1 \( -type d -printf './%P/\n' -o -printf './%P\n' \); } |
      LC_ALL=C sort > "$WORK/mk.$pkg.paths"
    grep -v '^./lib/' "$WORK/x/$pkg/data.paths" > "$WORK/ipk.$pkg.paths"
    check "Makefile and ipk.sh install the same files for $pkg" diff "$WORK/ipk.$pkg.paths" "$WORK/mk.$pkg.paths"
    check "Makefile: $pkg binary 0755" test "$(stat -c %a "$WORK/mkroot/$pkg/usr/bin/$pkg")" = 755
    check "Makefile: /etc/config/$pkg 0600" test "$(stat -c %a "$WORK/mkroot/$pkg/etc/config/$pkg")" = 600
  done
else
  not_ok "make is not installed"
fi

# ---------------------------------------------------------------- LuCI app
echo "# luci-app-lispguard"
LUCI=$OPENWRT/luci-app-lispguard
PLUGIN=$LUCI/root/usr/libexec/rpcd/lispguard

while IFS= read -r f; do
  check "valid JSON: ${f#"$OPENWRT"/}" json_file "$f" 'type == "object"'
done < <(find "$LUCI" -name '*.json' | LC_ALL=C sort)
check "acl: reads the rpcd object lispguard (status) and UCI lispguard, writes UCI lispguard" \
  json_file "$LUCI/root/usr/share/rpcd/acl.d/luci-app-lispguard.json" \
  '."luci-app-lispguard" | .read.ubus.lispguard == ["status"] and .read.uci == ["lispguard"] and .write.uci == ["lispguard"]'
check "menu: the views lispguard/status and lispguard/settings, under the app's ACL" \
  json_file "$LUCI/root/usr/share/luci/menu.d/luci-app-lispguard.json" \
  '[.[].action.path // empty] == ["lispguard/status", "lispguard/settings"] and .["admin/vpn/lispguard"].depends.acl == ["luci-app-lispguard"]'
for v in status settings; do
  check "menu: view lispguard/$v is there" test -f "$LUCI/htdocs/luci-static/resources/view/lispguard/$v.js"
done

# A LuCI view is a function body (its top level ends in `return
# view.extend(...)`), which LuCI's loader wraps in a function: checked the
# same way, wrapped.
while IFS= read -r f; do
  { echo '(function() {'; cat "$f"; echo '});'; } > "$WORK/view.js"
  check "node --check ${f#"$OPENWRT"/} (wrapped in a function, as LuCI loads it)" node --check "$WORK/view.js"
done < <(find "$LUCI" -name '*.js' | LC_ALL=C sort)

check "plugin: executable" test -x "$PLUGIN"

# The settings page, run in node with stand-ins for LuCI (luci-views.js):
# the file it writes with every option filled is one the agent takes
# without an error or a warning (an unknown option would be one), and it
# has every option the shipped /etc/config/lispguard mentions.
VIEWS=$LUCI/htdocs/luci-static/resources/view/lispguard
LAB_BIN=${LISPGUARD_BIN:-$OPENWRT/../target/debug}
if command -v cargo >/dev/null && [ -z "${LISPGUARD_BIN:-}" ]; then
  (cd "$OPENWRT/.." && cargo build -q --locked --bins -p agent -p mapserver) ||
    not_ok "cargo build of lispguard and lispguard-mapserver"
fi
samples='{"enabled": "1", "agent.control_address": "100.64.0.2", "overlay": "10.0.0.0/8",
  "address": "192.0.2.1", "public_key": "nl4ahiw4qqiXoEqMuiMuZMwNWNLYndS5yThDqErM0X4=",
  "map_server.control_address": "100.64.0.1", "key": "site key", "prefix": "10.1.0.0/24"}'
check "settings page: renders (node, LuCI stand-ins)" sh -c \
  "node '$TESTS/luci-views.js' settings '$VIEWS' '$samples' > '$WORK/settings.uci'"
check "settings page: what it writes, lispguard check-config: ok, no warning" sh -c \
  "out=\$('$LAB_BIN/lispguard' check-config '$WORK/settings.uci' 2>&1); [ \"\$out\" = '$WORK/settings.uci: ok' ] || { echo \"\$out\"; false; }"
while IFS= read -r option; do
  # private_key 'generate' is what an unset private_key_file means
  [ "$option" = private_key ] && continue
  check "settings page: has $option (files/lispguard.config)" \
    grep -qE "^[[:space:]]*(option|list) $option " "$WORK/settings.uci"
done < <(sed -n 's/^[#[:space:]]*\(option\|list\) \([a-z_]*\) .*/\2/p' "$FILES/lispguard.config" | sort -u)

# Its Makefile, with stand-ins for rules.mk and LuCI's luci.mk
if command -v make >/dev/null; then
  mkdir -p "$top/feeds/luci"
  cp "$TESTS/luci-stub.mk" "$top/feeds/luci/luci.mk"
  make --no-print-directory -s -C "$LUCI" TOPDIR="$top" stub-luci > "$WORK/luciinfo" 2>&1
  check "luci Makefile: depends on luci-base and lispguard" has "$WORK/luciinfo" "LUCI_DEPENDS=+luci-base +lispguard"
  check "luci Makefile: architecture all" has "$WORK/luciinfo" "LUCI_PKGARCH=all"
  check "luci Makefile: PKG_VERSION is the workspace's ($version)" has "$WORK/luciinfo" "PKG_VERSION=$version"
fi

# ipk.sh --luci
check "ipk.sh --luci" "$OPENWRT/ipk.sh" --luci 0.1.0-1 "$WORK/luci"
if inspect luci-app-lispguard "$WORK/luci/luci-app-lispguard_0.1.0-1_all.ipk"; then
  c=$WORK/x/luci-app-lispguard/control/control
  check "luci ipk: Architecture all" has "$c" "Architecture: all"
  check "luci ipk: Depends luci-base, lispguard" has "$c" "Depends: luci-base, lispguard"
  check "luci ipk: Section luci" has "$c" "Section: luci"
  check "luci ipk: as luci.mk installs it: htdocs/ in /www, root/ in /" diff \
    <(cd "$LUCI" && find htdocs root -type f | sed 's|^htdocs/|./www/|; s|^root/|./|' | LC_ALL=C sort) \
    <(grep -v '/$' "$WORK/x/luci-app-lispguard/data.paths")
  check "luci ipk: the plugin 0755" test "$(mode_of luci-app-lispguard usr/libexec/rpcd/lispguard)" = -rwxr-xr-x
  check "luci ipk: the views 0644" test "$(mode_of luci-app-lispguard www/luci-static/resources/view/lispguard/status.js)" = -rw-r--r--
  check "luci ipk: postinst reloads rpcd on a running router" grep -qxF '	killall -HUP rpcd 2>/dev/null' \
    "$WORK/x/luci-app-lispguard/control/postinst"
  check "luci ipk: no conffiles" test ! -e "$WORK/x/luci-app-lispguard/control/conffiles"
else
  not_ok "luci ipk: unpack"
fi

# The rpcd plugin as rpcd runs it: `list`, and `call METHOD` with the
# arguments on stdin; in the router's shell, with its tools (busybox's
# applets, when busybox is there), uci (the stand-in) and lispguard.
mkdir -p "$WORK/rpcd-path" "$WORK/busybox"
ln -sf "$STUBS/uci" "$WORK/rpcd-path/uci"
ln -sf "$LAB_BIN/lispguard" "$WORK/rpcd-path/lispguard"
rpcd_path=$WORK/rpcd-path:/usr/bin:/bin
if command -v busybox >/dev/null && busybox --install -s "$WORK/busybox"; then
  rpcd_path=$WORK/rpcd-path:$WORK/busybox
fi
# rpcd_plugin SOCKET ARGS...: the plugin's output, in $WORK/rpcd.json
rpcd_plugin() {
  local socket=$1
  shift
  printf '{}' | env -i PATH="$rpcd_path" UCI_GET_lispguard_main_status_socket="$socket" \
    "$(command -v "${ASH[0]}")" "${ASH[@]:1}" "$PLUGIN" "$@" > "$WORK/rpcd.json"
}
json() { json_file "$WORK/rpcd.json" "$1"; }

rpcd_plugin "" list
check "plugin list: valid JSON, the method status without arguments" json '. == {"status": {}}'

lab_missing=""
[ "$(id -u)" = 0 ] || lab_missing="root"
for tool in ip wireguard-go "$LAB_BIN/lispguard" "$LAB_BIN/lispguard-mapserver"; do
  command -v "$tool" >/dev/null || lab_missing="$lab_missing $tool"
done

if [ -n "$lab_missing" ]; then
  not_ok "rpcd plugin against a live agent: needs$lab_missing"
else
  rpcd_plugin "$WORK/nowhere.sock" call status < /dev/null
  check "plugin call status, no agent: valid JSON with an error" \
    json '.error | test("cannot reach the agent at .*nowhere.sock")'
  rpcd_plugin "$WORK/no\"w\\here.sock" call status
  check "plugin call status, no agent, a socket path with \" and \\: valid JSON, the path in the error" \
    json '.error | contains("no\"w\\here.sock")'
  rpcd_plugin "" call status
  check "plugin call status, status_socket unset: the agent's default /run/lispguard.sock" \
    json '.error // "" | test("/run/lispguard.sock") or (.map_servers | type == "array")'
  rm -f "$WORK/rpcd-path/lispguard"
  rpcd_plugin "$WORK/nowhere.sock" call status
  check "plugin call status, no lispguard binary: valid JSON with an error" json '.error | type == "string"'
  ln -sf "$LAB_BIN/lispguard" "$WORK/rpcd-path/lispguard"
  rpcd_plugin "" call nosuch
  check "plugin call of an unknown method: valid JSON with an error" json '.error == "unknown method nosuch"'

  mkdir -p "$WORK/lab"
  if lab_start "$WORK/lab"; then
    ok "lab: a map-server and agents A and B registered"
    # A's first contact with B: B becomes A's peer
    check "lab: A pings B's EID with cold caches" \
      ip netns exec "${LAB_NS[1]}" ping -c 1 -w 20 -I 10.1.0.1 10.2.0.2
    rpcd_plugin "$WORK/lab/a.sock" call status
    check "plugin call status: valid JSON, no error" json 'has("error") | not'
    check "plugin call status: A registered with the map-server 100.64.0.1" \
      json '.map_servers == [.map_servers[0]] and .map_servers[0].control_address == "100.64.0.1" and .map_servers[0].registered_seconds_ago != null'
    check "plugin call status: A's RLOC" json '.rlocs | index("172.31.2.2")'
    b_public=$("$LAB_BIN/lispguard" pubkey < "$WORK/lab/b.key")
    check "plugin call status: the peer B, its key, EID and endpoint" json \
      ".peers | length == 1 and .[0].public_key == \"$b_public\" and (.[0].eid_prefixes | index(\"10.2.0.2/32\")) and .[0].endpoint == \"172.31.3.2:51820\""
    check "plugin call status: B's handshake and bytes" json \
      '.peers[0].last_handshake_unix_ms > 0 and .peers[0].rx_bytes > 0 and .peers[0].tx_bytes > 0'
    node "$TESTS/luci-views.js" status "$VIEWS" < "$WORK/rpcd.json" > "$WORK/page.json"
    check "status page: the map-server, registered" json_file "$WORK/page.json" \
      '.error == null and (.map_servers | length == 1) and .map_servers[0][0] == "100.64.0.1" and (.map_servers[0][1] | test("^registered"))'
    check "status page: the peer B: EID, endpoint, handshake, bytes" json_file "$WORK/page.json" \
      '.peers | length == 1 and .[0][0] == "10.2.0.2/32" and .[0][1] == "172.31.3.2:51820" and (.[0][3] | test("ago$")) and .[0][4] != "0"'
    check "plugin call status: what \`lispguard status --json\` prints" sh -c \
      "'$LAB_BIN/lispguard' status --json -s '$WORK/lab/a.sock' | jq -e --slurp '.[0].peers[0].public_key == \"$b_public\"'"

    lab_stop_one a
    rpcd_plugin "$WORK/lab/a.sock" call status
    check "plugin call status, agent stopped: valid JSON with an error" \
      json '.error | test("cannot reach the agent at .*a.sock")'
    node "$TESTS/luci-views.js" status "$VIEWS" < "$WORK/rpcd.json" > "$WORK/page.json"
    check "status page, agent stopped: says the agent does not answer, and why" json_file "$WORK/page.json" \
      '(.error | test("does not answer: .*cannot reach the agent")) and .peers == []'
  else
    not_ok "lab: a map-server and agents A and B registered" "$(tail -n 5 "$WORK"/lab/*.log 2>&1)"
  fi
  lab_stop
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
