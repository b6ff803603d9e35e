#!/usr/bin/env bash
# The million-message benchmark (issue 12 point 4), driving the release `satchel`
# binary the way an operator would: `satchel serve`, `satchel import` chunk by
# chunk, the HTTP search API, `satchel offline sync-now`, `satchel laptop sync`.
#
#   benches/million.sh [MESSAGES]              # default 1,000,000
#
# Reports (and writes to $WORK/results.txt):
#   - import rate to searchable, per chunk and over the run: from `satchel import`
#     of the chunk until a phrase search finds the chunk's last message (imports
#     are durable: every batch's pack fsynced and catalog committed); goal >= 3,000/s;
#   - the service's RSS, sampled every second (VmRSS; VmHWM = the kernel's peak);
#     goal < 1 GiB;
#   - search p50/p99 over ten queries through the HTTP API, each repeated;
#     goal p99 < 50 ms;
#   - offline repository full build and an update after 1,000 new messages
#     (time, bytes on disk);
#   - the laptop's first sync (time, bytes on the wire, peak RSS, local index
#     size) and a no-change sync (bytes).
# The set comes from benches/generate-mailbox.py, one chunk at a time (a chunk is
# generated, imported, deleted: disk holds one chunk), through one `zstd -3` stream
# whose size is printed beside the raw size at the end.
#
# Environment:
#   SATCHEL_BENCH_DIR     work folder (default: a fresh mktemp -d, deleted at the end)
#   SATCHEL_BENCH_CHUNK   messages per chunk (default 100000)
#   SATCHEL_BENCH_REPEAT  runs of each search query (default 20)
#   SATCHEL_BENCH_LIMITS  hits per search answer, each measured (default "50 10"; 50 is
#                         the API's default)
#   SATCHEL_BENCH_BUDGET  seconds each query may take in all; a slower one runs fewer
#                         times, at least 3 (default 60)
#   SATCHEL_BENCH_TARGET  cargo target dir of the release build (default ./target)
#   SATCHEL_BENCH_CHUNKS  the JSON lines of a set generated beforehand (generate-mailbox.py
#                         OUT --messages N --chunk C > FILE, e.g. while the release
#                         build runs): its chunks are imported, and deleted, instead
#   SATCHEL_BENCH_OFFLINE_AFTER  chunk number after which the offline build and the
#                         laptop syncs are measured (default: after the whole set)
#   SATCHEL_BENCH_BIN_DIR take `satchel` and `million` from this folder, build nothing
#                         (e.g. target/debug for a quick try of the script itself)
#   SATCHEL_BENCH_CATALOG catalog URL for `satchel serve --catalog` (e.g.
#                         postgres://…); unset: the embedded SQLite catalog
#   SATCHEL_BENCH_S3_URL  s3://BUCKET/PREFIX: the mailbox's repository is
#                         `satchel repo add bench-s3 --s3 URL --endpoint
#                         $SATCHEL_BENCH_S3_ENDPOINT` (credentials from AWS_*);
#                         unset: the data folder's disk repository
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-1000000}"
chunk="${SATCHEL_BENCH_CHUNK:-100000}"
repeat="${SATCHEL_BENCH_REPEAT:-20}"
target="${SATCHEL_BENCH_TARGET:-$PWD/target}"
scripts/fetch-corpus.sh >/dev/null
bins="${SATCHEL_BENCH_BIN_DIR:-}"
if [ -z "$bins" ]; then
  CARGO_TARGET_DIR="$target" cargo build --release --locked -q -p satchel -p satchel-bench
  bins="$target/release"
fi
bin="$(realpath "$bins/satchel")"
million="$(realpath "$bins/million")"

if [ -n "${SATCHEL_BENCH_DIR:-}" ]; then
  work="$SATCHEL_BENCH_DIR"
  mkdir -p "$work"
  keep=1
else
  work="$(mktemp -d)"
  keep=0
