"""The one translation point from litellm exceptions to synaray errors."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from synaray.errors import (
    LMContextLengthError,
    LMError,
    LMInputError,
    LMRateLimited,
    LMServerError,
    LMTimeout,
)
from synaray.lm._litellm import import_litellm
from synaray.lm.errors import map_litellm_errors, retry_after_seconds, translate_litellm_error


@pytest.fixture(scope="module")
def litellm():
    return import_litellm()


def _cases(litellm):
    args = {"message": "boom", "llm_provider": "openai", "model": "m"}
    return [
        (litellm.RateLimitError(**args), LMRateLimited),
        (litellm.Timeout(**args), LMTimeout),
        (litellm.APIConnectionError(**args), LMServerError),
        (litellm.InternalServerError(**args), LMServerError),
        (litellm.ServiceUnavailableError(**args), LMServerError),
        (litellm.BadRequestError(**args), LMInputError),
        (litellm.AuthenticationError(**args), LMInputError),
        (litellm.NotFoundError(**args), LMInputError),
        (litellm.ContextWindowExceededError(**args), LMContextLengthError),
        (TimeoutError(), LMTimeout),
        (RuntimeError("strange"), LMError),
    ]


def test_each_litellm_exception_maps_to_its_synaray_class(litellm):
    for exc, expected in _cases(litellm):
        mapped = translate_litellm_error(exc, "m")
        assert type(mapped) is expected, (type(exc).__name__, type(mapped).__name__)
        assert str(mapped).startswith("m: ")


def test_retryable_flags(litellm):
    retryable = {type(translate_litellm_error(exc, "m")).__name__: translate_litellm_error(
        exc, "m").retryable for exc, _ in _cases(litellm)}
    assert retryable == {"LMRateLimited": True, "LMTimeout": True, "LMServerError": True,
                         "LMInputError": False, "LMContextLengthError": False,
                         "LMError": False}


def test_context_manager_chains_the_original(litellm):
    original = litellm.RateLimitError(message="slow down", llm_provider="openai", model="m")
    with pytest.raises(LMRateLimited) as info, map_litellm_errors("m"):
        raise original
    assert info.value.__cause__ is original and info.value.status_code == 429


def test_retry_after_is_read_from_the_response_headers(litellm):
    exc = litellm.RateLimitError(message="x", llm_provider="openai", model="m")
    exc.litellm_response_headers = httpx.Headers({"Retry-After": "3"})
    assert translate_litellm_error(exc, "m").retry_after_s == 3.0


def test_retry_after_formats():
    assert retry_after_seconds(None) is None
    assert retry_after_seconds({"x": "1"}) is None
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds(httpx.Headers({"Retry-After-Ms": "20"})) == 0.02
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after_seconds({"Retry-After": later}) <= 31
    assert retry_after_seconds({"Retry-After": "soon"}) is None


def test_synaray_errors_pass_through():
    with pytest.raises(LMInputError), map_litellm_errors("m"):
        raise LMInputError("already mapped")


# What providers answer when the prompt does not fit the model's context window.
CONTEXT_MESSAGES = [
    "This model's maximum context length is 4096 tokens. However, you requested 6543 tokens "
    "(6031 in the messages, 512 in the completion).",                           # OpenAI
    "Requested tokens (6031) exceed context window of 4096",                    # llama-cpp-py
    "the request exceeds the available context size, try increasing it",       # llama.cpp
    "The decoder prompt (length 9000) is longer than the maximum model length of 8192.",  # vLLM
    "prompt is too long: 210000 tokens > 200000 maximum",                       # Anthropic
    "Error code: context_length_exceeded",                                      # code only
]


@pytest.mark.parametrize("message", CONTEXT_MESSAGES)
def test_a_prompt_too_long_for_the_context_is_its_own_input_error(litellm, message):
    for status in (400, 413):
        exc = litellm.BadRequestError(message=message, llm_provider="openai", model="m")
        exc.status_code = status
        mapped = translate_litellm_error(exc, "m")
        assert type(mapped) is LMContextLengthError, (status, message)
        assert isinstance(mapped, LMInputError) and not mapped.retryable


def test_other_bad_requests_and_statuses_stay_what_they_were(litellm):
    args = {"llm_provider": "openai", "model": "m"}
    assert type(translate_litellm_error(
        litellm.BadRequestError(message="unknown field `foo`", **args), "m")) is LMInputError
    # a 5xx that mentions the context is the server's failure: retried as before
    server = litellm.InternalServerError(message=CONTEXT_MESSAGES[1], **args)
    assert type(translate_litellm_error(server, "m")) is LMServerError
    # a rate limit on tokens per minute is not a context overflow
    limited = litellm.RateLimitError(message="too many tokens per minute", **args)
    assert type(translate_litellm_error(limited, "m")) is LMRateLimited
