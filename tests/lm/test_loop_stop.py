"""A looping answer is stopped early: the loop check (`looping_unit`, `LoopGuard`) and the
streamed direct client closing the stream (`loop_stop`), against the loopback stub."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import synaray
from helpers.openai_stub import StubReply
from synaray.errors import ConfigError
from synaray.lm import LanguageModel
from synaray.lm.base import estimate_tokens
from synaray.lm.parsing import LoopGuard, looping_unit, repeating_tail
from synaray.lm.transport import openai_stream

MESSAGES = [{"role": "user", "content": "What is the answer?"}]
LOOP = '{"answer": "' + "The answer is: " * 400  # 6,000 characters, never closed
EVENTS_IN_LOOP = len(LOOP) // 4  # the stub's pieces are 4 characters


class Answer(synaray.DataModel):
    answer: str


# -- the check: fires on loops, never on legitimate answers ------------------------------
LEGITIMATE = {
    "word list": ", ".join(f"{word}{i}" for i, word in enumerate(
        ["apple", "banana", "cherry", "damson", "elderberry", "fig", "grape", "honeydew",
         "kiwi", "lemon", "mango", "nectarine", "orange", "papaya", "quince"] * 4)),
    "numbered list": "\n".join(f"{i}. step number {i} of the procedure" for i in range(1, 40)),
    "JSON array of objects": json.dumps([{"id": i, "name": f"item {i}", "ok": True}
                                         for i in range(60)]),
    "JSON array of numbers": json.dumps(list(range(100, 400))),
    "JSON list of labels": json.dumps({"labels": [f"label_{i:03d}" for i in range(80)]}),
    "markdown table": "| a | b |\n|---|---|\n" + "\n".join(f"| {i} | {i * i} |"
                                                          for i in range(40)),
    "prose": ("The quick brown fox jumps over the lazy dog. " * 1).join(
        f"Sentence {i} says something new about topic {i * 7 % 13}. " for i in range(30)),
    "short repeat": '{"answer": "no no no no no, it is not"}',
    "indented code": "\n".join(f"    x{i} = compute(x{i - 1}, {i})" for i in range(1, 40)),
    "CSV rows": "\n".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}" for i in range(80)),
}


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
def test_legitimate_answers_are_not_loops(name):
    text = LEGITIMATE[name]
    assert len(text) > 200 or name == "short repeat"
    guard = LoopGuard()
    assert [hit for hit in (guard.feed(text[i:i + 3]) for i in range(0, len(text), 3))
            if hit] == []
    assert all(looping_unit(text[:end]) is None for end in range(1, len(text) + 1))


@pytest.mark.parametrize(("loop", "unit"), [
    (LOOP, "The answer is: "),
    ('{"answer": "' + "ha" * 200, "ha"),
    ("Reasoning: " + "I need to check the value again. " * 12, "I need to check the value again. "),
    ('{"answer": "x"' + "\n" * 300, "\n"),
])
def test_loops_are_found_early(loop, unit):
    guard = LoopGuard()
    received = 0
    for i in range(0, len(loop), 4):
        received = i + 4
        hit = guard.feed(loop[i:i + 4])
        if hit:
            break
    else:
        pytest.fail("the loop was not found")
    assert hit.strip() == unit.strip() or unit in hit * 2
    assert received <= max(200, 4 * len(unit)) + 24 + len(unit) + 40  # seen within a check


def test_the_check_agrees_with_the_finished_answer_check():
    assert looping_unit(LOOP) == repeating_tail(LOOP) == "The answer is: "


# -- the streamed client closes a looping answer -----------------------------------------
async def wait_until(condition, what: str, deadline_s: float = 60.0) -> None:
    """Poll `condition` (the stub's handler thread finishes after the client is done; the
    event loop must run meanwhile: it closes the socket)."""
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def make_lm(stub, **kwargs) -> LanguageModel:
    kwargs.setdefault("cache", False)
    kwargs.setdefault("backoff_base_s", 0.01)
    return LanguageModel("openai/test", api_base=stub.api_base, api_key="sk-test", **kwargs)


@pytest.fixture(autouse=True)
def fresh_endpoints(monkeypatch):
    monkeypatch.setenv("SYNARAY_LM_TRANSPORT", "http")
    monkeypatch.setattr(openai_stream, "_NO_STREAM_ENDPOINTS", set())


async def test_a_looping_answer_is_closed_early_and_fails_without_repair(openai_stub):
    openai_stub.script(StubReply(LOOP, chunk_delay_s=0.002))  # 3 s if read to the end
    result = await make_lm(openai_stub)(MESSAGES, data_model=Answer, max_tokens=2000)
    assert not result.ok and result.error_type == "LMOutputError"
    assert "the answer repeats 'The answer is: '" in result.error
    assert "generation stopped early" in result.error and "estimated" in result.error
    assert openai_stub.request_count == 1 and result.attempts == 1  # no repair request
    assert openai_stub.requests[0]["stream"] is True
    assert openai_stub.requests[0]["stream_options"] == {"include_usage": True}
    # the client read about 60 pieces of the 1,500; the server noticed it was gone
    assert result.completion_tokens < 100
    await wait_until(lambda: openai_stub.stream_sent, "the stub's stream to end")
    assert openai_stub.stream_closed_early == 1
    assert openai_stub.stream_sent[0] < EVENTS_IN_LOOP // 2
    assert result.text is None or "The answer is: " in result.text


async def test_a_loop_in_the_repair_answer_fails_after_the_repair(openai_stub):
    openai_stub.script(StubReply("not json"), StubReply(LOOP))
    result = await make_lm(openai_stub)(MESSAGES, data_model=Answer)
    assert not result.ok and "after one repair attempt" in result.error
    assert "repeats 'The answer is: '" in result.error
    assert openai_stub.request_count == 2 and result.attempts == 2


async def test_free_text_loops_are_stopped_too(openai_stub):
    openai_stub.script(StubReply("Well, " + "let me think. " * 300))
    result = await make_lm(openai_stub)(MESSAGES)
    assert not result.ok and "the answer repeats" in result.error
    assert "let me think" in result.error
    assert "does not fit" not in result.error


async def test_usage_is_the_servers_when_it_is_sent(openai_stub):
    openai_stub.script(StubReply('{"answer": "42"}', prompt_tokens=31, completion_tokens=5))
    result = await make_lm(openai_stub)(MESSAGES, data_model=Answer)
    assert result.ok and result.json == {"answer": "42"}
    assert (result.prompt_tokens, result.completion_tokens) == (31, 5)


async def test_usage_is_estimated_without_the_servers(openai_stub):
    openai_stub.stream_usage = False  # as llama-cpp-python's server
    openai_stub.script(StubReply('{"answer": "42"}', chunk_chars=2))
    lm = make_lm(openai_stub)
    result = await lm(MESSAGES, data_model=Answer)
    assert result.ok and result.completion_tokens == 8  # the pieces received
    assert result.prompt_tokens > 0
    # the accounting adds the estimates up like reported counts
    assert (lm.usage.prompt_tokens, lm.usage.completion_tokens) == (result.prompt_tokens, 8)


@pytest.mark.parametrize(("stream", "server_usage", "estimated"), [
    (True, False, True),  # streamed, no usage event: estimated
    (True, True, False),  # streamed, the server's usage event
    (False, False, False),  # plain: the body's usage
])
async def test_only_estimated_usage_is_flagged(openai_stub, stream, server_usage, estimated):
    openai_stub.stream_usage = server_usage
    openai_stub.script(StubReply("forty-two", chunk_chars=3, prompt_tokens=31,
                                 completion_tokens=5))
    request = {"model": "openai/test", "api_base": openai_stub.api_base,
               "api_key": "sk-test", "messages": MESSAGES, "timeout": 30.0}
    reply = await openai_stream.send_chat(request, "openai/test", stream)
    assert reply.text == "forty-two" and reply.usage_estimated is estimated
    assert openai_stub.requests[0].get("stream", False) is stream
    tokens = (reply.prompt_tokens, reply.completion_tokens)
    if estimated:  # three pieces of 3 characters; the prompt at 4 characters a token
        assert tokens == (estimate_tokens([MESSAGES[0]["content"]]), 3)
    else:
        assert tokens == (31, 5)


async def test_a_server_that_refuses_streaming_is_remembered(openai_stub):
    openai_stub.streaming = False
    lm = make_lm(openai_stub)
    first = await lm(MESSAGES)
    second = await lm(MESSAGES)
    assert first.ok and second.ok
    assert [bool(body.get("stream")) for body in openai_stub.requests] == [True, False, False]
    assert openai_stub_refused(openai_stub)


async def test_a_stream_cut_by_the_server_is_sent_again_plainly(openai_stub):
    openai_stub.script(StubReply('{"answer": "cut in the middle"}', interrupted=True),
                       StubReply('{"answer": "whole"}'), StubReply('{"answer": "next"}'))
    lm = make_lm(openai_stub)
    first = await lm(MESSAGES, data_model=Answer)
    second = await lm(MESSAGES, data_model=Answer)
    assert first.json == {"answer": "whole"} and second.json == {"answer": "next"}
    assert [bool(body.get("stream")) for body in openai_stub.requests] == [True, False, False]
    assert openai_stub_refused(openai_stub)


def openai_stub_refused(stub) -> bool:
    return openai_stream.streaming_refused(stub.api_base)


async def test_a_bad_request_is_not_sent_twice(openai_stub):
    openai_stub.script(StubReply(status=400))
    result = await make_lm(openai_stub)(MESSAGES)
    assert not result.ok and result.error_type == "LMInputError"
    assert openai_stub.request_count == 1 and not openai_stub_refused(openai_stub)


async def test_after_mode_and_short_budgets_are_not_streamed(openai_stub):
    openai_stub.script(StubReply(LOOP), StubReply('{"answer": "4"}'))
    after = await make_lm(openai_stub, loop_stop="after")(MESSAGES, data_model=Answer)
    short = await make_lm(openai_stub)(MESSAGES, data_model=Answer, max_tokens=32)
    assert [bool(body.get("stream")) for body in openai_stub.requests] == [False, False]
    assert not after.ok and "a looping answer of 6012 characters" in after.error
    assert short.ok


async def test_loop_stop_per_call_and_in_the_config(openai_stub):
    lm = make_lm(openai_stub, loop_stop="stream")
    await lm(MESSAGES, max_tokens=8)
    await lm(MESSAGES, loop_stop="after")
    assert [bool(body.get("stream")) for body in openai_stub.requests] == [True, False]
    assert lm.get_config()["loop_stop"] == "stream"
    assert "loop_stop" not in make_lm(openai_stub).get_config()
    with pytest.raises(ConfigError, match="loop_stop"):
        make_lm(openai_stub, loop_stop="sometimes")
    with pytest.raises(ConfigError, match="loop_stop"):
        await lm(MESSAGES, loop_stop="never")


@pytest.mark.parametrize(("loop_stop", "api_base", "max_tokens", "streamed"), [
    ("auto", "http://127.0.0.1:8080/v1", 512, True),
    ("auto", "http://localhost:11434/v1", None, True),
    ("auto", "http://127.0.0.1:8080/v1", 64, False),  # a label: little to save
    ("auto", "https://api.openai.com/v1", 512, False),  # hosted: rarely loops, CPU per call
    ("stream", "https://api.openai.com/v1", 16, True),
    ("after", "http://127.0.0.1:8080/v1", 512, False),
])
def test_when_auto_streams(loop_stop, api_base, max_tokens, streamed):
    from synaray.lm.language_model import _streams

    request = {"api_base": api_base, **({"max_tokens": max_tokens} if max_tokens else {})}
    assert _streams(loop_stop, request) is streamed


def test_the_run_config_sets_loop_stop():
    from synaray.config.components import build_language_model
    from synaray.config.schema import ModelConfig

    lm = build_language_model(ModelConfig(model="openai/x", loop_stop="stream"), "run.yaml",
                              "model")
    assert lm.loop_stop == "stream"
    with pytest.raises(ValueError, match="loop_stop"):
        ModelConfig(model="openai/x", loop_stop="sometimes")


def test_a_long_run_of_one_short_unit_counts_as_a_loop():
    """The documented edge: 200+ characters of one value repeated (here `0, `) is a loop."""
    assert looping_unit("[" + "0, " * 66) is None  # 199 characters of the run
    assert looping_unit("[" + "0, " * 67) in ("0, ", ", 0", " 0,")
