"""LanguageModel against the loopback OpenAI stub: retries, errors, cache, repair, usage.

Every test runs three times: through litellm (`SYNARAY_LM_TRANSPORT=litellm`), through the
direct HTTP client with plain requests, and through the direct client with streamed
requests (the loop check of `loop_stop="stream"`): all must behave alike
(synaray.lm.transport).
"""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
import time
from typing import Literal

import pytest

import synaray
from helpers.openai_stub import StubReply
from synaray.errors import ConfigError
from synaray.lm import LanguageModel, get_usage, language_model
from synaray.lm.call_slots import limit_lm_calls
from synaray.lm.transport import openai_stream
from synaray.utils.tracing import trace_scope

MESSAGES = [{"role": "user", "content": "Is this plausible?"}]
GOOD = '{"answer": "plausible", "reason": "it happens"}'


class Verdict(synaray.DataModel):
    answer: Literal["plausible", "implausible"]
    reason: str


@pytest.fixture(autouse=True, params=["litellm", "http", "http-streamed"])
def transport(request, monkeypatch, openai_stub):
    """Each test through litellm, the direct client (plain) and the direct client
    (streamed); the spy proves which one sent the requests, the stub how they were sent."""
    monkeypatch.setenv("SYNARAY_LM_TRANSPORT", request.param.split("-")[0])
    if request.param != "litellm":
        streamed = request.param == "http-streamed"
        monkeypatch.setattr(language_model, "_streams", lambda loop_stop, req: streamed)
    sent = []
    real = openai_stream.send_chat

    async def spy(req, model, stream):
        sent.append(model)
        return await real(req, model, stream)

    monkeypatch.setattr(openai_stream, "send_chat", spy)
    yield request.param
    if request.param == "litellm":
        assert not sent, "the litellm run went through the direct client"
        return
    assert len(sent) >= openai_stub.request_count, "requests went through litellm"
    chats = [body for body, path in zip(openai_stub.requests, openai_stub.paths, strict=True)
             if path.endswith("/chat/completions")]
    want = request.param == "http-streamed"
    assert all(bool(body.get("stream")) == want for body in chats), "streaming not as set"


def make_lm(stub, **kwargs) -> LanguageModel:
    kwargs.setdefault("cache", False)
    kwargs.setdefault("backoff_base_s", 0.01)
    kwargs.setdefault("backoff_max_s", 0.05)
    return LanguageModel("openai/test", api_base=stub.api_base, api_key="sk-test", **kwargs)


async def test_rate_limited_twice_then_ok(openai_stub):
    openai_stub.script(StubReply(status=429), StubReply(status=429), StubReply("hello"))
    result = await make_lm(openai_stub)(MESSAGES)
    assert result.ok and result.text == "hello"
    assert result.attempts == 3
    assert openai_stub.request_count == 3


async def test_retry_after_header_is_honoured(openai_stub):
    openai_stub.script(StubReply(status=429, headers={"Retry-After": "0.8"}), StubReply("hi"))
    start = time.perf_counter()
    result = await make_lm(openai_stub)(MESSAGES)
    elapsed = time.perf_counter() - start
    assert result.ok and openai_stub.request_count == 2
    assert 0.8 <= elapsed < 5.0  # the backoff alone would have waited about 0.01 s


async def test_rate_limited_after_all_retries_is_a_failure(openai_stub):
    openai_stub.default = StubReply(status=429)
    result = await make_lm(openai_stub, retries=2)(MESSAGES)
    assert not result.ok and result.error_type == "LMRateLimited"
    assert openai_stub.request_count == 3 and result.attempts == 3


async def test_bad_request_is_not_retried(openai_stub):
    openai_stub.script(StubReply(status=400), StubReply("never sent"))
    result = await make_lm(openai_stub)(MESSAGES)
    assert not result.ok and result.error_type == "LMInputError"
    assert openai_stub.request_count == 1
    assert "400" in result.error


async def test_server_errors_are_retried_then_reported(openai_stub):
    openai_stub.default = StubReply(status=503)
    result = await make_lm(openai_stub, retries=2)(MESSAGES)
    assert not result.ok and result.error_type == "LMServerError"
    assert openai_stub.request_count == 3


async def test_server_error_then_success(openai_stub):
    openai_stub.script(StubReply(status=500), StubReply("fine"))
    result = await make_lm(openai_stub)(MESSAGES)
    assert result.ok and result.text == "fine" and result.attempts == 2


