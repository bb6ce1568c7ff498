#!/usr/bin/env bash
# The main job of the README: sets up .venv if needed, then runs scripts/main_job.py on a local
# Ray cluster with the local model. Extra arguments go to main_job.py (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
VENV="${SYNARAY_VENV:-.venv}"
exec "$VENV/bin/python" scripts/main_job.py "$@"
