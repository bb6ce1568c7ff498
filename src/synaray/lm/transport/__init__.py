"""How a `LanguageModel` request reaches the provider: litellm, or plain HTTP.

Two transports send the same request dict (built by `LanguageModel._request`, in litellm's
argument names) and hand back a `ChatReply`:

- `litellm`: `litellm.acompletion`, for every provider litellm knows;
- `http`: a direct OpenAI-compatible `POST {api_base}/chat/completions` over one shared
  aiohttp keep-alive connection pool per process and event loop
  (`synaray.lm.transport.openai_http`), for `openai/...` models with an `api_base` (vLLM,
  llama.cpp, SGLang, a hosted OpenAI endpoint) and the bundled `local/...` models. It costs
  a fraction of litellm's CPU per call (see docs/architecture.md, "Cost of one LM call").

`choose_transport` decides per request: "auto" (the default) takes `http` where it applies
and litellm everywhere else; `LanguageModel(transport="litellm")` or the environment
variable `SYNARAY_LM_TRANSPORT=litellm` forces litellm. Retries, timeouts, rate limits,
call slots, the cache, structured output, usage and error classes are shared code, so both
transports behave alike (tests/lm/test_language_model.py runs its suite over both).

Example:
    >>> from synaray.lm.transport import choose_transport
    >>> request = {"model": "openai/m", "api_base": "http://127.0.0.1:8080/v1",
    ...            "api_key": "sk-local", "messages": [], "temperature": 0.0}
    >>> choose_transport("auto", request)
    'http'
    >>> choose_transport("auto", {**request, "model": "gemini/gemini-2.0-flash"})
    'litellm'
"""

from synaray.lm.transport.choice import (
    TRANSPORT_ENV,
    TRANSPORTS,
    check_transport,
    choose_transport,
)
from synaray.lm.transport.reply import ChatReply

__all__ = ["TRANSPORTS", "TRANSPORT_ENV", "ChatReply", "check_transport", "choose_transport"]
