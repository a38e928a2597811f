# The check harness of the packaging tests (openwrt/tests/run.sh,
# deb/tests/run.sh), sourced by them: each check prints "ok NAME" or
# "FAIL NAME" with what the command said, and is counted.
# shellcheck shell=bash

passed=0
failed=0
ok() {
  passed=$((passed + 1))
  echo "ok   $1"
}
not_ok() {
  failed=$((failed + 1))
  echo "FAIL $1"
  [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/     | /'
}
# check NAME COMMAND...: passes when the command succeeds.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
