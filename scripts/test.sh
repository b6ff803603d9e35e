#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, then every crate's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked "$@"
