"""The direct HTTP transport: when it is chosen, what it sends, its pool, errors and cost.

The behaviour shared with litellm (retries, timeouts, cache, usage, ...) is checked by
tests/lm/test_language_model.py, which runs every test over both transports.
"""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest

import synaray
from helpers.openai_stub import StubReply
from synaray.errors import ConfigError, LMInputError, LMRateLimited, LMServerError
from synaray.lm import LanguageModel
from synaray.lm.transport import TRANSPORT_ENV, choose_transport, openai_http, openai_stream
from synaray.lm.transport.choice import transport_setting

MESSAGES = [{"role": "user", "content": "Is this plausible?"}]
GOOD = '{"answer": "plausible", "reason": "it happens"}'
REQUEST = {"model": "openai/m", "api_base": "http://127.0.0.1:8000/v1", "api_key": "k",
           "messages": MESSAGES, "temperature": 0.0, "max_tokens": 5, "timeout": 3.0,
           "num_retries": 0, "max_retries": 0}


class Verdict(synaray.DataModel):
    answer: Literal["plausible", "implausible"]
    reason: str


@pytest.fixture(autouse=True)
def no_transport_env(monkeypatch):
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)


@pytest.mark.parametrize(("setting", "change", "expected"), [
    ("auto", {}, "http"),
    ("auto", {"extra_body": {"grammar": "g"}, "seed": 1, "stop": ["\n"]}, "http"),
    ("auto", {"api_base": None}, "litellm"),
    ("auto", {"model": "gemini/gemini-2.0-flash"}, "litellm"),
    ("auto", {"mock_response": "hi"}, "litellm"),
    ("auto", {"stream": True}, "litellm"),
    ("auto", {"api_key": None}, "litellm"),
    ("litellm", {}, "litellm"),
    ("http", {"api_base": None, "api_key": None, "top_k": 3}, "http"),
    ("http", {"model": "anthropic/claude"}, "litellm"),
])
def test_choice_of_transport(setting, change, expected, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert choose_transport(setting, {**REQUEST, **change}) == expected


def test_environment_variable_overrides_auto_only(monkeypatch):
    monkeypatch.setenv(TRANSPORT_ENV, "LiteLLM ")
    assert transport_setting("auto") == "litellm"
    assert transport_setting("http") == "http"
    monkeypatch.setenv(TRANSPORT_ENV, "grpc")
    with pytest.raises(ConfigError, match=f"{TRANSPORT_ENV}.*'grpc'"):
        transport_setting("auto")


def test_constructor_checks_the_transport():
    with pytest.raises(ConfigError, match=r"argument `transport`.*'carrier-pigeon'"):
        LanguageModel("openai/x", transport="carrier-pigeon")
    with pytest.raises(ConfigError, match=r"'openai/\.\.\.' or 'local/\.\.\.'"):
        LanguageModel("gemini/gemini-2.0-flash", transport="http")
    assert "transport" not in LanguageModel("openai/x").get_config()
    forced = LanguageModel("openai/x", transport="litellm")
    assert forced.get_config()["transport"] == "litellm"
    assert LanguageModel.from_config(forced.get_config()).transport == "litellm"


def test_request_body_matches_what_litellm_sends_for_openai_models():
    body = openai_http.request_body({**REQUEST, "extra_body": {"grammar": "root ::= x"},
                                     "extra_headers": {"X-A": "1"}, "seed": 3})
    assert body == {"model": "m", "messages": MESSAGES, "temperature": 0.0, "max_tokens": 5,
                    "seed": 3, "grammar": "root ::= x"}


async def test_auto_sends_openai_models_with_an_api_base_directly(openai_stub, monkeypatch):
    sent = []
    real = openai_stream.send_chat

    async def spy(request, model, stream):
        sent.append(request["model"])
        return await real(request, model, stream)

    monkeypatch.setattr(openai_stream, "send_chat", spy)
    lm = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False)
    assert (await lm(MESSAGES)).ok
    assert sent == ["openai/test"]
    monkeypatch.setenv(TRANSPORT_ENV, "litellm")
    assert (await lm(MESSAGES)).ok
    assert sent == ["openai/test"] and openai_stub.request_count == 2


@pytest.mark.parametrize("mode", ["grammar", "json_object", "json_schema"])
async def test_both_transports_put_the_same_body_on_the_wire(openai_stub, mode):
    openai_stub.default = StubReply(GOOD)
    results = []
    for transport in ("litellm", "http"):
        lm = LanguageModel("openai/test", api_base=openai_stub.api_base, api_key="sk-test",
                           cache=False, structured_output=mode, transport=transport, seed=5,
                           top_p=0.9)
        results.append(await lm(MESSAGES, data_model=Verdict, max_tokens=40))
    assert all(r.ok and r.json == json.loads(GOOD) for r in results)
    via_litellm, direct = openai_stub.requests
    assert direct == via_litellm
    assert direct["model"] == "test" and direct["seed"] == 5


