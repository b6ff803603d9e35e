#!/bin/bash
# The index_size bench (crates/satchel/benches/index_size.rs) as a script, to
# measure a prebuilt binary (e.g. the one before a change; the bench builds only
# the current tree). Prints the hit counts of five queries and the median time
# of PHRASE online and offline, and each index's bytes (by file extension)
# beside the packs and the laptop copy. OUT keeps the data folder and home.
#   benches/index-size.sh BIN MAILDIR OUT [PHRASE]
set -e
BIN=$1; MAILDIR=$2; OUT=$3; PHRASE=${4:-'"spam assassin"'}
rm -rf "$OUT"; mkdir -p "$OUT"
PORT=$((20000 + RANDOM % 10000))
export SATCHEL_ADMIN_PASSWORD=admin-pw-1
$BIN serve --listen 127.0.0.1:$PORT --data "$OUT/data" > "$OUT/serve.log" 2>&1 &
SPID=$!
sleep 5
A="env SATCHEL_SERVER=http://127.0.0.1:$PORT SATCHEL_USER=admin SATCHEL_PASSWORD=admin-pw-1 $BIN"
L="env SATCHEL_HOME=$OUT/home $BIN laptop"
$A mailbox add bench@example.com
$A import bench@example.com "$MAILDIR" > "$OUT/import.log"
echo bench-password | $A user add bench --password-stdin
$A mailbox grant bench@example.com bench
$A offline enable bench@example.com
$A offline sync-now > /dev/null
echo bench-password | $L setup --server http://127.0.0.1:$PORT --user bench --password-stdin
$L sync --json > "$OUT/sync.json"
bytes() { find "$1" -type f -printf "%s\n" | awk '{s+=$1} END {print s+0}'; }
last=$(bytes "$OUT/data/index"); same=0
while [ $same -lt 5 ]; do sleep 1; now=$(bytes "$OUT/data/index"); if [ "$now" = "$last" ]; then same=$((same+1)); else same=0; fi; last=$now; done
byext() { find "$1" -maxdepth 1 -type f -printf "%s %f\n" | awk '{n=split($2,a,"."); e=(n>1)?a[n]:"(none)"; s[e]+=$1} END {for (e in s) printf "%s %.2f MB, ", e, s[e]/1e6; print ""}'; }
median() { sort -n | sed -n 3p; }
time5() { for i in 1 2 3 4 5; do s=$(date +%s%N); "$@" > /dev/null; e=$(date +%s%N); echo $(( (e-s)/1000000 )); done | median; }
for q in razor subject:satellite from:wstearns '"spam assassin"' 'razor NOT spamassassin'; do
  echo "online $q: $($A search "$q" --json --limit 10000 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hits"]))')"
done
echo "online ms $PHRASE: $(time5 $A search "$PHRASE" --json --limit 10000)"
echo "service index $(bytes $OUT/data/index) packs $(bytes $OUT/data/repositories)"
echo "service files: $(byext $OUT/data/index)"
kill $SPID; wait $SPID 2>/dev/null || true
for q in razor subject:satellite from:wstearns '"spam assassin"' 'razor NOT spamassassin'; do
  echo "offline $q: $($L search "$q" --json --limit 10000 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hits"]))')"
done
echo "offline ms $PHRASE: $(time5 $L search "$PHRASE" --json --limit 10000)"
echo "laptop index $(bytes $OUT/home/index) copy $(bytes $OUT/home/replicas)"
echo "laptop files: $(byext $OUT/home/index)"
