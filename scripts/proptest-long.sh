#!/usr/bin/env bash
# The property tests of every parser of outside input, run much longer than the
# test suite runs them (default 100,000 cases each instead of 500-2,000).
# Usage: scripts/proptest-long.sh [CASES]
# A failure is saved by proptest under the crate's proptest-regressions/ folder:
# commit that file, so the input is rerun first by every later test run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${1:-100000}"
run() { cargo test --release --locked "$@"; }
run -p satchel-message --test props
run -p satchel-offline --test props
run -p satchel-archive --test mbox_props
run -p satchel --test props
run -p satchel-server --lib -- http::offline::tests
