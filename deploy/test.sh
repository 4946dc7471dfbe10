#!/usr/bin/env bash
# Every test: lints (clippy denies undocumented unsafe), the benchmark tools' tests, unit +
# property + end-to-end tests (real DPDK ports, kernel peers in namespaces), a short fuzz run.
# Root-only tests must not be skipped here: REQUIRE_ROOT_TESTS makes a skip fail.
set -euo pipefail
cd "$(dirname "$0")/.."
export REQUIRE_ROOT_TESTS=1
export CARGO_TERM_COLOR=never

if [[ $(id -u) != 0 ]]; then
  echo "error: the test suite needs root (DPDK ports, network namespaces)" >&2
  exit 1
fi

echo "== clippy"
cargo clippy --workspace --all-targets --profile ci -- -D warnings
cargo clippy -p dataplane --no-default-features --all-targets --profile ci -- -D warnings

echo "== bench tools"
# deploy/bench's report and capture readers, on files written by the tests.
python3 -m unittest discover -s deploy/bench -p 'test_*.py'

echo "== tests"
# The TCP simulator moves 100 MB each way (debug-assertion builds default to a few MB).
export TCP_SIM_FULL=1
log=$(mktemp /tmp/strait-tests.XXXXXX.log)
cargo test --workspace --profile ci 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if grep -q "^SKIPPED" "$log"; then
  echo "error: tests were skipped:" >&2
  grep "^SKIPPED" "$log" >&2
  exit 1
fi
[[ $status == 0 ]] || exit "$status"

if [[ -x fuzz/run-short.sh ]]; then
  echo "== fuzz (short)"
  fuzz/run-short.sh "${FUZZ_SECONDS:-20}"
fi
echo "== all tests passed"
