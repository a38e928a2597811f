# A UCI file (config/option lines; `list` is ignored) as shell
# assignments CONFIG_<section>_<option>='value', as config_load makes
# them. Anonymous sections are named cfg1, cfg2, ...
function unquote(s) {
	sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s)
	if (s ~ /^\047.*\047$/ || s ~ /^".*"$/) s = substr(s, 2, length(s) - 2)
	return s
}
function shquote(s) {
	gsub(/\047/, "\047\\\047\047", s)
	return "\047" s "\047"
}
/^[ \t]*#/ { next }
$1 == "config" {
	n++
	name = ($3 == "") ? "cfg" n : unquote($3)
	printf "CONFIG_%s_TYPE=%s\n", name, shquote(unquote($2))
	next
}
$1 == "option" && name != "" {
	value = $0
	sub(/^[ \t]*option[ \t]+[^ \t]+[ \t]*/, "", value)
	printf "CONFIG_%s_%s=%s\n", name, $2, shquote(unquote(value))
}
