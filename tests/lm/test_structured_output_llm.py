"""Structured output against the real local server (SmolLM2-135M through llama.cpp)."""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Literal

import pytest

import synaray
from synaray.lm import LanguageModel

pytestmark = pytest.mark.llm


class Judgement(synaray.DataModel):
    answer: Literal["plausible", "implausible"] = synaray.Field(
        description="Whether the sentence is plausible")
    reason: str = synaray.Field(description="One short sentence explaining why")


def sports_prompts(n: int) -> list[list[dict]]:
    path = resources.files("synaray.datasets") / "files" / "sports_understanding.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()[:n]]
    return [[{"role": "system", "content": "You judge sports sentences. Answer in JSON."},
             {"role": "user", "content": f"Is the following sentence plausible? "
                                         f"\"{row['input']}\""}] for row in rows]


async def test_two_field_model_is_valid_for_38_of_40_sports_prompts(local_lm):
    results = await asyncio.gather(*(local_lm(messages, data_model=Judgement, max_tokens=160)
                                     for messages in sports_prompts(40)))
    valid = [r for r in results if r.ok and Judgement.model_validate(r.json)]
    failures = [(r.error_type, r.error) for r in results if not r.ok]
    assert len(valid) >= 38, failures
    assert all(r.attempts >= 1 and r.completion_tokens > 0 for r in valid)


async def test_local_model_name_resolves_to_the_running_server(local_lm_server):
    lm = LanguageModel("local/smollm2", cache=False)
    result = await lm([{"role": "user", "content": "Say yes."}], max_tokens=5)
    assert result.ok and result.text
    assert lm._target.api_base == local_lm_server.api_base
    assert lm._target.model == "openai/smollm2-135m"


async def test_local_model_is_cached_across_ports(local_lm_server, tmp_path):
    lm = LanguageModel("local/smollm2-135m", cache=str(tmp_path / "c.sqlite"))
    messages = [{"role": "user", "content": "Name a colour."}]
    first = await lm(messages, max_tokens=8)
    second = await LanguageModel("local/smollm2-135m",
                                 cache=str(tmp_path / "c.sqlite"))(messages, max_tokens=8)
    assert first.ok and second.cached and second.text == first.text


async def test_greedy_answers_are_deterministic(local_lm):
    messages = [{"role": "user", "content": "Write one word about the sea."}]
    first, second = await local_lm(messages, max_tokens=10), await local_lm(messages,
                                                                           max_tokens=10)
    assert first.text == second.text


async def test_both_transports_give_the_same_answers(local_lm_server):
    """Greedy decoding, same prompts, same grammar: litellm and the direct HTTP client get
    the same text, token counts and parsed answers from the real model; streamed (the loop
    check of `loop_stop="stream"`, the default for this server at 160 tokens) gives the same
    texts and completion tokens (llama-cpp-python sends no usage in a stream: one event per
    token is counted, the prompt is estimated)."""
    prompts = [*sports_prompts(6), [{"role": "user", "content": "Write one word about the sea."}]]
    answers = {}
    for transport, loop_stop in (("litellm", "after"), ("http", "after"), ("http", "stream")):
        lm = local_lm_server.language_model(cache=False, transport=transport,
                                            loop_stop=loop_stop)
        asked = prompts[:-1] if loop_stop == "after" else prompts[:2]
        results = await asyncio.gather(*(lm(messages, data_model=Judgement, max_tokens=160)
                                         for messages in asked))
        results.append(await lm(prompts[-1], max_tokens=10, loop_stop=loop_stop))
        answers[transport, loop_stop] = [(r.ok, r.text, r.json, r.prompt_tokens,
                                          r.completion_tokens) for r in results]
    plain = answers["http", "after"]
    assert plain == answers["litellm", "after"]
    assert sum(ok for ok, *_ in plain) >= 5
    streamed = answers["http", "stream"]
    expected = [*plain[:2], plain[-1]]
    assert [(ok, text, data, out) for ok, text, data, _, out in streamed] == [
        (ok, text, data, out) for ok, text, data, _, out in expected]
    assert all(0 < p for *_, p, _ in streamed)
