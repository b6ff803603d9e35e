#!/usr/bin/env bash
# Search as a whole command: `satchel search QUERY` beside `notmuch search QUERY`
# on the same corpus, in one run, timed by hyperfine (process start to exit).
#
#   benches/search-vs-notmuch.sh            # builds the release binary first
#   SATCHEL_BIN=path/to/satchel benches/search-vs-notmuch.sh
#
# A fresh `satchel serve` (plain http:// on loopback) holds the corpus Maildir;
# notmuch indexes a copy of the same Maildir. Needs hyperfine and notmuch.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-corpus.sh >/dev/null
if [ -z "${SATCHEL_BIN:-}" ]; then
  cargo build --release --locked -q -p satchel
  SATCHEL_BIN="$PWD/target/release/satchel"
fi
bin="$SATCHEL_BIN"
corpus="${SATCHEL_CORPUS:-$HOME/.cache/satchel/corpus}/maildir"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export SATCHEL_ADMIN_PASSWORD=bench-password SATCHEL_SERVER="http://127.0.0.1:$port"
export SATCHEL_USER=admin SATCHEL_PASSWORD=bench-password
"$bin" serve --data "$work/data" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do "$bin" mailbox list >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" mailbox add bench@example.com >/dev/null
"$bin" import bench@example.com "$corpus" >/dev/null

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
notmuch new --quiet

echo "machine: $(nproc) cores, $(uname -m), load $(cut -d' ' -f1-3 /proc/loadavg); corpus: $(ls "$corpus/cur" | wc -l) messages"
for q in razor "subject:satellite" "from:wstearns" "spamassassin razor"; do
  hyperfine -N --warmup 10 --runs "${RUNS:-100}" --style basic \
    --export-markdown "$work/result.md" \
    -n "satchel search '$q'" "$bin search '$q' --limit 10" \
    -n "notmuch search '$q'" "notmuch search --limit=10 '$q'"
  cat "$work/result.md"
done
