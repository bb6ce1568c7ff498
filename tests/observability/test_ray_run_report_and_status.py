"""`synaray report` and `synaray status` on a real RayEngine run (session Ray cluster)."""

import json
import re
import shutil
import time
from html.parser import HTMLParser

import pytest
import pytest_asyncio

from synaray import callbacks
from synaray.callbacks import ProgressBar
from synaray.cli.main import main

from .tasks import make_data, make_program

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

RUN = "obs-run"


class SnapshotAt(callbacks.Callback):
    """Copies the run folder after generation `at`: a status.json caught mid-run."""

    def __init__(self, at, source, target):
        super().__init__()
        self.at, self.source, self.target = at, source, target

    def on_batch_end(self, step, logs=None):
        if step == self.at:
            shutil.copytree(self.source, self.target)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ray_run(tmp_path_factory):
    """A finished 2-epoch PopulationSearch run on RayEngine, and a mid-run copy of it."""
    from synaray.engines.ray import RayEngine

    storage = tmp_path_factory.mktemp("runs")
    mid = tmp_path_factory.mktemp("mid") / "runs"
    xs, ys = make_data(30)
    program = await make_program(seed=5)
    engine = RayEngine(num_evaluators=2, storage=str(storage), run_name=RUN)
    bar = ProgressBar(interval_s=3600.0)
    lines = []

    class Lines(callbacks.Callback):
        def on_batch_end(self, step, logs=None):
            lines.append(bar.bar.line())

    history = await program.fit(
        xs, ys, epochs=2, batch_size=6, validation_split=0.2, engine=engine, verbose=False,
        callbacks=[SnapshotAt(3, storage / RUN, mid / RUN), bar, Lines()])
    return {"storage": storage, "mid": mid, "program": program, "history": history,
            "engine": engine, "bar_lines": lines}


class Page(HTMLParser):
    """Collects ids, images, section texts and table rows of the report."""

    def __init__(self):
        super().__init__()
        self.ids, self.images, self.tables, self.lineage = {}, [], {}, []
        self.section, self.sections = None, {}
        self._table, self._row, self._cell = None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids[attrs["id"]] = tag
        if tag == "section":
            self.section = attrs.get("id")
            self.sections[self.section] = ""
        if tag == "img":
            self.images.append(attrs)
        if tag == "li" and "data-candidate" in attrs:
            self.lineage.append(attrs["data-candidate"])
        if tag == "table" and attrs.get("id"):
            self._table = attrs["id"]
            self.tables[self._table] = []
        if tag == "tr" and self._table:
            self._row = []
        if tag == "td" and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            if self._row:
                self.tables[self._table].append(self._row)
            self._row = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self.section:
            self.sections[self.section] += data
        if self._cell is not None:
            self._cell += data


def _state(storage):
    return json.loads((storage / RUN / "optimizer_state.json").read_text())["optimizer"]


