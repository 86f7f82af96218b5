#!/usr/bin/env bash
# The one command that installs everything and runs every test: lint, then pytest with the
# real Kafka broker and PostgreSQL (CI=true: those tests must run, never skip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --full
export CI="${CI:-true}"
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure here, not a pass" >&2
  exit 1
fi
exit "$status"
