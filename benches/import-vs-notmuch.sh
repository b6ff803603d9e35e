#!/usr/bin/env bash
# Import benchmark: the corpus Maildir into a fresh `satchel serve`, and the same
# Maildir indexed by `notmuch new`, in one run; then `satchel search` beside
# `notmuch search` for the same queries. Prints rates and ratios.
#
#   benches/import-vs-notmuch.sh            # builds the release binary first
#
# Every message satchel reports imported is durable (pack fsynced, SQLite
# synchronous=FULL) when its batch answers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-corpus.sh >/dev/null
cargo build --release --locked -q -p satchel
bin="$PWD/target/release/satchel"
corpus="${SATCHEL_CORPUS:-$HOME/.cache/satchel/corpus}/maildir"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
ms() { echo $(( $(date +%s%N) / 1000000 )); }
count=$(ls "$corpus/cur" | wc -l)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export SATCHEL_ADMIN_PASSWORD=bench-password SATCHEL_SERVER="http://127.0.0.1:$port"
export SATCHEL_USER=admin SATCHEL_PASSWORD=bench-password
"$bin" serve --data "$work/data" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do "$bin" mailbox list >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" mailbox add bench@example.com >/dev/null
t0=$(ms); "$bin" import bench@example.com "$corpus" >/dev/null; t1=$(ms)
satchel_ms=$((t1 - t0))

mkdir -p "$work/notmuch"
cp -r "$corpus" "$work/notmuch/mail"
cat >"$work/notmuch/config" <<CFG
[database]
path=$work/notmuch/mail
[user]
name=Bench
primary_email=bench@example.com
[new]
tags=inbox;
CFG
export NOTMUCH_CONFIG="$work/notmuch/config"
t0=$(ms); notmuch new --quiet; t1=$(ms)
notmuch_ms=$((t1 - t0))

rate() { python3 -c "print(f'{$1 / ($2 / 1000):.0f}')"; }
echo "machine: $(nproc) cores, $(uname -m); corpus: $count messages"
echo "satchel import: ${satchel_ms} ms  $(rate "$count" "$satchel_ms") messages/s (durable)"
echo "notmuch new:    ${notmuch_ms} ms  $(rate "$count" "$notmuch_ms") messages/s"
python3 -c "print(f'import ratio satchel/notmuch: {$notmuch_ms / $satchel_ms:.2f}x')"

# Search latency: whole command, process start to exit, median of 21 runs.
median_ms() {
  local runs=() t0 t1
  for _ in $(seq 21); do t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); runs+=($(( (t1 - t0) / 1000 ))); done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n 11p | python3 -c 'import sys; print(f"{int(sys.stdin.read())/1000:.1f}")'
}
for q in razor "subject:satellite" "from:wstearns" "spamassassin razor"; do
  s=$(median_ms "$bin" search "$q" --limit 10)
  n=$(median_ms notmuch search --limit=10 "$q")
  echo "search '$q': satchel ${s} ms, notmuch ${n} ms (median of 21, process start to exit)"
done