async def test_one_keep_alive_pool_per_event_loop(openai_stub):
    accepted = []
    server = openai_stub._server
    real = server.process_request

    def count(request, client_address):
        accepted.append(client_address)
        return real(request, client_address)

    server.process_request = count
    lm = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False,
                       transport="http", max_concurrency=4)
    other = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False,
                          transport="http", temperature=0.5, loop_stop="after")
    for i in range(5):
        assert (await lm([{"role": "user", "content": str(i)}])).ok
        assert (await other([{"role": "user", "content": str(i)}])).ok
    results = await asyncio.gather(*(lm([{"role": "user", "content": f"c{i}"}])
                                     for i in range(12)))
    assert all(r.ok for r in results) and openai_stub.request_count == 22
    # streamed (`lm`, a loopback server) and plain (`other`) requests share the pool
    assert sum(bool(body.get("stream")) for body in openai_stub.requests) == 17
    assert len(accepted) <= 4  # 22 requests, two models, at most 4 at once: 4 connections
    assert await openai_http.shared_session() is await openai_http.shared_session()


def test_the_pool_is_closed_with_its_event_loop(openai_stub):
    lm = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False,
                       transport="http")

    async def call_and_get_session():
        assert (await lm(MESSAGES)).ok
        return await openai_http.shared_session()

    first = asyncio.run(call_and_get_session())
    second = asyncio.run(call_and_get_session())
    assert first is not second
    assert first.closed and second.closed


@pytest.mark.parametrize(("body", "expected"), [
    ({"object": "error", "message": "model 'x' does not exist", "code": 404}, "does not exist"),
    ({"error": {"message": "bad grammar", "type": "invalid_request_error"}}, "bad grammar"),
    ({"detail": "odd"}, '{"detail": "odd"}'),
])
async def test_error_messages_quote_the_server(openai_stub, body, expected):
    openai_stub.script(StubReply(status=400, body=body))
    lm = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False,
                       transport="http")
    result = await lm(MESSAGES)
    assert result.error_type == "LMInputError"
    assert result.error.startswith("openai/test: BadRequestError (HTTP 400): ")
    assert expected in result.error


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("reply", "kind"), [
    (StubReply(status=400), LMInputError),
    (StubReply(status=401), LMInputError),
    (StubReply(status=429, headers={"Retry-After": "7"}), LMRateLimited),
    (StubReply(status=503), LMServerError),
    (None, LMServerError),  # nothing listens: a connection error
])
async def test_plain_and_streamed_requests_fail_alike(openai_stub, monkeypatch, reply, kind):
    """Both go through `open_chat`: same class, message, status and Retry-After."""
    monkeypatch.setattr(openai_stream, "_NO_STREAM_ENDPOINTS", set())
    api_base = (openai_stub.api_base if reply is not None
                else f"http://127.0.0.1:{closed_port()}/v1")
    request = {**REQUEST, "api_base": api_base, "api_key": "sk-secret-key"}
    errors = []
    for stream in (False, True):
        if reply is not None:
            openai_stub.script(reply)
        with pytest.raises(kind) as caught:
            await openai_stream.send_chat(request, "openai/test", stream)
        errors.append((str(caught.value), caught.value.status_code,
                       caught.value.retry_after_s))
    assert errors[0] == errors[1]
    assert "sk-secret-key" not in errors[0][0]
    if reply is not None:
        assert errors[0][1] == reply.status and errors[0][0].startswith("openai/test: ")
        assert [bool(body.get("stream")) for body in openai_stub.requests] == [False, True]
    else:
        assert "APIConnectionError" in errors[0][0]
    if reply is not None and reply.status == 429:
        assert errors[0][2] == 7.0


async def test_answer_without_a_message_is_an_output_error(openai_stub):
    openai_stub.script(StubReply(body={"choices": []}))
    lm = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False,
                       transport="http")
    result = await lm(MESSAGES)
    assert result.error_type == "LMOutputError" and "has no message" in result.error
    assert result.attempts == 1


def test_cost_uses_litellms_prices_except_on_this_machine():
    from synaray.lm._litellm import import_litellm

    litellm = import_litellm()
    body = {"choices": [{"message": {"content": "x"}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 200}}
    hosted = {"model": "openai/gpt-4o-mini", "api_base": "https://api.openai.com/v1"}
    prompt_cost, completion_cost = litellm.cost_per_token(
        model="openai/gpt-4o-mini", prompt_tokens=1000, completion_tokens=200)
    reply = openai_http.reply_from_body(body, "openai/gpt-4o-mini", hosted)
    assert reply.cost == pytest.approx(prompt_cost + completion_cost) and reply.cost > 0
    assert (reply.prompt_tokens, reply.completion_tokens) == (1000, 200)
    local = {**hosted, "api_base": "http://127.0.0.1:8080/v1"}
    assert openai_http.reply_from_body(body, "openai/gpt-4o-mini", local).cost == 0.0
    unknown = {**hosted, "model": "openai/no-such-model-anywhere"}
    assert openai_http.reply_from_body(body, "x", unknown).cost == 0.0


def test_a_pool_on_a_loop_that_never_stops_is_closed_at_exit(openai_stub):
    """A Ray actor's loop runs in a thread until the process ends: the exit hook closes its
    pool (no "Unclosed client session" at shutdown)."""
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    lm = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False,
                       transport="http")
    try:
        assert asyncio.run_coroutine_threadsafe(lm(MESSAGES), loop).result(30).ok
        session = asyncio.run_coroutine_threadsafe(openai_http.shared_session(),
                                                   loop).result(30)
        assert not session.closed
        openai_http.close_open_sessions()
        assert session.closed
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