def test_report_shows_the_runs_real_curves_lineage_and_failures(ray_run, tmp_path, capsys):
    storage, program = ray_run["storage"], ray_run["program"]
    out = tmp_path / "report.html"
    assert main(["report", RUN, "--storage", str(storage), "--out", str(out)]) == 0
    assert "report written to" in capsys.readouterr().out
    text = out.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text
    page = Page()
    page.feed(text)

    # reward curve: an inline PNG, also written next to the HTML
    curve = next(i for i in page.images if i.get("id") == "reward-curve")
    assert curve["src"].startswith("data:image/png;base64,")
    assert (tmp_path / curve["data-file"]).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "report-validation.png").exists()

    # per-generation numbers are the run's own
    state = _state(storage)
    rows = page.tables["generation-table"]
    assert len(rows) == len(state["history"]) == 8 == len(ray_run["history"].generations)
    for row, generation in zip(rows, ray_run["history"].generations, strict=True):
        assert row[0] == str(generation["generation"])
        assert row[3] == f"{generation['reward']:.3f}"
        assert row[2] == str(generation["lm_calls"])

    best_val = ray_run["history"].history["val_reward"][-1]
    assert f"Best validation reward{best_val:.3f}" in page.sections["summary"].replace("\n", "")
    assert "Generations8 / 8" in page.sections["summary"]

    # lineage: a chain from the seed to the best, each step with its kind
    best = ray_run["engine"].remote_optimizer.best().id
    assert state["best_id"] == best
    candidates = {c["id"]: c for c in state["candidates"]}
    chain, current = [], best
    while current:
        chain.insert(0, current)
        current = (candidates[current]["parents"] or [None])[0]
    assert page.lineage == chain and chain[0] != best  # seed -> ... -> best
    exploited = state["extra"]["exploited"]
    lineage = page.sections["lineage"]
    kinds = {"seed": "seed", "reflect": "reflection rewrite", "resample": "demo resample",
             "perturb": "demo swap", "crossover": "crossover"}
    for cid in chain:
        kind = kinds[candidates[cid]["operation"].split()[0]]
        kind = f"exploit copy + {kind}" if cid in exploited else kind
        assert f"{cid} {kind}" in lineage

    # best program: its instructions and examples
    best_state = json.loads((storage / RUN / "best_program.json").read_text())["state"]
    assert best_state == program.get_state()
    section = page.sections["best-program"]
    instructions = best_state["generator"]["instructions"]
    assert (instructions or "(none: the default prompt)") in section
    assert f"Examples ({len(best_state['generator']['examples'])})" in section

    # failures: validation examples 24 (expected "no") and 29 (expected "yes") are hard
    failures = {row[0]: row for row in page.tables["failure-table"]}
    assert {"24", "29"} <= set(failures)
    assert json.loads(failures["24"][2]) == {"answer": "no"}
    assert json.loads(failures["24"][3]) == {"answer": "yes"}
    assert failures["24"][4] == "0.000"
    assert json.loads(failures["29"][2]) == {"answer": "yes"}
    val_rows = [r for r in state["table"] if r[0] == best and r[1] == "val"]
    assert len(failures) == sum(1 for r in val_rows if r[3] < 1.0 or r[5])

    cost = page.sections["cost"]
    assert f"LM calls{state['spent']['lm_calls']}" in cost
    assert f"LM failures{state['spent']['lm_failures']}" in cost
    assert state["spent"]["lm_failures"] > 0  # example 21 always fails (ValueError)


def test_report_without_matplotlib_draws_inline_svg(ray_run, tmp_path):
    from synaray.reports import build_report

    out = build_report(RUN, storage=str(ray_run["storage"]), out=tmp_path / "r.html",
                       force_svg=True)
    page = Page()
    page.feed(out.read_text())
    assert page.ids["reward-curve"] == "div" and (tmp_path / "r-rewards.svg").exists()
    assert "<svg" in out.read_text()


