import pytest

import synaray
from synaray import callbacks
from synaray.errors import ConfigError, DataError, UsageError

from .conftest import make_data, make_program


async def test_fit_improves_and_returns_history(data):
    xs, ys = data
    program = await make_program()
    before = await program.evaluate(xs, ys, verbose=False)
    history = await program.fit(xs, ys, epochs=2, batch_size=6, validation_split=0.25,
                                verbose=False)
    after = await program.evaluate(xs, ys, verbose=False)
    assert before["reward"] == pytest.approx(12 / 36)
    assert after["reward"] == 1.0 and after["accuracy"] == 1.0
    assert history.history["val_reward"][-1] == 1.0
    assert len(history.history["val_reward"]) == 2
    assert len(program.get_state()["generator"]["examples"]) == 2


@pytest.mark.parametrize("latency_seed", [1, 2])
async def test_same_seed_same_history_whatever_the_latencies(data, latency_seed):
    xs, ys = data
    runs = []
    for jitter_seed in (latency_seed, latency_seed + 100):
        program = await make_program(seed=7, jitter_s=0.01, latency_seed=jitter_seed)
        await program.fit(xs, ys, epochs=2, batch_size=6, validation_split=0.25, verbose=False)
        opt = program.optimizer
        runs.append((opt.history, program.get_state(), opt.table.state_dict(), opt.lineage))
    assert runs[0] == runs[1]


async def test_different_seeds_explore_differently(data):
    xs, ys = data
    lineages = []
    for seed in (1, 2):
        program = await make_program(seed=seed)
        await program.fit(xs, ys, epochs=1, batch_size=6, validation_split=0.25, verbose=False)
        lineages.append([c["id"] for c in program.optimizer.lineage])
    assert lineages[0] != lineages[1]


class Kill(callbacks.Callback):
    """Simulates a kill: raises after `after` generations."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_batch_end(self, step, logs=None):
        if step == self.after:
            raise KeyboardInterrupt("killed")


class CountingEngine(synaray.engines.LocalEngine):
    """Counts every (candidate, split, example) it evaluates."""

    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    async def _evaluate(self, requests):
        results = await super()._evaluate(requests)
        self.seen.extend((r.candidate_id, r.split, r.example_id) for r in results)
        return results


async def test_backup_and_restore_resumes_identically(data, tmp_path):
    xs, ys = data
    fit_args = dict(epochs=2, batch_size=6, validation_split=0.25, verbose=False)
    reference_seen = []
    reference = await make_program(seed=3)
    await reference.fit(xs, ys, engine=CountingEngine(reference_seen), **fit_args)

    seen = []
    backup = tmp_path / "backup"
    killed = await make_program(seed=3)
    with pytest.raises(KeyboardInterrupt):
        await killed.fit(xs, ys, engine=CountingEngine(seen),
                         callbacks=[callbacks.BackupAndRestore(backup), Kill(after=5)],
                         **fit_args)
    assert (backup / "optimizer_state.json").exists()
    n_before = len(seen)
    resumed = await make_program(seed=3)
    restore = callbacks.BackupAndRestore(backup)
    await resumed.fit(xs, ys, engine=CountingEngine(seen), callbacks=[restore], **fit_args)
    assert restore.restored_from is not None
    assert 0 < n_before < len(seen)
    assert len(seen) == len(set(seen)), "an evaluation was repeated after the resume"
    assert sorted(seen) == sorted(reference_seen)
    assert resumed.optimizer.history == reference.optimizer.history
    assert resumed.get_state() == reference.get_state()
    assert not (backup / "optimizer_state.json").exists()


async def test_checkpoint_csv_and_early_stopping(data, tmp_path):
    xs, ys = data
    program = await make_program()
    stop = callbacks.EarlyStopping(monitor="val_reward", patience=0)
    ckpt = callbacks.ProgramCheckpoint(tmp_path / "best.json", monitor="val_reward")
    log = callbacks.CSVLogger(tmp_path / "log.csv")
    history = await program.fit(xs, ys, epochs=5, batch_size=6, validation_split=0.25,
                                callbacks=[stop, ckpt, log], verbose=False)
    # val_reward reaches 1.0 in the first epoch and cannot improve: stops after the second.
    assert stop.stopped_epoch == 1 and len(history.epoch) == 2
    assert ckpt.saved == [str(tmp_path / "best.json")]
    loaded = synaray.Program.load(tmp_path / "best.json")
    assert loaded.get_state() == program.get_state()
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and "val_reward" in rows[0] and len(rows) == 3


async def test_bad_arguments_get_clear_errors(data):
    xs, ys = data
    program = await make_program()
    with pytest.raises(DataError, match="different lengths: 36 inputs, 35 outputs"):
        await program.fit(xs, ys[:-1], verbose=False)
    with pytest.raises(DataError, match="empty"):
        await program.fit([], [], verbose=False)
    with pytest.raises(DataError, match=r"validation_split=0\.01 on 36 examples leaves 0"):
        await program.fit(xs, ys, validation_split=0.01, verbose=False)
    with pytest.raises(ConfigError, match="validation_split"):
        await program.fit(xs, ys, validation_split=1.5, verbose=False)
    with pytest.raises(ConfigError, match="epochs"):
        await program.fit(xs, ys, epochs=0, verbose=False)
    with pytest.raises(ConfigError, match="engine"):
        await program.fit(xs, ys, engine="spark", verbose=False)
    with pytest.raises(DataError, match="labels"):
        await program.fit(xs, verbose=False)
    uncompiled = await make_program()
    uncompiled.compiled = False
    with pytest.raises(UsageError, match="compile"):
        await uncompiled.evaluate(xs, ys, verbose=False)


async def test_evaluate_counts_failures_and_returns_predictions():
    xs, ys = make_data(6)
    program = await make_program()
    result = await program.evaluate(xs, ys, verbose=False, return_predictions=True)
    assert result["lm_calls"] == 6 and result["failures"] == 0
    assert [r.example_id for r in result["predictions"]] == [str(i) for i in range(6)]
