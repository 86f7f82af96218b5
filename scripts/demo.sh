#!/usr/bin/env bash
# The one command that installs auditledger and runs it: loads the example controllers
# into ./demo-data (embedded SQLite, nothing else needed), verifies the log, then serves
# the API on http://127.0.0.1:8080 . Extra arguments go to `auditledger demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/auditledger demo --data demo-data "$@"