def test_status_of_a_finished_run(ray_run, capsys):
    storage = ray_run["storage"]
    status = json.loads((storage / RUN / "status.json").read_text())
    assert main(["status", RUN, "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert "state        finished: epochs completed (2)" in out
    assert "generation   8/8" in out
    assert f"best reward  {status['best_val_reward']:.3f}  (validation)" in out
    assert f"LM calls     {status['lm_calls']}" in out
    assert f"failures {status['lm_failures']}" in out
    # the path of the run folder works as well
    assert main(["status", str(storage / RUN)]) == 0
    assert "finished" in capsys.readouterr().out


def test_status_mid_run_says_running_with_an_eta_then_stale(ray_run, tmp_path, capsys):
    mid = ray_run["mid"]
    status = json.loads((mid / RUN / "status.json").read_text())
    # copied by the driver after generation 3; the optimizer actor may be a step ahead
    generation = status["generation"]
    assert 3 <= generation < 8 and status["state"] == "running"
    assert main(["status", RUN, "--storage", str(mid)]) == 0
    out = capsys.readouterr().out
    assert "state        running" in out and f"generation   {generation}/8" in out
    assert "ETA" in out
    assert f"LM calls     {status['lm_calls']}" in out
    # --watch reads until the run stops updating: here (updated just now) it goes stale
    fresh = tmp_path / "runs"
    shutil.copytree(mid / RUN, fresh / RUN)
    (fresh / RUN / "status.json").write_text(json.dumps({**status, "updated": time.time()}))
    code = main(["status", RUN, "--storage", str(fresh), "--watch", "--interval", "0.2",
                 "--stale-after", "1"])
    out = capsys.readouterr().out
    assert code == 3
    assert f"{RUN} [running]  generation {generation}/8" in out and "state        stale" in out


class Explode(callbacks.Callback):
    def on_batch_end(self, step, logs=None):
        if step == 2:
            raise RuntimeError("driver crashed")


class StopTraining(callbacks.Callback):
    def on_batch_end(self, step, logs=None):
        if step == 1:
            self.program.stop_training = True


@pytest.mark.parametrize("how", ["failed", "stopped", "early"])
async def test_status_of_a_fit_that_failed_or_was_stopped(how, tmp_path, capsys):
    """A driver callback raising: "failed"; setting program.stop_training: "stopped" (after
    the step the optimizer actor is in); EarlyStopping, a stop condition evaluated in the
    actor: "finished" with its reason (changed: it was "stopped" when the loop ran on the
    driver)."""
    import ray

    from synaray.engines.ray import RayEngine

    xs, ys = make_data(24)
    program = await make_program()
    engine = RayEngine(num_evaluators=1, storage=str(tmp_path), run_name=how)
    try:
        if how == "failed":
            with pytest.raises(RuntimeError, match="driver crashed"):
                await program.fit(xs, ys, epochs=1, batch_size=6, engine=engine,
                                  callbacks=[Explode()], verbose=False)
        elif how == "stopped":
            await program.fit(xs, ys, epochs=3, batch_size=6, engine=engine,
                              callbacks=[StopTraining()], verbose=False)
        else:
            stop = callbacks.EarlyStopping(monitor="val_reward", patience=0)
            await program.fit(xs, ys, epochs=3, batch_size=12, validation_split=0.25,
                              engine=engine, callbacks=[stop], verbose=False)
            assert stop.stopped_epoch is not None
    finally:
        if how != "early":  # a finished run's actor is closed by the fit
            ray.kill(engine.optimizer_actor, no_restart=True)  # detached: still alive
    assert main(["status", how, "--storage", str(tmp_path)]) == (3 if how == "failed" else 0)
    out = capsys.readouterr().out
    expected = {"failed": "state        failed: RuntimeError: driver crashed",
                "stopped": "state        stopped: stopped by a callback (program.stop_training)",
                "early": "early stopping: val_reward did not improve for 1 epoch(s)"}[how]
    assert expected in out
    if how == "stopped":
        assert json.loads((tmp_path / how / "status.json").read_text())["generation"] < 12


def test_status_of_a_missing_run_lists_the_runs_there(ray_run, capsys):
    assert main(["status", "nope", "--storage", str(ray_run["storage"])]) == 1
    assert f"runs there: {RUN}" in capsys.readouterr().err


def test_progress_bar_shows_the_status_fields(ray_run):
    """Generation, rate, LM calls (and their rate), failures, best so far, ETA."""
    from synaray.utils.progress import best_so_far

    lines = ray_run["bar_lines"]
    # what the run reported at generation 3 (its stored events)
    events = json.loads((ray_run["storage"] / RUN / "events.json").read_text())["events"]
    ends = [e for e in events if e["kind"] == "batch_end" and e["generation"] <= 3]
    view = ends[-1]["view"]
    third = lines[2]
    assert "3/8  generations" in third and "eta " in third
    assert re.search(r"generations  [0-9.]+/(s|min)  lm_calls=", third)
    assert f"lm_calls={view['spent']['lm_calls']} (" in third
    assert f"failures={view['spent']['lm_failures']}" in third
    best, source = best_so_far(view["best_val_reward"], [e["logs"] for e in ends])
    assert (f"best={best:.3f}" if source == "val" else f"best={best:.3f} (train)") in third
    assert lines[-1].startswith("fit thirds  8/8  generations")


def test_actor_names_are_readable(ray_run, ray_cluster):
    state_api = pytest.importorskip("ray.util.state")
    try:
        actors = state_api.list_actors(address=ray_cluster.address, limit=1000)
    except Exception as exc:  # no dashboard in this cluster
        pytest.skip(f"Ray state API unavailable: {exc}")
    names = {a.name for a in actors}
    assert f"synaray-optimizer-{RUN}" in names
    assert {f"synaray-evaluator-{RUN}-0", f"synaray-evaluator-{RUN}-1"} <= names
