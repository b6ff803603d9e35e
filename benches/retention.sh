#!/usr/bin/env bash
# Retention apply over a large mailbox (issue 11): MESSAGES generated messages
# (benches/generate-mailbox.py: distinct, dates spread over 2000-2025) in one
# mailbox, a period that expires about half of them (DAYS, default 4745 = 13
# years), then `satchel retention apply --json` timed: messages removed, the
# bytes the apply reports reclaimed, and the pack bytes on disk before and after.
#
#   benches/retention.sh [MESSAGES]          # default 100000; builds release
#   SATCHEL_BENCH_BIN_DIR=target/debug ...   # binaries already built
#   SATCHEL_BENCH_DIR=/work/data-x KEEP=1 ...  # where the data goes, kept
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
days="${DAYS:-4745}"
scripts/fetch-corpus.sh >/dev/null
bins="${SATCHEL_BENCH_BIN_DIR:-}"
if [ -z "$bins" ]; then
  cargo build --release --locked -q -p satchel --bin satchel
  bins="$PWD/target/release"
fi
bin="$(realpath "$bins/satchel")"
work="${SATCHEL_BENCH_DIR:-$(mktemp -d)}"
mkdir -p "$work"
rm -rf "$work/data" "$work/gen"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export SATCHEL_ADMIN_PASSWORD=bench-password SATCHEL_SERVER="http://127.0.0.1:$port"
export SATCHEL_USER=admin SATCHEL_PASSWORD=bench-password
"$bin" serve --data "$work/data" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work/data" "$work/gen"
}
trap cleanup EXIT
for _ in $(seq 300); do "$bin" mailbox list >/dev/null 2>&1 && break; sleep 0.1; done
mb=bench@example.com
"$bin" mailbox add "$mb" >/dev/null
benches/generate-mailbox.py "$work/gen" --messages "$n" --chunk "$n" >/dev/null
"$bin" import "$mb" "$work/gen/chunk-0000.mbox" >/dev/null
rm -rf "$work/gen"
packs() { du -sb "$work/data/repositories" | cut -f1; }
echo "machine: $(nproc) cores, $(uname -m); satchel $("$bin" --version); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
before=$(packs)
"$bin" retention set "$mb" --days "$days" >/dev/null
t0=$(date +%s.%N)
"$bin" retention apply "$mb" --json >"$work/apply.json"
secs=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
after=$(packs)
python3 - "$work/apply.json" "$n" "$days" "$secs" "$before" "$after" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
n, days, secs, before, after = sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
removed = len(a["removed"])
print(f"retention apply, {n} messages, period {days} days: {removed} removed in {secs:.1f} s "
      f"({removed / secs:.0f} messages/s); reclaimed_bytes {a['reclaimed_bytes']}; "
      f"pack bytes on disk {before} -> {after} ({before - after} given back)")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
