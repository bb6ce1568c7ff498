"""Logs that read well: whole lines at an interval when not on a terminal, JSON lines for
machines, nothing with --quiet. A fake clock stands in for long runs."""

from __future__ import annotations

import io
import json

import pytest
import yaml

import synaray
from helpers.fit_programs import thirds_config
from synaray.cli.main import main
from synaray.errors import ConfigError
from synaray.utils import progress as progress_module
from synaray.utils.progress import Progress, configure_progress, progress_settings

from .conftest import make_data, make_program


class LogFile(io.StringIO):
    def isatty(self):
        return False


class Terminal(io.StringIO):
    def isatty(self):
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def simulate(bar: Progress, clock: FakeClock, seconds: float, steps: int) -> None:
    for _ in range(steps):
        clock.now += seconds / steps
        bar.update(1, lm_calls=2)
    bar.close()


def test_a_ten_minute_run_in_a_log_file_writes_few_whole_lines():
    clock, out = FakeClock(), LogFile()
    bar = Progress(2400, desc="fit p", stream=out, clock=clock)  # defaults: 10 s or 5 %
    simulate(bar, clock, seconds=600, steps=2400)  # an update every 0.25 s
    lines = out.getvalue().splitlines()
    assert 50 <= len(lines) < 200  # about one per 10 s
    assert "\r" not in out.getvalue()
    assert lines[-1].startswith("fit p  2400/2400") and "elapsed 10:00" in lines[-1]


def test_a_fast_run_prints_a_line_per_five_percent():
    clock, out = FakeClock(), LogFile()
    bar = Progress(400, desc="evaluate p", stream=out, clock=clock)
    simulate(bar, clock, seconds=4, steps=400)  # 4 s in all: the time rule never fires
    lines = out.getvalue().splitlines()
    assert 20 <= len(lines) <= 22
    done = [int(line.split()[2].split("/")[0]) for line in lines]
    assert done[1] - done[0] == 20 and done[-1] == 400


def test_interval_and_step_are_configurable_per_bar_and_per_process():
    clock, out = FakeClock(), LogFile()
    bar = Progress(2000, stream=out, clock=clock, interval_s=60, percent_step=50)
    simulate(bar, clock, seconds=600, steps=2000)
    assert 10 <= len(out.getvalue().splitlines()) <= 13  # every 60 s, 2 halves, the end
    clock, out = FakeClock(), LogFile()
    with progress_settings(interval_s=300.0, percent_step=None):
        bar = Progress(2000, stream=out, clock=clock)
    simulate(bar, clock, seconds=600, steps=2000)
    assert len(out.getvalue().splitlines()) == 3  # first update, 300 s, 600 s (the end)
    with pytest.raises(ConfigError, match="log_format"):
        configure_progress(log_format="xml")


def test_json_lines_parse_and_carry_the_counts():
    clock, out = FakeClock(), LogFile()
    bar = Progress(100, desc="evaluate p", stream=out, clock=clock, log_format="json")
    for _ in range(100):
        clock.now += 1.0
        bar.update(1, lm_calls=1, failures=0, best="0.5")
    bar.close()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(r["event"] == "progress" and r["desc"] == "evaluate p" for r in records)
    assert [r["done"] for r in records] == sorted(r["done"] for r in records)
    last = records[-1]
    assert last["done"] == last["total"] == 100 and last["percent"] == 100.0
    assert last["lm_calls"] == 100 and last["best"] == "0.5" and last["elapsed_s"] == 100.0
    assert records[0]["eta_s"] == pytest.approx(99.0)


def test_json_lines_on_a_terminal_are_not_redrawn():
    clock, out = FakeClock(), Terminal()
    bar = Progress(10, stream=out, clock=clock, log_format="json")
    simulate(bar, clock, seconds=100, steps=10)
    assert "\r" not in out.getvalue()
    assert all(json.loads(line)["event"] == "progress" for line in out.getvalue().splitlines())


def test_a_terminal_still_gets_one_redrawn_line():
    clock, out = FakeClock(), Terminal()
    bar = Progress(10, stream=out, clock=clock)
    simulate(bar, clock, seconds=100, steps=10)
    assert out.getvalue().count("\r") == 11 and out.getvalue().count("\n") == 1


def test_quiet_prints_nothing():
    clock, out = FakeClock(), LogFile()
    with progress_settings(quiet=True):
        bar = Progress(10, stream=out, clock=clock)
    simulate(bar, clock, seconds=100, steps=10)
    assert out.getvalue() == ""


async def test_the_fit_progress_bar_uses_the_injected_clock():
    xs, ys = make_data(24)
    program = await make_program(seed=1)
    clock, out = FakeClock(), LogFile()

    class Tick(synaray.callbacks.Callback):
        def on_batch_end(self, step, logs=None):
            clock.now += 120.0  # each generation "takes" two minutes

    bar = synaray.callbacks.ProgressBar(clock=clock, percent_step=100)
    original = progress_module.sys.stderr
    progress_module.sys.stderr = out
    try:
        await program.fit(xs, ys, epochs=1, batch_size=6, validation_split=0.25,
                          callbacks=[Tick(), bar], verbose=False)
    finally:
        progress_module.sys.stderr = original
    lines = out.getvalue().splitlines()
    generations = bar.bar.done
    assert generations >= 2
    # one line per generation (2 fake minutes each), plus the first before any ended
    assert len(lines) in (generations, generations + 1)
    assert f"{generations}/{bar.bar.total}  generations" in lines[-1]
    assert f"elapsed {generations * 2:02d}:00" in lines[-1]


# -- the CLI --------------------------------------------------------------------------------
def write_config(folder) -> str:
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(thirds_config(folder, epochs=1)))
    return str(path)


def test_fit_with_json_logs_prints_only_json_lines(tmp_path, capsys):
    assert main(["fit", write_config(tmp_path), "--run-name", "j", "--log-format", "json"]) == 0
    captured = capsys.readouterr()
    stdout = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    stderr = [json.loads(line) for line in captured.err.splitlines() if line.strip()]
    assert stdout[-1]["event"] == "summary" and stdout[-1]["run_name"] == "j"
    assert stdout[-1]["val_reward"] == 1.0
    assert {r["event"] for r in stdout[:-1]} == {"message"}
    assert any("fitting run 'j'" in r["text"] for r in stdout)
    progress = [r for r in stderr if r["event"] == "progress"]
    assert progress and progress[-1]["final"] is True


def test_fit_quiet_prints_no_progress_and_no_messages(tmp_path, capsys):
    assert main(["fit", write_config(tmp_path), "--run-name", "q", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "synaray:" not in captured.out and "best program:" in captured.out


def test_an_error_is_a_json_line_with_log_format_json(tmp_path, capsys):
    code = main(["evaluate", "--run", "r", "--data", "x.jsonl", "--out", str(tmp_path),
                 "--log-format", "json"])
    assert code == 1
    error = json.loads(capsys.readouterr().err)
    assert error == {"event": "error", "command": "evaluate",
                     "message": "--run needs --storage (where the run is kept).",
                     "error_type": "ConfigError"}


def test_every_long_command_takes_log_format():
    from synaray.cli.main import build_parser

    parser = build_parser()
    for argv in (["fit", "c.yaml"], ["resume", "r", "--storage", "s"], ["sweep", "c.yaml"],
                 ["evaluate", "--program", "p", "--data", "d", "--out", "o"]):
        args = parser.parse_args([*argv, "--log-format", "json", "--quiet"])
        assert args.log_format == "json" and args.quiet
