#!/usr/bin/env bash
# The thousand-laptop load benchmark (issue 12 point 5).
#
#   benches/laptops.sh                      # builds release, 1,000 laptops
#   CLIENTS=100 INTERVAL=60 benches/laptops.sh
#   SATCHEL_BENCH_DATA=/work/data-h5 benches/laptops.sh
#   SATCHEL_BENCH_BIN_DIR=target/debug ...  # binaries already built (no release build)
#   LAPTOPS_ARGS="--storms at-once" ...     # only the storms without jitter
#
# Starts a fresh `satchel serve` (plain http:// on loopback), imports the
# corpus Maildir into one mailbox, grants it to a user `laptop`, enables
# offline synchronization and builds the repository; then
# `crates/satchel-bench` binary `laptops` sets up one real laptop (setup +
# first sync), clones its home for every simulated laptop (own token each),
# adds NEW messages, runs "synchronize now" and lets every laptop refresh
# with the agent's jitter, then once more with no change, then the same two
# storms with everyone at once. It prints the report per storm. Generated
# data (service data folder, laptops' homes) goes under SATCHEL_BENCH_DATA
# and is deleted at the end unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-corpus.sh >/dev/null
clients="${CLIENTS:-1000}"
interval="${INTERVAL:-300}"
new="${NEW:-1000}"
data="${SATCHEL_BENCH_DATA:-$(mktemp -d)}"
corpus="${SATCHEL_CORPUS:-$HOME/.cache/satchel/corpus}/maildir"
mailbox=bench@example.com

if [ -z "${SATCHEL_BENCH_BIN_DIR:-}" ]; then
  cargo build --release --locked -q -p satchel -p satchel-bench --bin satchel --bin laptops
  SATCHEL_BENCH_BIN_DIR="$PWD/target/release"
fi
bin="$SATCHEL_BENCH_BIN_DIR"

rm -rf "$data/service" "$data/homes"
mkdir -p "$data"
cleanup() {
  kill "${pid:-0}" 2>/dev/null || true
  wait "${pid:-0}" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$data/service" "$data/service.key" "$data/homes"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export SATCHEL_ADMIN_PASSWORD=bench-admin-password SATCHEL_SERVER="http://127.0.0.1:$port"
export SATCHEL_USER=admin SATCHEL_PASSWORD=bench-admin-password
"$bin/satchel" serve --data "$data/service" --listen "127.0.0.1:$port" >"$data/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do "$bin/satchel" mailbox list >/dev/null 2>&1 && break; sleep 0.1; done

"$bin/satchel" mailbox add "$mailbox" >/dev/null
"$bin/satchel" import "$mailbox" "$corpus" >/dev/null
echo laptop-password | "$bin/satchel" user add laptop --password-stdin >/dev/null
"$bin/satchel" mailbox grant "$mailbox" laptop >/dev/null
"$bin/satchel" offline enable "$mailbox" >/dev/null
"$bin/satchel" offline sync-now "$mailbox" >/dev/null

echo "machine: $(nproc) cores, $(uname -m); before: $(uptime)"
echo "service: pid $pid, http://127.0.0.1:$port, $(ls "$corpus/cur" "$corpus/new" | grep -c .) corpus messages; fds limit $(ulimit -n)"
SATCHEL_BENCH_PASSWORD=laptop-password SATCHEL_BENCH_ADMIN_PASSWORD=bench-admin-password \
  "$bin/laptops" --server "http://127.0.0.1:$port" --server-pid "$pid" \
  --mailbox "$mailbox" --user laptop --homes "$data/homes" --corpus "$corpus" \
  --clients "$clients" --interval "$interval" --new-messages "$new" ${LAPTOPS_ARGS:-}
echo "after: $(uptime); homes: $(du -sh "$data/homes" | cut -f1)"
echo "service log, warnings and errors (first 20):"
grep -E " (WARN|ERROR) " "$data/serve.log" | grep -v "seals IMAP passwords" | head -20 || true