async def test_auth_error_is_an_input_error_with_the_servers_message(openai_stub):
    openai_stub.script(StubReply(status=401))
    result = await make_lm(openai_stub)(MESSAGES)
    assert not result.ok and result.error_type == "LMInputError"
    assert openai_stub.request_count == 1
    assert result.error.startswith("openai/test: ")
    assert "AuthenticationError" in result.error and "stub error 401" in result.error


@pytest.mark.parametrize("status", [403, 404])
async def test_forbidden_and_not_found_are_input_errors(openai_stub, status):
    openai_stub.script(StubReply(status=status))
    result = await make_lm(openai_stub)(MESSAGES)
    assert not result.ok and result.error_type == "LMInputError"
    assert f"stub error {status}" in result.error and openai_stub.request_count == 1


async def test_timeout_is_mapped_to_lm_timeout(openai_stub):
    openai_stub.default = StubReply("late", delay_s=1.5)
    result = await make_lm(openai_stub, timeout=0.3, retries=1)(MESSAGES)
    assert not result.ok and result.error_type == "LMTimeout"
    assert result.attempts == 2


async def test_connection_refused_is_a_server_error():
    lm = LanguageModel("openai/test", api_base="http://127.0.0.1:9/v1", api_key="x",
                       cache=False, retries=1, backoff_base_s=0.01)
    result = await lm(MESSAGES)
    assert not result.ok and result.error_type == "LMServerError"


async def test_identical_call_is_served_from_cache(openai_stub, tmp_path):
    lm = make_lm(openai_stub, cache=str(tmp_path / "cache.sqlite"))
    openai_stub.script(StubReply(GOOD))
    first = await lm(MESSAGES, data_model=Verdict)
    second = await lm(MESSAGES, data_model=Verdict)
    assert first.ok and not first.cached
    assert second.cached and second.json == first.json and second.attempts == 0
    assert openai_stub.request_count == 1


async def test_cache_is_shared_by_instances_and_keyed_on_params(openai_stub, tmp_path):
    path = str(tmp_path / "cache.sqlite")
    await make_lm(openai_stub, cache=path)(MESSAGES)
    again = await make_lm(openai_stub, cache=path)(MESSAGES)
    warmer = await make_lm(openai_stub, cache=path, temperature=0.7)(MESSAGES)
    assert again.cached and not warmer.cached
    assert openai_stub.request_count == 2


async def test_failed_call_is_not_cached(openai_stub, tmp_path):
    lm = make_lm(openai_stub, cache=str(tmp_path / "cache.sqlite"), retries=0)
    openai_stub.script(StubReply(status=500), StubReply(GOOD))
    failed = await lm(MESSAGES, data_model=Verdict)
    retried = await lm(MESSAGES, data_model=Verdict)
    third = await lm(MESSAGES, data_model=Verdict)
    assert not failed.ok and retried.ok and not retried.cached
    assert third.cached
    assert openai_stub.request_count == 2


async def test_invalid_output_is_not_cached(openai_stub, tmp_path):
    lm = make_lm(openai_stub, cache=str(tmp_path / "cache.sqlite"))
    openai_stub.script(StubReply("nope"), StubReply("still nope"), StubReply(GOOD))
    assert not (await lm(MESSAGES, data_model=Verdict)).ok
    assert (await lm(MESSAGES, data_model=Verdict)).ok
    assert openai_stub.request_count == 3


async def test_unparsable_output_gets_one_repair_then_fails(openai_stub):
    openai_stub.script(StubReply("I think it is plausible."), StubReply('{"answer": "maybe"}'))
    result = await make_lm(openai_stub)(MESSAGES, data_model=Verdict)
    assert not result.ok and result.error_type == "LMOutputError"
    assert result.attempts == 2 and openai_stub.request_count == 2
    repair = openai_stub.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "I think it is plausible."}
    assert "not valid" in repair[-1]["content"]
    assert result.text == '{"answer": "maybe"}'


async def test_repair_attempt_can_succeed(openai_stub):
    openai_stub.script(StubReply('{"answer": "perhaps", "reason": "x"}'), StubReply(GOOD))
    result = await make_lm(openai_stub)(MESSAGES, data_model=Verdict)
    assert result.ok and result.json == json.loads(GOOD) and result.attempts == 2
    assert "answer" in openai_stub.requests[1]["messages"][-1]["content"]


async def test_fenced_json_with_chatter_is_parsed(openai_stub):
    openai_stub.script(StubReply(f"Sure!\n```json\n{GOOD}\n```\nAnything else?"))
    result = await make_lm(openai_stub)(MESSAGES, data_model=Verdict)
    assert result.ok and result.json["answer"] == "plausible" and result.attempts == 1


