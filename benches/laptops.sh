#!/usr/bin/env bash
# The thousand-laptop load benchmark (issue 12 point 5).
#
#   benches/laptops.sh                      # builds release, 1,000 laptops
#   CLIENTS=100 INTERVAL=60 benches/laptops.sh
#   SATCHEL_BENCH_DATA=/work/data-h5 benches/laptops.sh
#   SATCHEL_BENCH_BIN_DIR=target/debug ...  # binaries already built (no release build)
#   LAPTOPS_ARGS="--storms at-once" ...     # only the storms without jitter
#   NODES=2 SATCHEL_BENCH_CATALOG=postgres://… SATCHEL_BENCH_S3_URL=s3://B/P \
#     SATCHEL_BENCH_S3_ENDPOINT=http://… SATCHEL_KEY=<64 hex> AWS_ACCESS_KEY_ID=… \
#     AWS_SECRET_ACCESS_KEY=… benches/laptops.sh   # two nodes on PostgreSQL + S3
#
# Starts a fresh `satchel serve` (plain http:// on loopback; NODES of them on
# one PostgreSQL catalog, the mailbox's mail and the offline repositories in
# one S3 bucket, when SATCHEL_BENCH_CATALOG is set), imports the
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

nodes="${NODES:-1}"
if [ "$nodes" -gt 1 ] && [ -z "${SATCHEL_BENCH_CATALOG:-}" ]; then
  echo "NODES=$nodes needs SATCHEL_BENCH_CATALOG (postgres://…) and SATCHEL_BENCH_S3_URL" >&2
  exit 2
fi
if [ -n "${SATCHEL_BENCH_CATALOG:-}" ]; then
  : "${SATCHEL_KEY:?the nodes share SATCHEL_KEY (64 hex digits)}"
  : "${SATCHEL_BENCH_S3_URL:?s3://BUCKET/PREFIX for the mail and the offline repositories}"
  export SATCHEL_CATALOG="$SATCHEL_BENCH_CATALOG" SATCHEL_KEY
fi

rm -rf "$data"/service* "$data/homes"
mkdir -p "$data"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$data"/service* "$data/homes"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ports=()
start_node() { # start_node I: node I on a free port, waits until it answers
  local i=$1 port
  port=$(free_port)
  "$bin/satchel" serve --data "$data/service-$i" --listen "127.0.0.1:$port" >"$data/serve-$i.log" 2>&1 &
  pids+=($!)
  ports+=("$port")
  for _ in $(seq 1200); do
    SATCHEL_SERVER="http://127.0.0.1:$port" "$bin/satchel" mailbox list >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node $i did not answer; log:" >&2
  tail -20 "$data/serve-$i.log" >&2
  exit 1
}
export SATCHEL_ADMIN_PASSWORD=bench-admin-password
export SATCHEL_USER=admin SATCHEL_PASSWORD=bench-admin-password
start_node 0
export SATCHEL_SERVER="http://127.0.0.1:${ports[0]}"
repo_args=()
if [ -n "${SATCHEL_BENCH_S3_URL:-}" ]; then
  "$bin/satchel" repo add bench-s3 --s3 "$SATCHEL_BENCH_S3_URL" \
    --endpoint "${SATCHEL_BENCH_S3_ENDPOINT:?the S3 endpoint URL}" >/dev/null
  "$bin/satchel" offline defaults --store bench-s3 >/dev/null
  repo_args=(--repo bench-s3)
fi
"$bin/satchel" mailbox add "$mailbox" "${repo_args[@]}" >/dev/null
"$bin/satchel" import "$mailbox" "$corpus" >/dev/null
echo laptop-password | "$bin/satchel" user add laptop --password-stdin >/dev/null
"$bin/satchel" mailbox grant "$mailbox" laptop >/dev/null
"$bin/satchel" offline enable "$mailbox" >/dev/null
"$bin/satchel" offline sync-now "$mailbox" >/dev/null
for i in $(seq 1 $((nodes - 1))); do start_node "$i"; done
server_args=()
for i in "${!ports[@]}"; do
  server_args+=(--server "http://127.0.0.1:${ports[$i]}" --server-pid "${pids[$i]}")
done

echo "machine: $(nproc) cores, $(uname -m); before: $(uptime)"
echo "service: $nodes node(s), pids ${pids[*]}, ports ${ports[*]}, catalog ${SATCHEL_CATALOG:-SQLite}, $(ls "$corpus/cur" "$corpus/new" | grep -c .) corpus messages; fds limit $(ulimit -n)"
SATCHEL_BENCH_PASSWORD=laptop-password SATCHEL_BENCH_ADMIN_PASSWORD=bench-admin-password \
  "$bin/laptops" "${server_args[@]}" \
  --mailbox "$mailbox" --user laptop --homes "$data/homes" --corpus "$corpus" \
  --clients "$clients" --interval "$interval" --new-messages "$new" ${LAPTOPS_ARGS:-}
echo "after: $(uptime); homes: $(du -sh "$data/homes" | cut -f1)"
echo "service log, warnings and errors (first 20):"
cat "$data"/serve-*.log | grep -E " (WARN|ERROR) " | grep -v "seals IMAP passwords" | head -20 || true
