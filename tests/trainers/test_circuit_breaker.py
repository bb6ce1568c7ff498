"""The circuit breaker: a run whose LM calls keep failing stops, resumably, loudly.

Unit checks of `CircuitBreaker`, then whole runs against a loopback server that answers
the first N requests and fails every later one (HTTP 500): `program.fit` raises
`LMFailuresError` with the last errors; `synaray fit` exits non-zero with them on stderr,
keeps its checkpoint, and `synaray resume` finishes the run once the server heals.
"""

from __future__ import annotations

import json
import threading

import pytest
import yaml

import synaray
from helpers.fit_programs import Label, Number
from helpers.openai_stub import OpenAIStub, StubReply
from helpers.stub_programs import build_thirds_on, stub_config, thirds_reply
from synaray.cli.main import main
from synaray.errors import ConfigError, LMFailuresError
from synaray.lm import LanguageModel
from synaray.lm.circuit_breaker import CircuitBreaker, circuit_breaker_from
from synaray.optimizers.protocol import EvalResult


def result(ok: bool, calls: int = 1, error: str = "LMServerError: stub error 500"
           ) -> EvalResult:
    return EvalResult("c", "e", "train", 0.0, None, error=None if ok else error,
                      lm_calls=calls, lm_failures=0 if ok else calls)


def test_all_of_the_first_calls_failing_trips():
    breaker = CircuitBreaker(first_calls=20)
    breaker.update([result(False)] * 19)
    with pytest.raises(LMFailuresError) as info:
        breaker.update([result(False, error="LMInputError: 401 bad key")])
    message = str(info.value)
    assert "all of the first 20 LM calls failed" in message
    assert "20 of 20 failed" in message and "401 bad key" in message
    assert "resume" in message


def test_one_success_among_the_first_calls_keeps_it_going():
    breaker = CircuitBreaker(first_calls=20, window=100)
    breaker.update([result(True)] + [result(False)] * 40)
    assert breaker.failures == 40 and breaker.calls == 41


def test_more_than_the_rate_of_the_last_window_trips():
    breaker = CircuitBreaker(first_calls=0, window=10, max_failure_rate=0.5)
    breaker.update([result(True)] * 55 + [result(False)] * 5)  # the last 10: 50% failed
    with pytest.raises(LMFailuresError, match="6 of the last 10 LM calls failed"):
        breaker.update([result(False)])


def test_settings_are_checked_and_named():
    with pytest.raises(ConfigError, match="max_failure_rate"):
        CircuitBreaker(max_failure_rate=0)
    with pytest.raises(ConfigError, match="window"):
        CircuitBreaker(window=-1)
    with pytest.raises(ConfigError, match="unknown setting"):
        circuit_breaker_from({"windw": 3})
    assert circuit_breaker_from(False) is None
    assert circuit_breaker_from({"window": 7}).window == 7


class FailAfter:
    """A stub handler: answers the first `n` chat requests, then fails all with HTTP 500."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0
        self.healed = False
        self._lock = threading.Lock()

    def __call__(self, path: str, body: dict) -> StubReply:
        with self._lock:
            self.seen += 1
            seen = self.seen
        if not self.healed and seen > self.n:
            return StubReply(status=500)
        return thirds_reply(path, body)


def data(n: int) -> tuple[list, list]:
    return ([Number(q=str(i)) for i in range(n)],
            [Label(answer="no" if i % 3 == 0 else "yes") for i in range(n)])


async def test_fit_stops_when_calls_keep_failing_and_runs_through_when_off():
    with OpenAIStub(handler=FailAfter(0)) as stub:
        lm = LanguageModel("openai/test", api_base=stub.api_base, cache=False, retries=0)
        program = await build_thirds_on(lm)
        program.compile(reward="exact_match", optimizer=synaray.optimizers.RandomFewShot(),
                        metrics=["accuracy"])
        xs, ys = data(12)
        with pytest.raises(LMFailuresError, match="all of the first 5 LM calls failed"):
            await program.fit(xs, ys, epochs=1, batch_size=6, verbose=False,
                              circuit_breaker={"first_calls": 5})
        stopped_at = stub.request_count
        history = await program.fit(xs, ys, epochs=1, batch_size=6, verbose=False,
                                    circuit_breaker=False)
    assert 5 <= stopped_at < stub.request_count - stopped_at  # stopped after one batch
    assert history.history["lm_failures"][-1] > 0


def test_fit_command_stops_keeps_the_checkpoint_and_resumes(tmp_path, capsys):
    handler = FailAfter(14)
    with OpenAIStub(handler=handler) as stub:
        config = stub_config(tmp_path, {"model": "openai/test", "api_base": stub.api_base},
                             epochs=2, n_train=24)
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(config))
        code = main(["fit", str(path), "--run-name", "brk", "--quiet",
                     "--set", "training.circuit_breaker.window=10"])
        err = capsys.readouterr().err
        assert code == LMFailuresError.exit_code != 0
        assert "of the last 10 LM calls failed" in err
        assert "stub error 500" in err  # the last errors are shown
        folder = tmp_path / "runs" / "brk"
        assert (folder / "optimizer_state.json").is_file()
        assert not (folder / "outcome.json").exists()
        handler.healed = True
        assert main(["resume", "brk", "--storage", str(tmp_path / "runs"), "--quiet",
                     "--trust-code"]) == 0
    outcome = json.loads((folder / "outcome.json").read_text())
    assert outcome["val_reward"] is not None
    assert "lm_failures" in outcome
    out = capsys.readouterr().out
    assert f"({outcome['lm_failures']} failed)" in out


async def test_evaluate_states_lm_failures():
    with OpenAIStub(handler=FailAfter(4)) as stub:
        lm = LanguageModel("openai/test", api_base=stub.api_base, cache=False, retries=0,
                           max_concurrency=1)
        program = await build_thirds_on(lm)
        program.compile(reward="exact_match", metrics=["accuracy"])
        xs, ys = data(10)
        logs = await program.evaluate(xs, ys, batch_size=1, verbose=False)
    assert logs["lm_calls"] == 10 and logs["lm_failures"] == 6 == logs["failures"]