async def test_bare_schema_is_validated(openai_stub):
    schema = Verdict.get_schema()
    openai_stub.script(StubReply(GOOD))
    result = await make_lm(openai_stub)(MESSAGES, schema=schema)
    assert result.ok and result.json == json.loads(GOOD)


async def test_usage_counts_calls_tokens_failures_and_hits(openai_stub, tmp_path, transport):
    name = f"openai/usage-test-{transport}"  # the process-wide registry outlives one test
    lm = LanguageModel(name, api_base=openai_stub.api_base, api_key="x",
                       cache=str(tmp_path / "c.sqlite"), retries=1, backoff_base_s=0.01)
    openai_stub.script(StubReply("a", prompt_tokens=10, completion_tokens=3),
                       StubReply(status=400))
    await lm(MESSAGES)
    await lm(MESSAGES)  # cache hit
    await lm([{"role": "user", "content": "other"}])  # 400
    usage = lm.usage
    assert (usage.calls, usage.cache_hits, usage.failures, usage.requests) == (3, 1, 1, 2)
    assert usage.failures_by_type == {"LMInputError": 1}
    assert (usage.prompt_tokens, usage.completion_tokens) == (10, 3)
    assert usage.latency_s > 0 and usage.cost == 0.0
    assert get_usage()[name].to_dict() == usage.to_dict()


async def test_every_call_is_recorded_in_the_trace(openai_stub, tmp_path):
    lm = make_lm(openai_stub, cache=str(tmp_path / "c.sqlite"))
    openai_stub.script(StubReply("a"), StubReply(status=400))
    with trace_scope() as trace:
        await lm(MESSAGES)
        await lm(MESSAGES)
        await lm([{"role": "user", "content": "x"}])
    assert len(trace.lm) == 3
    assert (trace.lm_calls, trace.cache_hits, trace.failures) == (2, 1, 1)
    assert trace.lm[2].error_type == "LMInputError"
    assert trace.prompt_tokens == 11


async def test_request_shape_per_structured_output_mode(openai_stub):
    for mode in ("json_schema", "json_object", "grammar", "none"):
        openai_stub.script(StubReply(GOOD))
        result = await make_lm(openai_stub, structured_output=mode)(MESSAGES, data_model=Verdict)
        assert result.ok, mode
    schema_req, object_req, grammar_req, none_req = openai_stub.requests
    assert schema_req["response_format"]["type"] == "json_schema"
    assert schema_req["response_format"]["json_schema"]["schema"]["required"] == [
        "answer", "reason"]
    assert schema_req["messages"] == MESSAGES
    assert object_req["response_format"] == {"type": "json_object"}
    assert '"implausible"' in object_req["messages"][0]["content"]
    assert grammar_req["grammar"].startswith("root ::=") and "response_format" not in grammar_req
    assert "response_format" not in none_req and "grammar" not in none_req
    assert none_req["messages"][0]["role"] == "system"


async def test_auto_mode_uses_a_grammar_for_a_loopback_openai_server(openai_stub):
    openai_stub.script(StubReply(GOOD))
    await make_lm(openai_stub)(MESSAGES, data_model=Verdict)
    assert "grammar" in openai_stub.requests[0]


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic, about litellm's ollama types
async def test_auto_mode_elsewhere_follows_litellm():
    gpt = LanguageModel("gpt-4o-mini", cache=False, mock_response=GOOD)
    other = LanguageModel("ollama/some-model", cache=False, mock_response=GOOD)
    assert (await gpt(MESSAGES, data_model=Verdict)).ok
    assert (await other(MESSAGES, data_model=Verdict)).ok
    assert gpt._auto_mode == "json_schema"
    assert other._auto_mode == "json_object"


async def test_per_call_overrides(openai_stub):
    await make_lm(openai_stub)(MESSAGES, temperature=0.5, max_tokens=7)
    assert openai_stub.requests[0]["temperature"] == 0.5
    assert openai_stub.requests[0]["max_tokens"] == 7


def count_in_flight(stub) -> dict:
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def handler(path, body):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        return None

    stub.handler = handler
    return state


async def test_max_concurrency_bounds_requests_in_flight(openai_stub):
    state = count_in_flight(openai_stub)
    lm = make_lm(openai_stub, max_concurrency=2)
    results = await asyncio.gather(*(lm([{"role": "user", "content": str(i)}])
                                     for i in range(6)))
    assert all(r.ok for r in results)
    assert state["peak"] == 2


