"""Entry points that read someone else's run folder or search settings run none of their code.

Each crafted file names `os.system` with a command that would create a marker file; the load
is refused (or the name is rejected) and the marker never appears.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synaray.errors import ConfigError

from .test_safe_loading import _edit, _generator, _saved_program


async def _crafted_program(tmp_path: Path, marker: Path) -> Path:
    crafted = {"module": "os", "class_name": "system", "config": {"command": f"touch {marker}"}}
    return _edit(await _saved_program(tmp_path),
                 lambda p: _generator(p).update(language_model=crafted))


async def test_evaluate_a_run_folder_with_a_crafted_best_program_is_refused(tmp_path,
                                                                            capsys) -> None:
    from synaray.cli.main import main

    marker = tmp_path / "MARKER"
    crafted = await _crafted_program(tmp_path, marker)
    run = tmp_path / "runs" / "someone"
    run.mkdir(parents=True)
    (run / "best_program.json").write_text(crafted.read_text())
    (run / "status.json").write_text(json.dumps({"run_name": "someone", "state": "finished"}))
    data = tmp_path / "val.jsonl"
    data.write_text(json.dumps({"id": "a", "query": "q", "answer": "yes"}) + "\n")
    out = tmp_path / "results"
    assert main(["evaluate", "--run", "someone", "--storage", str(tmp_path / "runs"),
                 "--data", str(data), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "'os:system'" in err and "--trust-code" in err
    assert not marker.exists() and not out.exists()


async def test_bulk_evaluate_refuses_a_crafted_program_file(tmp_path) -> None:
    from synaray.engines.ray.bulk_evaluate import bulk_evaluate

    marker = tmp_path / "MARKER"
    crafted = await _crafted_program(tmp_path, marker)
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"id": "a", "query": "q", "answer": "yes"}) + "\n")
    with pytest.raises(ConfigError, match="os:system"):
        bulk_evaluate(str(crafted), str(data), str(tmp_path / "out"), verbose=False)
    assert not marker.exists()


@pytest.mark.parametrize("config", [
    {"type": "os:system", "command": "touch MARKER"},
    {"module": "os", "class_name": "system", "config": {"command": "touch MARKER"}},
])
def test_stored_search_settings_name_only_synaray_stop_conditions(tmp_path, monkeypatch,
                                                                  config) -> None:
    """`search.json` (read by a restarted optimizer actor) rebuilds stop conditions from a
    closed table, never from a module path."""
    from synaray.trainers.stop_conditions import conditions_from_config

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="stop condition"):
        conditions_from_config([config])
    assert not (tmp_path / "MARKER").exists()
