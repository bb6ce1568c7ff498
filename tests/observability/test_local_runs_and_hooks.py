"""Without Ray or MLflow: reports of LocalEngine runs, status logic, LM call observers."""

import asyncio
import json

import pytest

import synaray
from synaray.callbacks import BackupAndRestore
from synaray.cli.main import main
from synaray.lm.hooks import add_call_observer, remove_call_observer
from synaray.observability.status import RunStatus, format_status
from synaray.reports import mutation_kind

from .tasks import make_data, make_program


async def test_a_local_run_kept_by_backup_and_restore_gets_status_and_report(tmp_path, capsys):
    xs, ys = make_data(30)
    program = await make_program(seed=5)
    folder = tmp_path / "runs" / "local"
    history = await program.fit(xs, ys, epochs=2, batch_size=6, validation_split=0.2,
                                verbose=False,
                                callbacks=[BackupAndRestore(folder, delete_checkpoint=False)])
    assert main(["status", "local", "--storage", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "state        finished: epochs completed (2)" in out
    assert f"best reward  {history.history['val_reward'][-1]:.3f}  (validation)" in out
    assert "generation   8/8" in out

    html = tmp_path / "local.html"
    assert main(["report", str(folder), "--out", str(html)]) == 0
    text = html.read_text()
    assert 'id="reward-curve"' in text and 'id="failure-table"' in text
    assert program.optimizer.best().id in text
    # no data/ folder in a local run: inputs and expected outputs are marked as not saved
    assert "not saved" in text


def test_status_states_rates_and_eta():
    base = {"run_name": "r", "generation": 4, "total_generations": 10, "time_s": 20.0,
            "lm_calls": 100, "lm_failures": 2, "step": 5, "updated": 1000.0,
            "best_reward": 0.5, "best_reward_source": "train"}
    running = RunStatus(dict(base), now=1010.0)
    assert running.state == "running" and running.eta_s == pytest.approx(30.0)
    assert running.calls_per_s == 5.0 and running.best == (0.5, "train")
    assert "eta 00:30" in running.one_line() and "best 0.500 (train)" in running.one_line()
    assert RunStatus(dict(base), now=1000.0 + 601).state == "stale"
    assert RunStatus({**base, "stop_reason": "epochs completed (1)"}, now=5000).state == \
        "finished"
    failed = RunStatus({**base, "state": "failed", "error": "boom"}, now=1001.0)
    assert failed.state == "failed" and "state        failed: boom" in format_status(failed)


@pytest.mark.parametrize("operation, exploited, kind", [
    ("seed", False, "seed"),
    ("resample generator.examples (0 -> 2 demos)", True, "exploit copy + demo resample"),
    ("perturb generator.examples (swapped demo 0)", False, "demo swap"),
    ("reflect generator.instructions (0 -> 9 chars) from 2 failures", False,
     "reflection rewrite"),
    ("crossover a x b (generator.examples <- b)", True, "exploit copy + crossover"),
    ("fewshot generator.examples; mutation generator.instructions", False,
     "few-shot draw + LM rewrite"),
])
def test_mutation_kinds(operation, exploited, kind):
    assert mutation_kind(operation, exploited) == kind


class Recorder:
    def __init__(self, fail=False):
        self.fail, self.calls = fail, []

    def start(self, call):
        if self.fail:
            raise RuntimeError("observer broken")
        return len(self.calls)

    def end(self, call, token):
        if self.fail:
            raise RuntimeError("observer broken")
        self.calls.append((token, call.model, call.schema_title, call.result.ok,
                           call.messages[-1]["content"]))


def test_lm_call_observers_see_each_call_and_never_break_it():
    class Answer(synaray.DataModel):
        answer: str

    lm = synaray.LanguageModel("openai/gpt-4o-mini", mock_response=json.dumps({"answer": "4"}),
                               cache=False, structured_output="json_object")
    good, broken = Recorder(), Recorder(fail=True)
    add_call_observer(good)
    add_call_observer(broken)
    try:
        result = asyncio.run(lm([{"role": "user", "content": "2+2?"}], data_model=Answer))
    finally:
        remove_call_observer(good)
        remove_call_observer(broken)
    assert result.ok and result.json == {"answer": "4"}
    assert good.calls == [(0, "openai/gpt-4o-mini", "Answer", True, "2+2?")]
