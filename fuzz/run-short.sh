#!/usr/bin/env bash
# Run every fuzz target for N seconds (default 30) and exit non-zero if any of them finds a
# crash (libFuzzer then leaves the input under fuzz/artifacts/<target>/).
#
#   fuzz/run-short.sh        # 30 s per target
#   fuzz/run-short.sh 300    # 5 min per target
#
# cargo-fuzz wants nightly-only flags (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets stable accept them.
set -euo pipefail

secs="${1:-30}"
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/fuzz/target}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz not found: cargo install cargo-fuzz" >&2
    exit 2
fi

failed=()
for target in $(cargo fuzz list); do
    echo "=== fuzzing ${target} for ${secs}s"
    mkdir -p "fuzz/corpus/${target}"
    if ! cargo fuzz run "${target}" -- -max_total_time="${secs}" -timeout=10 -rss_limit_mb=2048; then
        failed+=("${target}")
    fi
done

if ((${#failed[@]})); then
    echo "crashes found in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "all targets ran ${secs}s without a crash"
