"""Preflight: a run that cannot work stops before it spends or writes anything.

Each kind of broken model (unknown provider, refused connection, rejected key, missing
model) ends `preflight` with a `PreflightError` naming the model; a busy (429) or
flaky (5xx) endpoint passes. Through the CLI, a bad model name and an unreachable
endpoint end `synaray fit` with a non-zero exit in well under 30 s, with no run folder.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import yaml

import synaray
from helpers.fit_programs import Label, Number
from helpers.openai_stub import OpenAIStub, StubReply
from helpers.stub_programs import build_thirds_on, stub_config, thirds_reply
from synaray.cli.main import main
from synaray.errors import PreflightError
from synaray.lm import LanguageModel
from synaray.lm._litellm import import_litellm
from synaray.lm.preflight import models_in_payloads, preflight, preflight_enabled

KEY = "sk-preflight-good"


def closed_port_base() -> str:
    """The api_base of a loopback port nobody listens on (the connection is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def lm(model: str = "openai/test", **kwargs: object) -> LanguageModel:
    return LanguageModel(model, cache=False, retries=0, **kwargs)


async def test_a_working_model_passes_with_one_small_request():
    with OpenAIStub(api_key=KEY) as stub:
        assert await preflight([lm(api_base=stub.api_base, api_key=KEY)]) == 1
    assert stub.request_count == 1
    assert stub.requests[0]["max_tokens"] == 1


@pytest.mark.parametrize("case", ["unknown provider", "refused connection", "rejected key",
                                  "missing model"])
async def test_each_broken_model_is_refused_and_named(case):
    with OpenAIStub(api_key=KEY, handler=lambda path, body: (
            StubReply(status=404) if body.get("model") == "missing" else None)) as stub:
        model = {"unknown provider": lm("nosuchprovider/xyz"),
                 "refused connection": lm(api_base=closed_port_base(), api_key=KEY),
                 "rejected key": lm(api_base=stub.api_base, api_key="sk-wrong"),
                 "missing model": lm("openai/missing", api_base=stub.api_base,
                                     api_key=KEY)}[case]
        started = time.monotonic()
        with pytest.raises(PreflightError) as info:
            await preflight([{"program": [model]}])
    assert time.monotonic() - started < 30
    message = str(info.value)
    assert model.model in message and "1 of 1 model(s) cannot work" in message
    expected = {"unknown provider": "LLM Provider NOT provided",
                "refused connection": "cannot connect",
                "rejected key": "the key was rejected (401)",
                "missing model": "no such model or endpoint (404)"}[case]
    assert expected.lower() in message.lower()


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_busy_or_flaky_endpoint_passes(status):
    with OpenAIStub(default=StubReply(status=status, headers={"Retry-After": "0"})) as stub:
        assert await preflight([lm(api_base=stub.api_base)]) == 1


async def test_a_named_key_variable_that_is_not_set_fails_without_a_request(monkeypatch):
    monkeypatch.delenv("SYNARAY_UNSET_KEY_VAR", raising=False)
    with OpenAIStub() as stub:
        with pytest.raises(PreflightError, match="SYNARAY_UNSET_KEY_VAR"):
            await preflight([lm(api_base=stub.api_base, api_key_env="SYNARAY_UNSET_KEY_VAR")])
    assert stub.request_count == 0


async def test_models_are_checked_once_and_local_models_are_left_to_their_server():
    with OpenAIStub() as stub:
        same = [lm(api_base=stub.api_base) for _ in range(3)]
        local = LanguageModel("local/smollm2-135m", cache=False)
        assert await preflight([same, local]) == 1
    assert stub.request_count == 1


async def test_program_fit_checks_before_anything_runs(tmp_path):
    with OpenAIStub(api_key=KEY, handler=thirds_reply) as stub:
        program = await build_thirds_on(lm(api_base=stub.api_base, api_key="sk-wrong"))
        program.compile(reward="exact_match", optimizer=synaray.optimizers.RandomFewShot())
        xs = [Number(q=str(n)) for n in range(6)]
        ys = [Label(answer="no" if n % 3 == 0 else "yes") for n in range(6)]
        with pytest.raises(PreflightError, match="rejected"):
            await program.fit(xs, ys, epochs=1, batch_size=6, verbose=False, preflight=True)
    assert stub.request_count == 1  # the check; no evaluation started


def test_preflight_default_follows_the_environment(monkeypatch):
    monkeypatch.setenv("SYNARAY_PREFLIGHT", "0")
    assert preflight_enabled(None) is False and preflight_enabled(True) is True
    monkeypatch.delenv("SYNARAY_PREFLIGHT")
    assert preflight_enabled(None) is True and preflight_enabled(False) is False


async def test_models_in_a_saved_program_are_found_without_importing_anything(tmp_path):
    program = await build_thirds_on(lm(api_base="http://127.0.0.1:9/v1",
                                       api_key_env="SOME_KEY"))
    found = models_in_payloads([program.to_payload()])
    assert [(m.model, m.api_base, m.api_key_env) for m in found] == [
        ("openai/test", "http://127.0.0.1:9/v1", "SOME_KEY")]


# --- through the command line ----------------------------------------------------------------
@pytest.mark.parametrize("model", [{"model": "nosuchprovider/xyz"},
                                   {"model": "openai/test", "api_base": "unreachable"}])
def test_fit_command_stops_at_once_with_nothing_written(tmp_path, capsys, monkeypatch, model):
    monkeypatch.setenv("SYNARAY_PREFLIGHT", "1")
    if model.get("api_base") == "unreachable":
        model = {**model, "api_base": closed_port_base()}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(stub_config(tmp_path, model)))
    # The bound is on synaray's work, not on importing litellm (10-20 s on a loaded machine)
    import_litellm()
    started = time.monotonic()
    code = main(["fit", str(path), "--run-name", "bad", "--quiet"])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == PreflightError.exit_code != 0
    assert elapsed < 30
    assert "preflight" in err and model["model"] in err
    assert not (tmp_path / "runs").exists()  # no run folder, no best_program.json


