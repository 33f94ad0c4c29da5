#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo fuzz (libFuzzer + AddressSanitizer) on the stable toolchain
# (RUSTC_BOOTSTRAP=1 lets it pass the instrumentation flags nightly would).
#
#   fuzz/run.sh SECONDS [TARGET...]   fuzz each target for SECONDS (default: all four), growing
#                                     fuzz/corpus/<target>; a crash lands in fuzz/artifacts/
#   fuzz/run.sh 0                     replay the committed corpus once (the regression check)
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("${@:-manifest_decode bundle_open camera_frame booth_config}")
# shellcheck disable=SC2206
TARGETS=(${TARGETS[*]})
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${DOPPEL_FUZZ_TARGET_DIR:-$HOME/.cache/doppel/target-fuzz}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    if [ "$SECONDS_EACH" = 0 ]; then
        cargo fuzz run -O "$t" "corpus/$t" -- -runs=0
    else
        cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1
    fi
done
