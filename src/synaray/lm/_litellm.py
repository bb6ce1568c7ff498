"""The one place that imports litellm, lazily, with the environment it needs.

litellm takes seconds to import and, unless told otherwise, downloads a price file at import.
`import synaray` and `import synaray.lm` must stay fast, so every module of `synaray.lm` gets
litellm from `import_litellm()` inside the function that needs it.
"""

from __future__ import annotations

import os
import threading
from types import ModuleType

__all__ = ["NO_SDK_RETRIES", "import_litellm"]

_LOCK = threading.Lock()
_CONFIGURED = False


def import_litellm() -> ModuleType:
    """Import litellm (once), with the local price map and its console banners turned off."""
    global _CONFIGURED
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    if not _CONFIGURED:
        with _LOCK:
            if not _CONFIGURED:
                # litellm prints a "Give Feedback / Get Help" banner on every mapped error; the
                # errors reach users through synaray's own messages instead.
                litellm.suppress_debug_info = True
                _freeze_import_time_objects()
                _CONFIGURED = True
    return litellm


def _freeze_import_time_objects() -> None:
    """Move what exists now (mostly imported modules: litellm alone is ~300k objects) out
    of the cyclic garbage collector's reach (`gc.freeze`).

    Without it every full collection walks litellm's tables again: ~0.5 s each on a busy
    2-core machine, about once per 400 LM calls, so ~1 ms per call, a quarter of litellm's
    own CPU per call. Frozen objects are still freed by reference counting; only cycles
    among them are never collected. `SYNARAY_GC_FREEZE=0` turns this off.
    """
    if os.environ.get("SYNARAY_GC_FREEZE", "1").strip().lower() in ("0", "false", "no"):
        return
    import gc

    gc.collect()  # garbage of the import itself is freed, not frozen
    gc.freeze()


class _ZeroRetries(int):
    """The integer 0 that is truthy.

    litellm's OpenAI embedding path does `max_retries = max_retries or DEFAULT_MAX_RETRIES`,
    which turns a plain 0 into 2 hidden retries inside the OpenAI SDK (3 requests per
    attempt). Every retry must be ours (`synaray.lm.retry`), so requests pass this instead.
    """

    def __new__(cls) -> _ZeroRetries:
        return super().__new__(cls, 0)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "0"


#: Pass as `max_retries` to litellm: no retries inside litellm or the OpenAI SDK.
NO_SDK_RETRIES = _ZeroRetries()
