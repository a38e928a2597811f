#!/usr/bin/env bash
# Fuzzes every parser of the lisp crate for a bounded time each, starting
# from the sample messages, and prints executions and findings per target.
#
#   bash lisp/fuzz/run.sh [SECONDS_PER_TARGET]   (default 60)
#
# Needs the nightly toolchain and cargo-fuzz; installs what is missing.
# Exits non-zero when any target finds a crash (the input is kept under
# lisp/fuzz/artifacts/TARGET/).
set -euo pipefail
seconds=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cargo run -q --manifest-path ../../Cargo.toml -p lisp --example fuzz_seeds -- "$here/seeds"
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build -O

failed=0
printf '%-14s %12s %10s %s\n' target executions exec/s result
for target in $targets; do
  mkdir -p "corpus/$target"
  log=$(mktemp)
  if cargo +nightly fuzz run -O "$target" "corpus/$target" "$here/seeds" -- \
      -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see $log and artifacts/$target/)"
    failed=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  printf '%-14s %12s %10s %s\n' "$target" "$runs" "$rate" "$result"
  [ "$result" = ok ] && rm -f "$log"
done
exit $failed
