"""Language and embedding models through litellm (or, for OpenAI-compatible chat servers, a
direct HTTP client: `synaray.lm.transport`): retries, a response cache, structured output,
usage accounting, and the bundled local models (`synaray.lm.local`).

Importing this package does not import litellm: it is loaded on the first model call that
needs it.

Example:
    >>> import synaray
    >>> lm = synaray.lm.LanguageModel("local/smollm2-135m")
    >>> lm
    <LanguageModel model=local/smollm2-135m>
"""

from synaray.lm.cache import ResponseCache, cache_key, default_cache_dir
from synaray.lm.embedding_model import EmbeddingModel
from synaray.lm.errors import map_litellm_errors, retry_after_seconds
from synaray.lm.grammar import schema_to_gbnf
from synaray.lm.language_model import STRUCTURED_OUTPUT_MODES, LanguageModel
from synaray.lm.parsing import extract_json
from synaray.lm.results import LMResult
from synaray.lm.retry import RetryPolicy
from synaray.lm.usage import UsageStats, get_usage, reset_usage

__all__ = [
    "STRUCTURED_OUTPUT_MODES",
    "EmbeddingModel",
    "LMResult",
    "LanguageModel",
    "ResponseCache",
    "RetryPolicy",
    "UsageStats",
    "cache_key",
    "default_cache_dir",
    "extract_json",
    "get_usage",
    "map_litellm_errors",
    "reset_usage",
    "retry_after_seconds",
    "schema_to_gbnf",
]
