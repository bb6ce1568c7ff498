"""API keys: the name (`api_key_env`) is saved, the value never; every process finds it.

Checked against a loopback OpenAI-compatible stub that records each request's
`Authorization` header: the key sent is the configured one, never the loopback default
"sk-local" when a key was configured, and a model rebuilt from its saved config (as in a
Ray actor) sends it too, from its own environment or from keys shipped in memory.
"""

from __future__ import annotations

import json

import pytest

import synaray
from helpers.openai_stub import OpenAIStub
from synaray.engines.ray.engine import RayEngine
from synaray.errors import ConfigError
from synaray.lm import EmbeddingModel, LanguageModel
from synaray.lm.keys import install_keys, lookup_key
from synaray.lm.model_search import find_models, shipped_keys
from synaray.runs.ray_connect import worker_runtime_env

SECRET = "sk-planted-unit-3f9a1c"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _no_shipped_keys():
    install_keys({})
    yield
    install_keys({})


def test_config_and_program_json_hold_the_variable_name_never_the_value(monkeypatch,
                                                                         tmp_path):
    monkeypatch.setenv("SYNARAY_TEST_SECRET", SECRET)
    lm = LanguageModel("openai/test", api_key="sk-literal-77", api_key_env="SYNARAY_TEST_SECRET",
                       cache=False)
    config = lm.get_config()
    assert config["api_key_env"] == "SYNARAY_TEST_SECRET"
    assert "api_key" not in config
    assert LanguageModel.from_config(config).api_key_env == "SYNARAY_TEST_SECRET"
    assert "api_key_env" not in LanguageModel("openai/test", cache=False).get_config()
    assert EmbeddingModel("openai/e", api_key_env="X_KEY", cache=False).get_config()[
        "api_key_env"] == "X_KEY"


async def test_saved_program_carries_no_key(monkeypatch, tmp_path):
    class Q(synaray.DataModel):
        q: str

    class A(synaray.DataModel):
        a: str

    monkeypatch.setenv("SYNARAY_TEST_SECRET", SECRET)
    lm = LanguageModel("openai/test", api_key="sk-literal-77",
                       api_key_env="SYNARAY_TEST_SECRET", cache=False)
    inputs = synaray.Input(data_model=Q)
    outputs = await synaray.Generator(data_model=A, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="keys")
    program.save(tmp_path / "p.json")
    text = (tmp_path / "p.json").read_text()
    assert "SYNARAY_TEST_SECRET" in text
    assert SECRET not in text and "sk-literal-77" not in text


def test_bad_api_key_env_is_refused_with_the_argument_named():
    with pytest.raises(ConfigError, match="api_key_env"):
        LanguageModel("openai/test", api_key_env="", cache=False)


async def test_api_key_env_is_sent_to_a_loopback_server_instead_of_sk_local(monkeypatch):
    monkeypatch.setenv("SYNARAY_TEST_SECRET", SECRET)
    with OpenAIStub() as stub:
        lm = LanguageModel("openai/test", api_base=stub.api_base, cache=False, retries=0,
                           api_key_env="SYNARAY_TEST_SECRET")
        assert (await lm(MESSAGES)).ok
        rebuilt = LanguageModel.from_config(lm.get_config())  # as an actor rebuilds it
        assert (await rebuilt(MESSAGES)).ok
        plain = LanguageModel("openai/test", api_base=stub.api_base, cache=False, retries=0)
        assert (await plain(MESSAGES)).ok
    assert stub.keys_seen() == {SECRET: 2, "sk-local": 1}


async def test_a_named_but_unset_variable_never_falls_back_to_sk_local(monkeypatch):
    monkeypatch.delenv("SYNARAY_TEST_SECRET", raising=False)
    with OpenAIStub(api_key=SECRET) as stub:
        lm = LanguageModel("openai/test", api_base=stub.api_base, cache=False, retries=0,
                           api_key_env="SYNARAY_TEST_SECRET")
        result = await lm(MESSAGES)
    assert not result.ok
    assert "sk-local" not in stub.keys_seen()


async def test_shipped_keys_reach_a_rebuilt_model_and_the_process_env_wins(monkeypatch):
    monkeypatch.delenv("SYNARAY_TEST_SECRET", raising=False)
    with OpenAIStub() as stub:
        base = stub.api_base
        driver_literal = LanguageModel("openai/test", api_base=stub.api_base, cache=False,
                                       api_key="sk-literal-77", retries=0)
        monkeypatch.setenv("SYNARAY_TEST_SECRET", SECRET)
        driver_named = LanguageModel("openai/other", api_base=stub.api_base, cache=False,
                                     api_key_env="SYNARAY_TEST_SECRET", retries=0)
        keys = shipped_keys([{"a": [driver_literal, driver_named]}])
        assert dict(keys) == {("openai/test", stub.api_base, None): "sk-literal-77",
                              ("openai/other", stub.api_base, "SYNARAY_TEST_SECRET"): SECRET}
        # an actor: models rebuilt from configs (no key), keys installed from memory
        monkeypatch.delenv("SYNARAY_TEST_SECRET")
        install_keys(keys)
        for lm in (driver_literal, driver_named):
            rebuilt = LanguageModel.from_config(json.loads(json.dumps(lm.get_config())))
            assert (await rebuilt(MESSAGES)).ok
        assert stub.keys_seen() == {"sk-literal-77": 1, SECRET: 1}
        # the actor's own environment wins over a shipped value of the same variable
        monkeypatch.setenv("SYNARAY_TEST_SECRET", "sk-cluster-own")
        rebuilt = LanguageModel.from_config(driver_named.get_config())
        assert (await rebuilt(MESSAGES)).ok
    assert stub.keys_seen()["sk-cluster-own"] == 1
    install_keys({})
    assert lookup_key("openai/test", base, None) is None


def test_find_models_walks_nested_synaray_objects_once():
    lm = LanguageModel("openai/x", cache=False)
    em = EmbeddingModel("openai/e", cache=False)

    class Holder:  # not a synaray object: not entered
        inner = lm

    found = find_models([{"k": [lm, (em, lm)]}, Holder()])
    assert found == [lm, em]


def test_runtime_env_carries_no_secret_only_settings_and_named_variables(monkeypatch):
    monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-planted-litellm")
    monkeypatch.setenv("SYNARAY_TEST_SECRET", SECRET)
    monkeypatch.setenv("SYNARAY_CACHE_DIR", "/tmp/some-cache")
    env = worker_runtime_env()["env_vars"]
    assert "PYTHONPATH" in env and env["SYNARAY_CACHE_DIR"] == "/tmp/some-cache"
    assert "LITELLM_MASTER_KEY" not in env and "SYNARAY_TEST_SECRET" not in env
    assert SECRET not in json.dumps(env) and "sk-planted-litellm" not in json.dumps(env)
    named = worker_runtime_env(("SYNARAY_TEST_SECRET",))["env_vars"]
    assert named["SYNARAY_TEST_SECRET"] == SECRET  # opted in: documented trade-off


def test_ray_engine_env_vars_are_checked(monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE_42", raising=False)
    with pytest.raises(ConfigError, match="env_vars"):
        RayEngine(env_vars="OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE_42"):
        RayEngine(env_vars=["NOT_SET_ANYWHERE_42"])
    monkeypatch.setenv("SYNARAY_TEST_SECRET", SECRET)
    assert RayEngine(env_vars=["SYNARAY_TEST_SECRET"]).env_vars == ("SYNARAY_TEST_SECRET",)
