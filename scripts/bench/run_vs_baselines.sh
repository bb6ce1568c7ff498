#!/usr/bin/env bash
# One command for scripts/bench/vs_baselines.py: sets up .venv (synaray[local], which serves
# the local model) with scripts/bootstrap.sh, then a SEPARATE virtualenv for the bench with
# synaray and the `bench` extra (dspy, gepa) — never installed into .venv, whose litellm is
# pinned — and runs the bench there. Arguments go to vs_baselines.py (see --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/bootstrap.sh
BENCH_VENV="${SYNARAY_BENCH_VENV:-.bench-venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$BENCH_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$BENCH_VENV"
fi
stamp="$BENCH_VENV/.synaray-bench-installed"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "run_vs_baselines: installing synaray[bench] into $BENCH_VENV" >&2
  "$BENCH_VENV/bin/python" -m pip install --quiet -e ".[bench]"
  echo "$want" > "$stamp"
fi
export SYNARAY_VENV="${SYNARAY_VENV:-.venv}"
exec "$BENCH_VENV/bin/python" scripts/bench/vs_baselines.py "$@"
