# shellcheck shell=sh
# Stand-ins for what /etc/rc.common, /lib/functions.sh and
# /lib/functions/procd.sh give an init script, for tests. Every procd_*
# call is appended to $CALLS, one line each, arguments space-separated.
# config_load reads $UCI_CONFIG_DIR/<name> (a small UCI subset: config,
# option; quoted or bare values). $STUBS_DIR: where uci-to-sh.awk is.
# shellcheck disable=SC3043 # busybox ash has `local`

record() {
	echo "$*" >> "$CALLS"
}

extra_command() { :; }
procd_open_instance() { record procd_open_instance "$@"; }
procd_close_instance() { record procd_close_instance "$@"; }
procd_set_param() { record procd_set_param "$@"; }
procd_append_param() { record procd_append_param "$@"; }
procd_add_reload_trigger() { record procd_add_reload_trigger "$@"; }
procd_add_raw_trigger() { record procd_add_raw_trigger "$@"; }
procd_send_signal() { record procd_send_signal "$@"; }
# rc.common's start runs start_service (through procd)
start() { record start "$@"; start_service "$@"; }

config_load() {
	record config_load "$@"
	local file="$UCI_CONFIG_DIR/$1"
	[ -f "$file" ] || return 0
	eval "$(awk -f "$STUBS_DIR/uci-to-sh.awk" "$file")"
}

config_get() {
	local __cg_var="$1" __cg_sec="$2" __cg_opt="$3" __cg_def="$4" __cg_val
	eval "__cg_val=\${CONFIG_${__cg_sec}_${__cg_opt}-}"
	[ -n "$__cg_val" ] || __cg_val="$__cg_def"
	eval "$__cg_var=\$__cg_val"
}

config_get_bool() {
	local __cgb_var="$1" __cgb_val
	config_get __cgb_val "$2" "$3" "$4"
	case "$__cgb_val" in
		1 | on | true | yes | enabled) __cgb_val=1 ;;
		0 | off | false | no | disabled) __cgb_val=0 ;;
		*) __cgb_val="$4" ;;
	esac
	eval "$__cgb_var=\$__cgb_val"
}
