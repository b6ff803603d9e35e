#!/usr/bin/env python3
"""Writes the malformed-input fixtures of the end-to-end tests.

Each .eml is broken in one way real mail is broken. Each carries a distinct marker
word (mfx<N>word) in a part the parser can still reach, so a test can check that the
message is archived byte-for-byte AND still searchable as far as it parses. Two
files are not mail at all and must be reported, not archived.

    scripts/make-malformed-fixtures.py crates/satchel/tests/fixtures/malformed
"""
import os, sys

out = sys.argv[1] if len(sys.argv) > 1 else "crates/satchel/tests/fixtures/malformed"
os.makedirs(out, exist_ok=True)

H = b"From: Mallory <mallory@example.net>\r\nTo: alice@example.com\r\nDate: Tue, 03 Sep 2002 10:00:00 +0000\r\n"

cases = {
    # multipart whose closing boundary never comes
    "01-unclosed-boundary.eml": H + b"Subject: unclosed mfx1word\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n--XYZ\r\nContent-Type: text/plain\r\n\r\n"
        b"first part mfx1body\r\n--XYZ\r\nContent-Type: text/plain\r\n\r\nsecond part, cut off",
    # an attachment whose base64 is not base64
    "02-bad-base64.eml": H + b"Subject: bad base64 mfx2word\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b1\r\nContent-Type: application/pdf; name=\"mfx2report.pdf\"\r\nContent-Disposition: attachment; filename=\"mfx2report.pdf\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!!not*base64$$$\x00\x01\r\n--b1--\r\n",
    # an encoded-word that does not decode
    "03-bad-encoded-word.eml": H + b"Subject: =?utf-8?B?!!!notb64?= mfx3word =?x-unknown?Q?abc?=\r\n\r\nbody mfx3body\r\n",
    # raw 8-bit Latin-1 in headers and body, no charset declared
    "04-raw-8bit.eml": H.replace(b"Mallory", b"Mall\xf6ry") + b"Subject: caf\xe9 mfx4word\r\n\r\nd\xe9j\xe0 vu mfx4body \xff\xfe\r\n",
    # headers only, no body, no final newline
    "05-no-body.eml": H + b"Subject: headers only mfx5word",
    # NUL bytes inside the body
    "06-nul-bytes.eml": H + b"Subject: nul mfx6word\r\n\r\nbefore\x00\x00after mfx6body\r\n",
    # a part boundary that was never declared, nested multipart without boundary
    "07-undeclared-boundary.eml": H + b"Subject: undeclared mfx7word\r\nContent-Type: multipart/alternative\r\n\r\n"
        b"--nothing\r\nContent-Type: text/plain\r\n\r\nmfx7body\r\n--nothing--\r\n",
    # a header line without a colon, mixed CRLF and LF line ends
    "08-garbage-header.eml": H + b"Subject: garbage mfx8word\nthis line is not a header\r\nX-Ok: yes\n\nbody mfx8body\n",
    # quoted-printable with invalid escapes
    "09-bad-qp.eml": H + b"Subject: qp mfx9word\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"=ZZ=4 soft=\r\nbreak mfx9body =E9=\r\n",
    # a 100 KB header line
    "10-huge-header.eml": H + b"Subject: huge mfx10word\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\nbody mfx10body\r\n",
}
for name, data in cases.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)

# Not mail: an image, and an empty file.
with open(os.path.join(out, "notmail.png"), "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64)))
open(os.path.join(out, "empty.eml"), "wb").close()
print(f"wrote {len(cases) + 2} fixtures to {out}")