async def test_engine_call_slots_bound_requests_in_flight(openai_stub):
    state = count_in_flight(openai_stub)
    lm = make_lm(openai_stub, max_concurrency=8)
    with limit_lm_calls(asyncio.Semaphore(3)):
        results = await asyncio.gather(*(lm([{"role": "user", "content": str(i)}])
                                         for i in range(9)))
    assert all(r.ok for r in results)
    assert state["peak"] == 3


def test_works_across_event_loops(openai_stub):
    lm = make_lm(openai_stub, max_concurrency=1)
    assert asyncio.run(lm(MESSAGES)).ok
    assert asyncio.run(lm(MESSAGES)).ok
    assert openai_stub.request_count == 2


async def test_pickled_model_still_works(openai_stub, tmp_path):
    lm = make_lm(openai_stub, cache=str(tmp_path / "c.sqlite"))
    await lm(MESSAGES)
    clone = pickle.loads(pickle.dumps(lm))
    assert clone.usage.calls == 0 and clone.api_key == "sk-test"
    assert (await clone(MESSAGES)).cached
    assert (await clone([{"role": "user", "content": "new"}])).ok


def test_config_round_trip_without_secrets(tmp_path):
    lm = LanguageModel("openai/x", api_base="http://h/v1", api_key="sk-secret", temperature=0.3,
                       max_tokens=99, cache=str(tmp_path / "c.sqlite"), seed=7,
                       aws_secret_access_key="s3cr3t")
    config = lm.get_config()
    assert "api_key" not in config and "aws_secret_access_key" not in config
    assert "sk-secret" not in json.dumps(config) and "sk-secret" not in repr(lm)
    assert config["seed"] == 7 and config["temperature"] == 0.3
    again = LanguageModel.from_config(json.loads(json.dumps(config)))
    assert again.get_config() == config
    assert repr(lm) == "<LanguageModel model=openai/x api_base=http://h/v1>"


def test_serializes_through_the_saving_registry():
    from synaray.saving import deserialize_object, serialize_object

    lm = LanguageModel("local/smollm2-135m", temperature=0.2)
    restored = deserialize_object(serialize_object(lm))
    assert isinstance(restored, LanguageModel) and restored.get_config() == lm.get_config()


@pytest.mark.parametrize("kwargs", [
    {"temperature": -1}, {"max_tokens": 0}, {"timeout": 0}, {"retries": -1},
    {"max_concurrency": 0}, {"structured_output": "xml"}, {"cache": 3},
])
def test_bad_constructor_arguments_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        LanguageModel("openai/x", **kwargs)


def test_unknown_local_model_raises_config_error():
    with pytest.raises(ConfigError, match="local/smollm2-135m"):
        LanguageModel("local/gpt-5")


async def test_bad_call_arguments_raise_config_error():
    lm = LanguageModel("openai/x", cache=False)
    with pytest.raises(ConfigError):
        await lm("hello")
    with pytest.raises(ConfigError):
        await lm([{"content": "no role"}])
    with pytest.raises(ConfigError):
        await lm(MESSAGES, schema="not a schema")
    with pytest.raises(ConfigError):
        await lm(MESSAGES, data_model=dict)


async def test_generate_is_an_alias(openai_stub):
    result = await make_lm(openai_stub).generate(MESSAGES)
    assert result.ok and result.text == "ok"


class RecordingLimiter:
    def __init__(self) -> None:
        self.acquired: list[tuple[str, int]] = []
        self.reports: list[tuple[str, int | None, float | None]] = []

    async def acquire(self, model: str, tokens: int) -> None:
        self.acquired.append((model, tokens))

    def report(self, model: str, status: int | None, retry_after_s: float | None = None) -> None:
        self.reports.append((model, status, retry_after_s))


async def test_every_request_goes_through_the_rate_limiter(openai_stub, monkeypatch):
    from synaray.lm import rate_limit

    limiter = RecordingLimiter()
    monkeypatch.setattr(rate_limit, "_LIMITER", limiter)
    openai_stub.script(StubReply(status=429, headers={"Retry-After": "0.05"}), StubReply("ok"))
    result = await make_lm(openai_stub, max_tokens=100)(MESSAGES)
    assert result.ok
    assert [model for model, _ in limiter.acquired] == ["openai/test", "openai/test"]
    assert all(tokens > 100 for _, tokens in limiter.acquired)  # prompt estimate + answer
    assert limiter.reports == [("openai/test", 429, 0.05), ("openai/test", 200, None)]


async def test_a_loopback_server_needs_no_api_key(openai_stub):
    lm = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False)
    result = await lm(MESSAGES)
    assert result.ok and "api_key" not in lm.get_config()