fi
data="$work/data" home="$work/laptop" gen="$work/generated"
rm -rf "$data" "$home" "$gen"
results="$work/results.txt"
: >"$results"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
say() { echo "$*" | tee -a "$results"; }
now() { date +%s.%N; }
since() { python3 -c "print(f'{$(now) - $1:.2f}')"; }
bytes_of() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])$2)" "$1"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

say "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
say "satchel: commit $(git rev-parse --short HEAD) ($(git log -1 --format=%cs))"
say "load before: $(uptime)"
say "set: $messages messages${SATCHEL_BENCH_CHUNKS:+ (generated beforehand: $SATCHEL_BENCH_CHUNKS)}, chunks of $chunk; catalog: ${SATCHEL_BENCH_CATALOG:-SQLite}; repository: ${SATCHEL_BENCH_S3_URL:-local disk}"

# --- the service --------------------------------------------------------------
sport=$(port)
export SATCHEL_ADMIN_PASSWORD=bench-password SATCHEL_SERVER="http://127.0.0.1:$sport"
export SATCHEL_USER=admin SATCHEL_PASSWORD=bench-password
serve_args=(serve --data "$data" --listen "127.0.0.1:$sport")
[ -n "${SATCHEL_BENCH_CATALOG:-}" ] && serve_args+=(--catalog "$SATCHEL_BENCH_CATALOG")
# Debug level of the archive: one line per import batch with its phases' times.
SATCHEL_LOG="${SATCHEL_LOG:-warn,satchel_archive=debug}" "$bin" "${serve_args[@]}" >"$work/serve.log" 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
for _ in $(seq 200); do "$bin" mailbox list >/dev/null 2>&1 && break; sleep 0.1; done
"$million" rss "$serve_pid" >"$work/rss.log" &
pids+=($!)
max_rss_mib() { awk '$2 > m {m = $2} END {printf "%.0f", m / 1024}' "$work/rss.log"; }
hwm_mib() { awk 'END {printf "%.0f", $3 / 1024}' "$work/rss.log"; }

mb=bench@example.com
mailbox_args=(mailbox add "$mb")
if [ -n "${SATCHEL_BENCH_S3_URL:-}" ]; then
  "$bin" repo add bench-s3 --s3 "$SATCHEL_BENCH_S3_URL" --endpoint "${SATCHEL_BENCH_S3_ENDPOINT:?}" >/dev/null
  mailbox_args+=(--repo bench-s3)
  # The offline repositories in the same bucket, as several nodes would keep them.
  "$bin" offline defaults --store bench-s3 >/dev/null
fi
"$bin" "${mailbox_args[@]}" >/dev/null

# --- import, chunk by chunk ---------------------------------------------------
# The generator writes a chunk, prints its JSON line, and waits until the chunk is
# deleted before it writes the next: one zstd stream over the whole set.
if [ -n "${SATCHEL_BENCH_CHUNKS:-}" ]; then
  # Followed as it grows: the generator may still be writing later chunks.
  exec {genfd}< <(tail -n +1 -f "$SATCHEL_BENCH_CHUNKS")
  pids+=($!)
else
  coproc GEN { benches/generate-mailbox.py "$gen" --messages "$messages" --chunk "$chunk" --wait-deleted; }
  pids+=("$GEN_PID")
  exec {genfd}<&"${GEN[0]}" # bash drops GEN[] when the generator ends; its last line may be unread
fi
# --- search: ten queries of the search language --------------------------------
queries=(
  'razor'                                  # one word
  'spamassassin razor'                     # words, ANDed
  '"spam assassin"'                        # phrase
  'from:wstearns'                          # sender
  'subject:satellite'                      # subject
  'razor after:2010-01-01 before:2011-01-01' # date range
  'linux OR freebsd'                       # OR
  'razor NOT spamassassin'                 # NOT
  'subject:(perl OR python) NOT subject:re' # fields, OR, NOT
  '"mailing list" after:2020-06-01'        # phrase and date
)
# search LIMIT REPEAT BUDGET: the queries through the HTTP API; JSON on stdout.
search() { "$million" search "$mb" --limit "$1" --repeat "$2" --budget "$3" "${queries[@]}"; }

