#!/usr/bin/env bash
# Install what auditledger needs on a fresh Debian machine: a Python venv with the package
# (editable) and, with --full, what the test suite needs too (Java + Maven for the real
# Kafka broker, Debian's PostgreSQL, Go for the independent verifier, ssh-agent and a
# Go-built litewitness for the witness tests, Debian's Chromium and chromedriver for the
# browser tests). Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

full=0
[ "${1:-}" = "--full" ] && full=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "auditledger needs Python 3.11+ (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv 2>/dev/null || { apt_install python3-venv; "$PY" -m venv .venv; }
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$full" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test,profile]'
else
  .venv/bin/python -m pip install -q -e .
fi

# The PDF report writes names such as "Łódź" in DejaVu Sans; without it, in Latin-1.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || apt_install fonts-dejavu-core \
  || echo "note: fonts-dejavu-core not installed: PDF reports fall back to Latin-1" >&2

if [ "$full" = 1 ]; then
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
  # Go, for the independent verifier in tests/goverify (its go.mod needs Go 1.26+; the
  # machine image ships it in /usr/local/go, Debian's golang-go is the fallback).
  export PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null || apt_install golang-go
  gov=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
  if [ "$(printf '1.26\n%s\n' "$gov" | sort -V | head -n1)" != 1.26 ]; then
    echo "tests/goverify needs Go 1.26+ (found: ${gov:-none})" >&2
    exit 1
  fi
  # The web pages' tests drive Debian's headless Chromium through Selenium (tests/web):
  # the browser comes from apt, never from a download at test time.
  { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } \
    || apt_install chromium chromium-driver
  # Fetch the Kafka broker jars once, now, so a network problem shows here and not as a
  # test failure.
  (cd infra/kafka && mvn -q -B dependency:copy-dependencies -DoutputDirectory=libs \
     -DincludeScope=runtime)
  # The real witness the witness tests run (tests/witness/conftest.py): litewitness from
  # the Go module proxy (needs Go 1.24+; Debian's golang-go is older on bookworm) and an
  # ssh-agent to hold its key.
  command -v ssh-agent >/dev/null || apt_install openssh-client
  # Node.js 18+ and openssl 3 (pkeyutl -rawin) run the producer examples of
  # docs/producers.md and the test vectors' independent check (tests/testvectors).
  command -v node >/dev/null || apt_install nodejs
  command -v openssl >/dev/null || apt_install openssl
  command -v curl >/dev/null || apt_install curl
  bash infra/witness/build
fi
