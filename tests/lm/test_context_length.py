"""A prompt longer than the model's context window is an `LMContextLengthError`, whatever
the transport (the litellm mapping is checked in test_lm_errors.py), and the circuit
breaker does not take it for a failing provider."""

from __future__ import annotations

import pytest

from helpers.openai_stub import StubReply
from synaray.errors import LMContextLengthError, LMFailuresError, LMInputError
from synaray.lm import LanguageModel
from synaray.lm.circuit_breaker import CircuitBreaker
from synaray.lm.transport import openai_stream
from synaray.optimizers.protocol import EvalResult

MESSAGES = [{"role": "user", "content": "Is this plausible?"}]
OPENAI_BODY = {"error": {
    "message": "This model's maximum context length is 4096 tokens. However, you requested "
               "6031 tokens (6031 in the messages, None in the completion).",
    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}


@pytest.fixture(autouse=True)
def streaming_not_learned(monkeypatch):
    monkeypatch.setattr(openai_stream, "_NO_STREAM_ENDPOINTS", set())


@pytest.mark.parametrize("body", [
    OPENAI_BODY,
    {"error": {"message": "the request exceeds the available context size, try increasing "
                          "it", "type": "exceed_context_size_error", "code": 400}},
    {"object": "error", "message": "This model's maximum context length is 2048 tokens.",
     "code": 400},
])
@pytest.mark.parametrize("stream", [False, True])
async def test_direct_transport_maps_a_context_overflow(openai_stub, body, stream):
    openai_stub.script(StubReply(status=400, body=body))
    lm = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False,
                       transport="http", loop_stop="stream" if stream else "after")
    result = await lm(MESSAGES)
    assert result.error_type == "LMContextLengthError", result.error
    assert result.attempts == 1  # never retried
    assert openai_stub.request_count == 1
    assert [bool(b.get("stream")) for b in openai_stub.requests] == [stream]


async def test_other_bad_requests_stay_input_errors(openai_stub):
    openai_stub.script(StubReply(status=400, body={"error": {"message": "bad grammar"}}))
    lm = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False,
                       transport="http")
    result = await lm(MESSAGES)
    assert result.error_type == "LMInputError"


async def test_a_stream_that_fails_before_its_first_event_is_resent_plainly(openai_stub):
    """llama-cpp-python answers a streamed prompt longer than its context with an empty 200
    stream: the plain resend carries the real error, and streaming is not given up."""
    openai_stub.script(StubReply("", interrupted=True), StubReply(status=400, body=OPENAI_BODY))
    request = {"model": "openai/test", "api_base": openai_stub.api_base, "api_key": "k",
               "messages": MESSAGES, "timeout": 5.0}
    with pytest.raises(LMContextLengthError) as caught:
        await openai_stream.send_chat(request, "openai/test", stream=True)
    assert isinstance(caught.value, LMInputError) and caught.value.status_code == 400
    assert [bool(b.get("stream")) for b in openai_stub.requests] == [True, False]
    assert not openai_stream.streaming_refused(openai_stub.api_base)


def test_an_error_event_inside_a_stream_is_classified_too():
    error = openai_stream._stream_error("m", {"message": "prompt is too long", "code": 400})
    assert type(error) is LMContextLengthError
    coded = openai_stream._stream_error("m", {"message": "x", "code": "context_length_exceeded"})
    assert type(coded) is LMContextLengthError
    assert type(openai_stream._stream_error("m", {"message": "x", "code": 400})) is LMInputError


@pytest.mark.llm
@pytest.mark.parametrize("transport", ["http", "litellm"])
async def test_the_local_server_refuses_a_long_prompt_as_a_context_overflow(local_lm_server,
                                                                             transport):
    """The real llama.cpp server (n_ctx 4096), one call per transport: the prompt is
    rejected before any generation, so this costs a tokenisation only."""
    lm = local_lm_server.language_model(cache=False, transport=transport)
    result = await lm([{"role": "user", "content": "word " * 6000}])
    assert result.error_type == "LMContextLengthError", result.error
    assert "context" in result.error
    assert result.attempts == 1


# --- the circuit breaker ---------------------------------------------------------------------
def outcome(kind: str) -> EvalResult:
    """One single-call result: "ok", "overflow" (the prompt did not fit) or "down" (5xx)."""
    errors = {"ok": None, "down": "LMServerError: m: stub error 500",
              "overflow": "LMContextLengthError: m: BadRequestError (HTTP 400): This model's "
                          "maximum context length is 4096 tokens; however you requested 6031"}
    return EvalResult("c", "e", "train", 0.0, None, error=errors[kind], lm_calls=1,
                      lm_failures=int(kind != "ok"))


def test_context_overflows_do_not_count_toward_the_failure_rate():
    """A few-shot candidate whose demos overflow fails on every example of its own; other
    candidates work: mostly overflows in the window, and the run goes on."""
    breaker = CircuitBreaker(first_calls=20, window=20, max_failure_rate=0.5)
    breaker.update([outcome("ok")] * 5)
    for _ in range(10):
        breaker.update([outcome("overflow")] * 8 + [outcome("ok")] * 2)
    assert breaker.failures == 80 and breaker.context_failures == 80
    # the same share of provider failures trips: what the window is for
    with pytest.raises(LMFailuresError, match="of the last 20 LM calls failed") as info:
        breaker.update([outcome("down")] * 11)
    assert "80 of them: prompts too long for the model's context" in str(info.value)


def test_a_program_whose_every_prompt_overflows_stops_at_once():
    breaker = CircuitBreaker(first_calls=20)
    with pytest.raises(LMFailuresError, match="all of the first 20 LM calls failed") as info:
        breaker.update([outcome("overflow")] * 20)
    message = str(info.value)
    assert "all of them: prompts too long for the model's context" in message
    assert "fewer or shorter demos" in message and "fix the prompts" in message


def test_overflows_are_counted_per_failed_call_of_a_result():
    two_calls = EvalResult("c", "e", "train", 0.0, None, lm_calls=3, lm_failures=2,
                           error=outcome("overflow").error + "; " + outcome("down").error)
    breaker = CircuitBreaker(first_calls=0, window=100)
    breaker.update([two_calls])
    assert (breaker.calls, breaker.failures, breaker.context_failures) == (3, 2, 1)
