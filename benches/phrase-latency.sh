#!/bin/bash
# Phrase search latency of two satchel builds side by side (BENCHMARKS.md,
# index size): each has a service on its own port and a laptop home (e.g. two
# OUT folders of benches/index-size.sh with `satchel serve` started again on
# them). Runs the query 5 times (RUNS=N for another count), interleaved, and
# prints the median wall time of the whole command, online and offline,
# before and after.
#   benches/phrase-latency.sh QUERY LIMIT OLD_BIN OLD_PORT OLD_HOME NEW_BIN NEW_PORT NEW_HOME
# (the services' admin password in SATCHEL_ADMIN_PASSWORD)
set -e
Q=$1; LIMIT=$2; OB=$3; OP=$4; OH=$5; NB=$6; NP=$7; NH=$8
ms() { s=$(date +%s%N); "$@" > /dev/null 2>&1; e=$(date +%s%N); echo $(( (e-s)/1000000 )); }
on() { env SATCHEL_SERVER=http://127.0.0.1:$1 SATCHEL_USER=admin SATCHEL_PASSWORD="$SATCHEL_ADMIN_PASSWORD" "$2" search "$Q" --json --limit "$LIMIT"; }
off() { env SATCHEL_HOME="$1" "$2" laptop search "$Q" --json --limit "$LIMIT"; }
for i in $(seq "${RUNS:-5}"); do
  echo "$(ms on "$OP" "$OB") $(ms on "$NP" "$NB") $(ms off "$OH" "$OB") $(ms off "$NH" "$NB")"
done | python3 -c '
import sys, statistics
rows = [list(map(int, l.split())) for l in sys.stdin]
m = [statistics.median(c) for c in zip(*rows)]
print("median ms: online before %d after %d; offline before %d after %d" % tuple(m))'
