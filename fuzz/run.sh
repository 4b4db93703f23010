#!/usr/bin/env bash
# Builds and runs the libFuzzer targets on the stable toolchain.
#
#   fuzz/run.sh build                    build every target (instrumented)
#   fuzz/run.sh smoke SECONDS            run each target for SECONDS on its corpus
#   fuzz/run.sh run TARGET [ARGS...]     run one target; ARGS go to libFuzzer,
#                                        e.g. -runs=10000000 -jobs=1
#   fuzz/run.sh list                     the target names
#
# libFuzzer needs the compiler's coverage instrumentation (SanitizerCoverage,
# stable `-C` flags) and, for AddressSanitizer, `-Zsanitizer=address`, which
# stable rustc accepts with RUSTC_BOOTSTRAP=1. No other toolchain and no
# cargo-fuzz install are needed; the flags are those cargo-fuzz passes.
# FUZZ_SANITIZER=address adds AddressSanitizer (for the unsafe code in
# dependencies; about half the speed), in its own target directory.
# See docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(datagram rtp_rtcp sdp client_message server_message shard_datagram client_sdp codec forwarder sdp_helpers twcc)
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
export RUSTC_BOOTSTRAP=1
# Coverage instrumentation goes only to the crates that parse network input
# (see rustc-wrapper.sh); the rest are built with the same checks but no
# coverage counters.
coverage=(
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
)
export FUZZ_COVERAGE_FLAGS="${coverage[*]}"
export RUSTC_WRAPPER="$PWD/rustc-wrapper.sh"
flags=(
  --cfg fuzzing
  -Cdebug-assertions
  -Coverflow-checks
)
if [[ "${FUZZ_SANITIZER:-none}" == address ]]; then
  flags+=(-Zsanitizer=address)
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR/asan"
fi
export RUSTFLAGS="${flags[*]}"
bin() { echo "$CARGO_TARGET_DIR/$TRIPLE/release/$1"; }

build() {
  # The workspace's lock file, so the targets build the versions the
  # server ships; cargo adds only what the fuzz crate needs on top
  # (libfuzzer-sys). --target keeps build scripts and proc macros
  # uninstrumented.
  cp ../Cargo.lock Cargo.lock
  cargo build --release --target "$TRIPLE" --bins
}

run() {
  local t=$1; shift
  mkdir -p "corpus/$t" "artifacts/$t"
  # The committed corpus is read-only input; what the run discovers goes
  # to a scratch directory so the repository stays small.
  local scratch="${FUZZ_SCRATCH:-$CARGO_TARGET_DIR/corpus}/$t"
  mkdir -p "$scratch"
  "$(bin "$t")" -artifact_prefix="artifacts/$t/" -max_len=65536 "$@" "$scratch" "corpus/$t"
}

case "${1:-}" in
  build) build ;;
  list) printf '%s\n' "${TARGETS[@]}" ;;
  run) shift; build >&2; run "$@" ;;
  smoke)
    secs=${2:?seconds per target}
    build
    for t in "${TARGETS[@]}"; do
      echo "== fuzz $t for ${secs}s"
      run "$t" -max_total_time="$secs" -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|.*(panicked|ERROR|crash-|deadly signal))" || true
      if ls "artifacts/$t"/* >/dev/null 2>&1; then
        echo "fuzz target $t found a failing input: fuzz/artifacts/$t/" >&2
        exit 1
      fi
    done
    ;;
  *) sed -n '2,15p' "$0"; exit 2 ;;
esac
