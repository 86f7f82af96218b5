#!/usr/bin/env bash
# The one command that installs everything and runs every test: lint, then pytest with the
# real Kafka broker and PostgreSQL (CI=true: those tests must run, never skip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --full
export CI="${CI:-true}"
.venv/bin/ruff check .
# The independent Go verifier (docs/tlog.md): modules from the Go module proxy,
# pinned by go.mod and go.sum; tests/goverify/test_goverify.py runs the binary.
export PATH="$PATH:/usr/local/go/bin"
(cd tests/goverify && go vet . && go build -mod=readonly -o ../../build/goverify .)
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure here, not a pass" >&2
  exit 1
fi
exit "$status"
