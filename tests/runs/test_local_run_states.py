"""A local run that fails or is stopped says so: status.json, `synaray status`, the report.

LocalEngine, FakeLanguageModel: no Ray, no server."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers.fit_programs import thirds_config
from observability.tasks import make_data, make_program
from synaray.callbacks import BackupAndRestore, Callback
from synaray.cli.main import main
from synaray.config import load_run_config, run_fit

FIT = dict(epochs=2, batch_size=6, validation_split=0.25, verbose=False)


class Boom(Exception):
    pass


class RaiseAt(Callback):
    def __init__(self, generation: int, error: BaseException) -> None:
        super().__init__()
        self.generation, self.error = generation, error

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        if step == self.generation:
            raise self.error


class StopAt(Callback):
    """Stops the fit as EarlyStopping does on the driver (`program.stop_training`)."""

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        if step == 2:
            self.program.stop_training = True


def status_of(folder) -> dict:
    return json.loads((folder / "status.json").read_text())


def shown(capsys, folder, tmp_path) -> tuple[int, str, str]:
    """(exit code, output) of `synaray status`, and the report's text."""
    capsys.readouterr()
    code = main(["status", str(folder)])
    out = capsys.readouterr().out
    html = tmp_path / "report.html"
    assert main(["report", str(folder), "--out", str(html)]) == 0
    return code, out, html.read_text()


@pytest.mark.parametrize("error, state, reason", [
    (Boom("LM server gone"), "failed", "Boom: LM server gone"),
    (KeyboardInterrupt(), "stopped", "interrupted (KeyboardInterrupt: Ctrl-C or a signal)"),
])
async def test_a_local_fit_that_raises_says_failed_or_stopped(tmp_path, capsys, error, state,
                                                               reason):
    xs, ys = make_data(24)
    program = await make_program(seed=3, population_size=2, reflection=False)
    folder = tmp_path / "runs" / "local"
    with pytest.raises(type(error)):
        await program.fit(xs, ys, callbacks=[BackupAndRestore(folder, delete_checkpoint=False),
                                             RaiseAt(2, error)], **FIT)
    status = status_of(folder)
    assert (status["state"], status["error"]) == (state, reason)
    assert status["generation"] == 2 and status["stop_reason"] is None
    code, out, html = shown(capsys, folder, tmp_path)
    assert f"state        {state}: {reason}" in out
    assert code == (3 if state == "failed" else 0)
    assert f"{state}: {reason}" in html and ">running<" not in html


async def test_a_local_fit_stopped_by_a_callback_says_stopped(tmp_path, capsys):
    xs, ys = make_data(24)
    program = await make_program(seed=3, population_size=2, reflection=False)
    folder = tmp_path / "runs" / "early"
    await program.fit(xs, ys, callbacks=[BackupAndRestore(folder, delete_checkpoint=False),
                                         StopAt()], **FIT)
    status = status_of(folder)
    assert status["state"] == "stopped" and "program.stop_training" in status["error"]
    assert status["generation"] == 2 < status["total_generations"]
    code, out, html = shown(capsys, folder, tmp_path)
    assert code == 0 and "state        stopped: stopped by a callback" in out
    assert "stopped: stopped by a callback" in html


def test_synaray_fit_on_the_local_engine_records_a_failure(tmp_path, capsys):
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(thirds_config(tmp_path, engine="local")))
    config = load_run_config(config_file, {"run_name": "broken"})
    with pytest.raises(Boom):
        run_fit(config, callbacks=[RaiseAt(3, Boom("disk full"))], verbose=False)
    folder = tmp_path / "runs" / "broken"
    status = status_of(folder)
    assert (status["state"], status["error"], status["generation"]) == \
        ("failed", "Boom: disk full", 3)
    capsys.readouterr()
    assert main(["status", "broken", "--storage", str(tmp_path / "runs")]) == 3
    assert "state        failed: Boom: disk full" in capsys.readouterr().out
    # a resume starts over from the last checkpoint and ends "finished"
    assert main(["resume", "broken", "--storage", str(tmp_path / "runs"),
                 "--config", str(config_file), "--quiet"]) == 0
    assert status_of(folder)["state"] == "finished" and status_of(folder)["error"] is None
