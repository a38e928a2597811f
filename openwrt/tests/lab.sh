# A small lab for the rpcd plugin's test, sourced by openwrt/tests/run.sh:
# a map-server and two agents (mobile nodes A and B), each in a network
# namespace of its own, the real binaries with wireguard-go. The
# map-server's namespace routes between the agents' underlay links:
#
#   A 172.31.2.2 --- 172.31.2.1 [ms 100.64.0.1] 172.31.3.1 --- 172.31.3.2 B
#
# Agent A reads a UCI file (/etc/config/lispguard's format), B a TOML one.
# EIDs: A 10.1.0.1/32, B 10.2.0.2/32, instance 1000. Every name carries
# this shell's pid: runs side by side never share a namespace, an interface
# (wireguard-go's UAPI sockets are shared by all namespaces) or a file.
# Needs root, ip (iproute2), wireguard-go; $LAB_BIN: lispguard and
# lispguard-mapserver.
# shellcheck shell=bash

LAB_ID=$$
LAB_NS=(lgo-"$LAB_ID"-ms lgo-"$LAB_ID"-a lgo-"$LAB_ID"-b)
LAB_PIDS=()

# lab_await FILE TEXT: waits (30 s at most) for a line with TEXT in the log
# FILE; fails when it does not come. (grep's status alone: tail ends on
# SIGPIPE once grep has found it.)
lab_await() {
  grep -qF -m1 -- "$2" < <(timeout 30 tail -n +1 -f "$1")
}

# lab_veth NS1 IF1 ADDR1 NS2 IF2 ADDR2
lab_veth() {
  ip -n "$1" link add "$2" type veth peer name "$5" netns "$4" &&
    ip -n "$1" addr add "$3" dev "$2" && ip -n "$1" link set "$2" up &&
    ip -n "$4" addr add "$6" dev "$5" && ip -n "$4" link set "$5" up
}

# lab_agent_uci NAME CONTROL_ADDRESS EID: agent NAME's configuration, UCI.
lab_agent_uci() {
  cat <<UCI
config agent 'main'
	option enabled '1'
	option interface 'lgo${LAB_ID}$1'
	option tun 'lgo${LAB_ID}$1t'
	option backend 'userspace'
	option private_key_file '$LAB_DIR/$1.key'
	option control_address '$2'
	list overlay '10.0.0.0/8'
	option status_socket '$LAB_DIR/$1.sock'

config map_server 'ms'
	option address '172.31.1.1'
	option public_key '$LAB_MS_PUBLIC'
	option control_address '100.64.0.1'
	option key 'key $1'

config eid
	option prefix '$3'
	option iid '1000'
UCI
}

# lab_start DIR: builds the lab, its files in DIR; returns once both
# agents registered with the map-server. Agent A's status socket:
# $LAB_DIR/a.sock.
lab_start() {
  LAB_DIR=$1
  local ns name
  for ns in "${LAB_NS[@]}"; do
    ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
  done
  ip netns exec "${LAB_NS[0]}" sysctl -qw net.ipv4.ip_forward=1 || return 1
  lab_veth "${LAB_NS[0]}" r-a 172.31.2.1/24 "${LAB_NS[1]}" u0 172.31.2.2/24 || return 1
  lab_veth "${LAB_NS[0]}" r-b 172.31.3.1/24 "${LAB_NS[2]}" u0 172.31.3.2/24 || return 1
  # the map-server's WireGuard endpoint, the same address for both
  ip -n "${LAB_NS[0]}" addr add 172.31.1.1/32 dev lo || return 1
  ip -n "${LAB_NS[1]}" route add default via 172.31.2.1 || return 1
  ip -n "${LAB_NS[2]}" route add default via 172.31.3.1 || return 1

  for name in ms a b; do
    (umask 077 && "$LAB_BIN/lispguard" genkey > "$LAB_DIR/$name.key") || return 1
  done
  LAB_MS_PUBLIC=$("$LAB_BIN/lispguard" pubkey < "$LAB_DIR/ms.key")
  cat > "$LAB_DIR/ms.toml" <<TOML
control_address = "100.64.0.1"
[wireguard]
interface = "lgo${LAB_ID}ms"
backend = "userspace"
private_key_file = "$LAB_DIR/ms.key"
[lisp]
control_socket = "$LAB_DIR/ms.sock"
state_file = "$LAB_DIR/ms.db"
[[site]]
name = "a"
key = "key a"
public_key = "$("$LAB_BIN/lispguard" pubkey < "$LAB_DIR/a.key")"
control_address = "100.64.0.2"
eids = ["[1000] 10.1.0.1/32"]
[[site]]
name = "b"
key = "key b"
public_key = "$("$LAB_BIN/lispguard" pubkey < "$LAB_DIR/b.key")"
control_address = "100.64.0.3"
eids = ["[1000] 10.2.0.2/32"]
TOML
  lab_agent_uci a 100.64.0.2 10.1.0.1/32 > "$LAB_DIR/a.uci"
  lab_agent_uci b 100.64.0.3 10.2.0.2/32 > "$LAB_DIR/b.uci"

  lab_run ms "${LAB_NS[0]}" "$LAB_BIN/lispguard-mapserver" run -c "$LAB_DIR/ms.toml" &&
    lab_await "$LAB_DIR/ms.log" "map-server on" || return 1
  lab_run a "${LAB_NS[1]}" "$LAB_BIN/lispguard" run -c "$LAB_DIR/a.uci" || return 1
  lab_run b "${LAB_NS[2]}" "$LAB_BIN/lispguard" run -c "$LAB_DIR/b.uci" || return 1
  lab_await "$LAB_DIR/a.log" "registered with the map-server" &&
    lab_await "$LAB_DIR/b.log" "registered with the map-server"
}

# lab_run NAME NS COMMAND...: starts COMMAND in NS, its log in
# $LAB_DIR/NAME.log, its pid in LAB_PIDS[NAME's index].
lab_run() {
  local name=$1 ns=$2
  shift 2
  ip netns exec "$ns" "$@" > "$LAB_DIR/$name.log" 2>&1 &
  LAB_PIDS+=("$name:$!")
}

# lab_stop_one NAME: SIGTERM to NAME (the agent removes its interface,
# routes and peers), and waits until it is gone.
lab_stop_one() {
  local entry
  for entry in "${LAB_PIDS[@]}"; do
    if [ "${entry%%:*}" = "$1" ]; then
      kill -TERM "${entry#*:}" 2>/dev/null
      wait "${entry#*:}" 2>/dev/null
    fi
  done
  return 0
}

# lab_stop: every process, then the namespaces.
lab_stop() {
  local entry ns
  for entry in "${LAB_PIDS[@]}"; do
    kill -TERM "${entry#*:}" 2>/dev/null
  done
  for entry in "${LAB_PIDS[@]}"; do
    wait "${entry#*:}" 2>/dev/null
  done
  LAB_PIDS=()
  for ns in "${LAB_NS[@]}"; do
    ip netns del "$ns" 2>/dev/null
  done
  return 0
}