# --- offline repository and laptop (once, after chunk $offline_after) ---------
# The last line `million counted` writes to stderr: {"up","down","bytes","seconds",…}.
wire() { python3 -c "import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(f'{v:.2f}' if isinstance(v, float) else v)" "$(tail -1 "$work/$1.wire")" "$2"; }
lport=$(port)
laptop() { SATCHEL_HOME="$home" "$million" counted --listen "127.0.0.1:$lport" --upstream "127.0.0.1:$sport" -- "$@"; }
offline_and_laptop() {
  say "offline and laptop, at $total messages in the archive:"
  "$bin" user add bench --password-stdin <<<"bench-password" >/dev/null
  "$bin" mailbox grant "$mb" bench >/dev/null
  "$bin" offline enable "$mb" >/dev/null
  local t0 before
  t0=$(now)
  "$bin" offline sync-now "$mb" >/dev/null
  say "offline full build: $(since "$t0") s, $(bytes_of "$data/offline") bytes on disk"
  laptop "$bin" laptop setup --server "http://127.0.0.1:$lport" --user bench --password-stdin \
    <<<"bench-password" >/dev/null 2>"$work/setup.wire"
  laptop /usr/bin/time -f %M -o "$work/laptop-rss" "$bin" laptop sync --json >"$work/sync1.json" 2>"$work/sync1.wire"
  say "laptop first sync: $(wire sync1 seconds) s, $(wire sync1 bytes) bytes on the wire, RSS max $(($(cat "$work/laptop-rss") / 1024)) MiB, local index $(bytes_of "$home/index") bytes, local copy $(bytes_of "$home/replicas") bytes"
  laptop "$bin" laptop sync --json >/dev/null 2>"$work/sync2.wire"
  say "laptop no-change sync: $(wire sync2 bytes) bytes on the wire (up $(wire sync2 up), down $(wire sync2 down))"
  # 1,000 new messages, numbered past the set (distinct from every message of it).
  benches/generate-mailbox.py "$gen-new" --messages 1000 --chunk 1000 --offset "$messages" >/dev/null
  "$bin" import "$mb" "$gen-new/chunk-0000.mbox" >/dev/null
  total=$((total + 1000))
  before=$(bytes_of "$data/offline")
  t0=$(now)
  "$bin" offline sync-now "$mb" >/dev/null
  say "offline update after 1,000 new: $(since "$t0") s, +$(($(bytes_of "$data/offline") - before)) bytes on disk"
  laptop "$bin" laptop sync --json >/dev/null 2>"$work/sync3.wire"
  say "laptop sync of the 1,000 new: $(wire sync3 seconds) s, $(wire sync3 bytes) bytes on the wire"
  rm -rf "$gen-new"
}

# --- import, chunk by chunk ---------------------------------------------------
# After each chunk: the time until its last message is found, the service's RSS,
# and a quick search sample (each query 3 times, limit 50) to show the trend.
offline_after="${SATCHEL_BENCH_OFFLINE_AFTER:-}"
total=0 import_secs=0
say "| chunk | messages in archive | import s | to searchable s | msg/s | service RSS max MiB | data folder GB | search p50 / p99 ms | load (1 min) |"
while read -r line <&"$genfd"; do
  if [ "$(field "$line" ".get('total') is not None")" = True ]; then
    set_line="$line"
    break
  fi
  path=$(field "$line" "['path']") count=$(field "$line" "['count']") probe=$(field "$line" "['probe']")
  n=$(field "$line" "['chunk']")
  t0=$(now)
  out=$("$bin" import "$mb" "$path" --json)
  t_import=$(since "$t0")
  [ "$(field "$out" "['imported']")" = "$count" ] || { echo "chunk not fully imported: $out" >&2; exit 1; }
  "$million" probe "$mb" "$probe" >/dev/null
  t_search=$(since "$t0")
  load=$(cut -d' ' -f1 /proc/loadavg)
  rm -rf "$path"
  total=$((total + count))
  import_secs=$(python3 -c "print($import_secs + $t_search)")
  sample=$(search 50 3 5)
  echo "$sample" >"$work/search-after-chunk-$n.json"
  say "| $n | $total | $t_import | $t_search | $(python3 -c "print(round($count / $t_search))") | $(max_rss_mib) | $(python3 -c "print(f'{$(bytes_of "$data") / 1e9:.2f}')") | $(field "$sample" "['p50_ms']") / $(field "$sample" "['p99_ms']") | $load |"
  if [ "$n" = "$offline_after" ]; then offline_and_laptop; fi
