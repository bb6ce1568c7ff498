#!/usr/bin/env bash
# The test command of the README: sets up .venv if needed, then runs the whole test suite
# (unit tests, and integration tests against the real local model and a local Ray cluster).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/data -q`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
VENV="${SYNARAY_VENV:-.venv}"
exec "$VENV/bin/python" -m pytest "$@"
