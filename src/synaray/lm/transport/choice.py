"""Which transport sends a request: the setting (argument, environment) and the rule."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from synaray.errors import ConfigError

__all__ = ["BODY_KEYS", "CONTROL_KEYS", "TRANSPORTS", "TRANSPORT_ENV", "check_transport",
           "choose_transport", "transport_setting"]

TRANSPORTS = ("auto", "litellm", "http")
#: Overrides `LanguageModel(transport="auto")` for the whole process ("litellm" or "http").
TRANSPORT_ENV = "SYNARAY_LM_TRANSPORT"

#: Request keys that steer the call and are not sent in the JSON body as they are.
CONTROL_KEYS = frozenset({"model", "api_base", "api_key", "timeout", "num_retries",
                          "max_retries", "extra_body", "extra_headers"})
#: OpenAI chat-completion parameters that litellm sends unchanged for `openai/...` models.
#: A request with any other key goes through litellm under "auto" (litellm may translate
#: or drop it); under "http" it is sent in the body as is.
BODY_KEYS = frozenset({
    "messages", "temperature", "top_p", "n", "stop", "max_tokens", "max_completion_tokens",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "seed",
    "response_format", "user", "tools", "tool_choice", "parallel_tool_calls",
    "reasoning_effort", "service_tier",
})


def check_transport(value: Any, name: str = "transport") -> str:
    """`value` if it names a transport, else a `ConfigError` naming `name`."""
    if value not in TRANSPORTS:
        raise ConfigError(f"Invalid value for {name}. Received: {value!r}. "
                          f"Expected one of {TRANSPORTS}.")
    return value


def transport_setting(configured: str) -> str:
    """The setting in force: the constructor's, unless it is "auto" and `SYNARAY_LM_TRANSPORT`
    names another one."""
    if configured != "auto":
        return configured
    env = os.environ.get(TRANSPORT_ENV)
    if not env:
        return configured
    return check_transport(env.strip().lower(), f"the environment variable {TRANSPORT_ENV}")


def choose_transport(setting: str, request: Mapping[str, Any]) -> str:
    """"http" or "litellm" for this request (litellm argument names) under `setting`.

    "http" sends every `openai/...` request directly (other providers still use litellm).

    "auto" picks "http" for an `openai/...` model with an `api_base`, a key (the request's
    or `OPENAI_API_KEY`) and only parameters in `BODY_KEYS`; anything else (other providers,
    `mock_response`, `stream`, unknown parameters) goes through litellm.
    """
    openai_model = str(request.get("model", "")).startswith("openai/")
    if setting != "auto":
        return "http" if setting == "http" and openai_model else "litellm"
    if not openai_model or not request.get("api_base"):
        return "litellm"
    if not request.get("api_key") and not os.environ.get("OPENAI_API_KEY"):
        return "litellm"
    for key in request:
        if key not in BODY_KEYS and key not in CONTROL_KEYS:
            return "litellm"
    return "http"