done
raw=$(field "$set_line" "['raw_bytes']") zst=$(field "$set_line" "['zstd3_bytes']")
say "set: $(field "$set_line" "['total']") messages, raw $raw bytes ($(python3 -c "print(f'{$raw / 1e9:.2f}')") GB), one zstd -3 stream $zst bytes ($(python3 -c "print(f'{$zst / 1e9:.2f}')") GB)"
say "import to searchable: $(field "$set_line" "['total']") messages in $(python3 -c "print(f'{$import_secs:.1f}')") s = $(python3 -c "print(round($(field "$set_line" "['total']") / $import_secs))") messages/s (goal >= 3,000/s, durable)"
python3 - "$work/serve.log" <<'PY' | tee -a "$results"
import re, sys
# The service's own account of each import batch (satchel-archive, debug level).
sums, batches = {"prepare_ms": 0, "store_ms": 0, "index_ms": 0}, 0
for line in open(sys.argv[1], errors="replace"):
    if "batch archived" in line:
        batches += 1
        for k in sums:
            m = re.search(k + r"\W+(\d+)", line)
            sums[k] += int(m.group(1)) if m else 0
print(f"service, {batches} import batches: " + ", ".join(f"{k[:-3]} {v / 1000:.1f} s" for k, v in sums.items())
      + " (prepare: hash, zstd, MIME parse; store: pack + fsync + catalog; index: tantivy add)")
PY
say "data folder after import: $(bytes_of "$data") bytes; packs $(bytes_of "$data/repositories") bytes, index $(bytes_of "$data/index") bytes"
if [[ "${SATCHEL_BENCH_CATALOG:-}" == postgres* ]] && command -v psql >/dev/null; then
  say "PostgreSQL catalog: $(psql "$SATCHEL_BENCH_CATALOG" -Atc 'SELECT pg_database_size(current_database())') bytes"
fi

for limit in ${SATCHEL_BENCH_LIMITS:-50 10}; do
  s=$(search "$limit" "$repeat" "${SATCHEL_BENCH_BUDGET:-60}")
  echo "$s" >"$work/search-$limit.json"
  say "search at $total messages, limit $limit, ${#queries[@]} queries x $repeat: p50 $(field "$s" "['p50_ms']") ms, p99 $(field "$s" "['p99_ms']") ms, max $(field "$s" "['max_ms']") ms (goal p99 < 50 ms)"
  python3 - "$s" <<'PY' | tee -a "$results"
import json, sys
s = json.loads(sys.argv[1])
print("| query | hits | runs | p50 ms | p99 ms |")
for q in s["queries"]:
    print(f"| `{q['query']}` | {q['hits']} | {q['runs']} | {q['p50_ms']:.1f} | {q['p99_ms']:.1f} |")
PY
done
[ -n "$offline_after" ] || offline_and_laptop

say "service RSS: max sampled VmRSS $(max_rss_mib) MiB, VmHWM $(hwm_mib) MiB (goal < 1024 MiB throughout)"
say "load after: $(uptime)"
say "results in $results"
