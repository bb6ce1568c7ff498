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
                _CONFIGURED = True
    return litellm


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
