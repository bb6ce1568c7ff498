import asyncio
import json
import pickle
from typing import Literal

import pytest

import synaray
from synaray.errors import CheckpointError, ConfigError
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel
from synaray.utils.tracing import trace_scope


class Query(synaray.DataModel):
    query: str = synaray.Field(description="The user query")


class Answer(synaray.DataModel):
    answer: Literal["plausible", "implausible"]
    reason: str


@register_synaray_serializable(package="tests")
def echo_handler(messages, schema):
    """Deterministic: the answer depends on the input text and the number of examples."""
    query = json.loads(messages[-1]["content"])
    text = json.dumps(query)
    n_examples = (len(messages) - 2) // 2
    props = schema["properties"]
    out = {"answer": "plausible" if len(text) % 2 else "implausible",
           "reason": f"{len(text)}:{n_examples}:{messages[0]['content'].splitlines()[0]}"}
    if "thinking" in props:
        out = {"thinking": "hmm", **out}
    return out


@register_synaray_serializable(package="tests")
def failing_handler(messages, schema):
    return RuntimeError("model is down")


async def build(language_model, instructions=None):
    inputs = synaray.Input(data_model=Query)
    outputs = await synaray.Generator(data_model=Answer, language_model=language_model,
                                      instructions=instructions)(inputs)
    return synaray.Program(inputs=inputs, outputs=outputs, name="qa", description="test")


async def test_functional_program_returns_output_model():
    program = await build(FakeLanguageModel(echo_handler))
    out = await program(Query(query="Is the sky green?"))
    assert out.get_json()["answer"] in ("plausible", "implausible")
    Answer.model_validate(out.get_json())
    assert [m.name for m in program.modules] == ["generator"]


async def test_state_round_trip_changes_prompt():
    lm = FakeLanguageModel(echo_handler)
    program = await build(lm, instructions="Judge it.")
    state = program.get_state()
    assert state == {"generator": {"instructions": "Judge it.", "examples": []}}
    example = {"inputs": {"query": "a"}, "outputs": {"answer": "plausible", "reason": "r"}}
    program.set_state({"generator": {"instructions": "New.", "examples": [example]}})
    out = await program({"query": "b"})
    assert out.get("reason").endswith(":1:New.")
    with pytest.raises(ConfigError, match="unknown modules"):
        program.set_state({"nope": {}})
    with pytest.raises(ConfigError, match="example 0"):
        program.set_state({"generator": {"examples": [{"inputs": 1}]}})


async def test_save_and_load_give_equal_state_and_outputs(tmp_path):
    program = await build(FakeLanguageModel(echo_handler), instructions="Be brief.")
    program.get_module("generator").set_examples(
        [(Query(query="x"), Answer(answer="plausible", reason="because"))])
    path = tmp_path / "program.json"
    program.save(path)
    loaded = synaray.Program.load(path)
    assert loaded.get_state() == program.get_state()
    assert loaded.get_config() == program.get_config()
    xs = [Query(query=q) for q in ["one", "three", "fifteen"]]
    before = [o.get_json() for o in await program.predict(xs, verbose=False)]
    after = [o.get_json() for o in await loaded.predict(xs, verbose=False)]
    assert before == after


async def test_save_refuses_bad_path_and_load_names_missing_file(tmp_path):
    program = await build(FakeLanguageModel(echo_handler))
    with pytest.raises(ConfigError, match="filepath"):
        program.save(tmp_path / "program.txt")
    with pytest.raises(CheckpointError, match="not found"):
        synaray.Program.load(tmp_path / "missing.json")


async def test_pickle_goes_through_config_and_state():
    program = await build(FakeLanguageModel(echo_handler), instructions="Pickled.")
    clone = pickle.loads(pickle.dumps(program))
    assert clone.get_state() == program.get_state()
    assert (await clone({"query": "q"})).get_json() == (await program({"query": "q"})).get_json()


async def test_sequential_and_chain_of_thought_round_trip(tmp_path):
    lm = FakeLanguageModel(echo_handler)
    program = synaray.Sequential(
        [synaray.Input(data_model=Query),
         synaray.ChainOfThought(data_model=Answer, language_model=lm, instructions="Think.")],
        name="cot")
    out = await program(Query(query="q"))
    assert list(out.get_json()) == ["thinking", "answer", "reason"]
    program.save(tmp_path / "cot.json")
    loaded = synaray.Program.load(tmp_path / "cot.json")
    assert type(loaded).__name__ == "Sequential"
    assert (await loaded(Query(query="q"))).get_json() == out.get_json()


async def test_two_generators_get_distinct_deterministic_names():
    lm = FakeLanguageModel(echo_handler)
    inputs = synaray.Input(data_model=Query)
    first = await synaray.Generator(data_model=Answer, language_model=lm)(inputs)
    second = await synaray.Generator(data_model=Answer, language_model=lm)([inputs, first])
    program = synaray.Program(inputs=inputs, outputs=second)
    assert [m.name for m in program.modules] == ["generator", "generator_1"]
    assert set(program.get_state()) == {"generator", "generator_1"}


async def test_failed_call_returns_none_and_trace_keeps_error():
    program = await build(FakeLanguageModel(failing_handler))
    with trace_scope() as trace:
        out = await program(Query(query="q"))
    assert out is None
    assert trace.failures == 1 and "model is down" in trace.errors[0]
    assert trace.modules[0].outputs is None


async def test_predict_bounds_concurrency_and_keeps_order():
    active = 0
    peak = 0

    class Counting(FakeLanguageModel):
        async def __call__(self, messages, schema=None, data_model=None, **kw):
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            try:
                return await super().__call__(messages, schema, data_model, **kw)
            finally:
                active -= 1

    program = await build(Counting(echo_handler))
    xs = [Query(query="x" * n) for n in range(12)]
    outs = await program.predict(xs, batch_size=3, verbose=False)
    assert peak == 3
    assert [o.get("reason").split(":")[0] for o in outs] == [
        str(len(json.dumps({"query": "x" * n}))) for n in range(12)]


async def test_summary_lists_modules():
    program = await build(FakeLanguageModel(echo_handler))
    text = program.summary(print_fn=None)
    assert "generator" in text and "Generator" in text and "Answer" in text
