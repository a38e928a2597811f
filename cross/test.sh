#!/usr/bin/env bash
# Proof that the cross builds run on the routers' CPUs, under qemu-user:
#
#   cross/test.sh [TARGET ...]   (default: mips-unknown-linux-musl
#                                 armv7-unknown-linux-musleabihf)
#
# For each target: the `lisp` crate's whole test suite, agent/tests/timer.rs
# (async-io timers fire: the mips y2038 timerfd bug), then the release binaries
# from cross/build.sh (built here if needed): `lispguard --help`,
# `lispguard check-config` on uci/tests/samples/lispguard (must say "ok"),
# `lispguard-mapserver --help`. The runners are the `runner`s of
# .cargo/config.toml (qemu-<arch>-static; binfmt is not registered).
#
# lisp's Wireshark test spawns the host's tshark from the emulated test
# binary: qemu-user passes execve to the kernel, so it runs natively.
#
# Exits non-zero if anything failed, naming what; the last line is
# "cross: N passed, N failed" (tests plus binary checks).
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$CROSS_ROOT"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(mips-unknown-linux-musl armv7-unknown-linux-musleabihf)

set -e
ensure_all "${targets[@]}"
command -v tshark >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends tshark >/dev/null
}
set +e

failed=()
total_passed=0
total_failed=0
summary=()
logdir="$CARGO_TARGET_DIR/cross-test-logs"
mkdir -p "$logdir"

# cargo test for one target; adds its counts to the totals.
run_tests() {
  local t=$1 name=$2
  shift 2
  local out="$logdir/$t.$name.log" start=$SECONDS
  local cmd=(cargo-zigbuild test --locked --target "$t")
  if needs_build_std "$t"; then
    cmd+=(-Zbuild-std)
    export RUSTUP_TOOLCHAIN=nightly # plain `cargo +nightly test` picks the host linker
  else
    export RUSTUP_TOOLCHAIN=stable
  fi
  # Doctests are linked by rustdoc, which gets RUSTDOCFLAGS, not the
  # target's rustflags: without this, armv7 looks for rustc's own crt1.o,
  # which a build-std toolchain does not have (zig supplies it).
  case "$t" in armv7-*) export RUSTDOCFLAGS="-C link-self-contained=no" ;; esac
  log "$t: ${cmd[*]} $*"
  "${cmd[@]}" "$@" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  unset RUSTUP_TOOLCHAIN RUSTDOCFLAGS
  local p f
  p=$(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
  f=$(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$out" | awk '{s+=$1} END {print s+0}')
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  summary+=("$t $name: $p passed, $f failed ($((SECONDS - start)) s)")
  if [ "$rc" != 0 ]; then
    failed+=("$t: $name (exit $rc, log $out)")
    [ "$f" != 0 ] || total_failed=$((total_failed + 1))
  fi
}

# One check of a built binary: an ERE its output must match ("": exit 0 is enough).
check_bin() {
  local t=$1 expect=$2
  shift 2
  local q out
  if [ ! -x "$1" ]; then
    total_failed=$((total_failed + 1))
    failed+=("$t: ${1#"$CROSS_ROOT/"} was not built (see cross/build.sh's output)")
    return
  fi
  q="$(qemu_for "$t")"
  # shellcheck disable=SC2086 # q is "qemu-x -cpu y"
  out=$($q "$@" 2>&1)
  local rc=$?
  local what="${*#"$CROSS_ROOT/"}"
  if [ "$rc" = 0 ] && { [ -z "$expect" ] || grep -qE "$expect" <<<"$out"; }; then
    total_passed=$((total_passed + 1))
    log "$t: ok: $what"
  else
    total_failed=$((total_failed + 1))
    failed+=("$t: \`$what\` (exit $rc${expect:+, expected \"$expect\"}): $(head -c 300 <<<"$out")")
  fi
}

for t in "${targets[@]}"; do
  run_tests "$t" lisp -p lisp
  run_tests "$t" timer -p agent --test timer
  start=$SECONDS
  # A binary that did not build fails its checks below (and is named there).
  "$CROSS_ROOT/cross/build.sh" "$t" || log "$t: cross/build.sh failed"
  d="$CROSS_ROOT/dist/$t"
  check_bin "$t" "" "$d/lispguard" --help
  check_bin "$t" ": ok$" "$d/lispguard" check-config "$CROSS_ROOT/uci/tests/samples/lispguard"
  check_bin "$t" "" "$d/lispguard-mapserver" --help
  summary+=("$t binaries: build + 3 checks ($((SECONDS - start)) s)")
done

echo
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED:"
  printf '  %s\n' "${failed[@]}"
fi
echo "cross: $total_passed passed, $total_failed failed"
[ ${#failed[@]} -eq 0 ]
