"""A prompt longer than the model's context window is an `LMContextLengthError`, whatever
the transport (the litellm mapping is checked in test_lm_errors.py)."""

from __future__ import annotations

import pytest

from helpers.openai_stub import StubReply
from synaray.errors import LMContextLengthError, LMInputError
from synaray.lm import LanguageModel
from synaray.lm.transport import openai_stream

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
