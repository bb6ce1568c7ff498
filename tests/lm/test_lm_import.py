"""`import synaray.lm` stays light: litellm, llama_cpp and onnxruntime load on first use."""

from __future__ import annotations

import subprocess
import sys

import synaray.lm
import synaray.lm.local

CODE = """
import sys
import synaray.lm, synaray.lm.local
from synaray.lm import LanguageModel, EmbeddingModel
LanguageModel("local/smollm2-135m"); EmbeddingModel("local/minilm")
print(sorted(m for m in ("litellm", "llama_cpp", "onnxruntime", "tokenizers", "ray")
             if m in sys.modules))
"""


def test_import_and_construction_load_no_heavy_module():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_all_lists_exactly_the_public_names():
    for module in (synaray.lm, synaray.lm.local):
        public = {name for name in vars(module) if not name.startswith("_")
                  and not isinstance(getattr(module, name), type(sys))}
        public -= {"annotations"}
        assert sorted(module.__all__) == sorted(public), module.__name__