def test_fit_command_no_preflight_skips_the_check(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYNARAY_PREFLIGHT", "1")
    with OpenAIStub(handler=thirds_reply) as stub:
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(stub_config(tmp_path, {"model": "openai/test",
                                                               "api_base": stub.api_base})))
        assert main(["fit", str(path), "--run-name", "ok", "--quiet", "--no-preflight"]) == 0
        skipped = stub.request_count
        assert main(["fit", str(path), "--run-name", "ok2", "--quiet"]) == 0
        checked = stub.request_count - skipped
    assert not any(b.get("max_tokens") == 1 for b in stub.requests[:skipped])
    assert sum(1 for b in stub.requests[skipped:] if b.get("max_tokens") == 1) == 1
    assert checked == skipped + 1
    out = capsys.readouterr().out
    assert "LM calls (0 failed)" in out


def test_evaluate_command_checks_the_saved_programs_models_first(tmp_path, capsys,
                                                                monkeypatch):
    monkeypatch.setenv("SYNARAY_PREFLIGHT", "1")
    program = asyncio.run(build_thirds_on(lm(api_base=closed_port_base())))
    program.save(tmp_path / "p.json")
    (tmp_path / "d.jsonl").write_text('{"id": "a", "q": "1", "answer": "yes"}\n')
    code = main(["evaluate", "--program", str(tmp_path / "p.json"), "--data",
                 str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "out")])
    assert code == PreflightError.exit_code
    assert "cannot connect" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # not even the JSONL's Parquet copy


def test_sweep_command_checks_the_trials_models_before_any_trial(tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.setenv("SYNARAY_PREFLIGHT", "1")
    config = stub_config(tmp_path, {"model": "nosuchprovider/xyz"})
    config["sweep"] = {"method": "grid", "parameters": {"training.seed": {"values": [1, 2]}}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["sweep", str(path), "--quiet", "--name", "s"]) == PreflightError.exit_code
    assert "nosuchprovider/xyz" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # no trial started, nothing written
