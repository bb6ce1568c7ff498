"""The one checkpointer: its schema, round trip, lease check, and its three writers agree.

No Ray cluster: the optimizer actor's class is driven in this process, as Ray would."""

from __future__ import annotations

import json
import time

import pytest

from observability.tasks import make_data, make_program
from synaray.callbacks import BackupAndRestore
from synaray.errors import CheckpointError
from synaray.runs.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    Checkpointer,
    load_checkpoint,
)
from synaray.runs.files import BEST_PROGRAM, MANIFEST, OPTIMIZER_STATE, STATUS
from synaray.runs.lease import LeaseLostError, RunLease
from synaray.runs.storage import RunStorage

FIT = dict(epochs=1, batch_size=6, validation_split=0.25, verbose=False)


async def fitted(seed: int = 1):
    xs, ys = make_data(24)
    program = await make_program(seed=seed, population_size=2, reflection=False)
    await program.fit(xs, ys, **FIT)
    return program


async def test_the_checkpointer_round_trips_and_writes_every_file(tmp_path):
    program = await fitted()
    optimizer = program.optimizer
    store = RunStorage(str(tmp_path), "r")
    checkpointer = Checkpointer(store, program.to_payload())
    checkpointer.write(optimizer, 7, program_state=program.get_state())

    saved = json.loads((tmp_path / "r" / OPTIMIZER_STATE).read_text())
    assert (saved["format"], saved["version"], saved["step"]) == \
        (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, 7)
    back = load_checkpoint(store)
    assert back.step == 7
    assert back.optimizer == json.loads(json.dumps(optimizer.state_dict()))
    assert back.program_state == json.loads(json.dumps(program.get_state()))
    best = json.loads((tmp_path / "r" / BEST_PROGRAM).read_text())
    assert best["state"] == json.loads(json.dumps(optimizer.best().state))
    status = json.loads((tmp_path / "r" / STATUS).read_text())
    assert status["state"] == "finished" and status["step"] == 7
    manifest = json.loads((tmp_path / "r" / MANIFEST).read_text())
    assert manifest["step"] == 7 and set(manifest["files"]) == {OPTIMIZER_STATE, BEST_PROGRAM,
                                                                STATUS}
    # a restored optimizer continues from the same state
    restored = (await make_program(seed=1, population_size=2, reflection=False)).optimizer
    xs, ys = make_data(24)
    from synaray.trainers.data_adapter import train_val_datasets

    train, val = train_val_datasets(xs, ys, FIT["validation_split"], None)
    restored.load_state_dict(back.optimizer, train, val)
    assert restored.best().id == optimizer.best().id
    assert restored.history == optimizer.history
    # the first start time survives a new checkpointer (a restart, a resume)
    assert Checkpointer(store).started == status["started"]


async def test_the_checkpointer_refuses_to_write_once_its_lease_is_lost(tmp_path):
    program = await fitted()
    store = RunStorage(str(tmp_path), "r")
    lease = RunLease.acquire(store, ttl_s=0.2)
    checkpointer = Checkpointer(store, program.to_payload())
    checkpointer.write(program.optimizer, 1)  # held: written
    assert load_checkpoint(store).step == 1
    time.sleep(0.3)  # expired (not renewed): another run may take the name over
    RunLease.acquire(RunStorage(str(tmp_path), "r"))
    with pytest.raises(LeaseLostError):
        lease.renew()
    for write in (lambda: checkpointer.write(program.optimizer, 2),
                  lambda: checkpointer.write_status(program.optimizer, 2, "failed", "x")):
        with pytest.raises(LeaseLostError):
            write()
    assert load_checkpoint(store).step == 1  # nothing was written
    assert json.loads((tmp_path / "r" / STATUS).read_text())["step"] == 1


def test_the_loader_reads_earlier_files_and_rejects_others(tmp_path):
    store = RunStorage(str(tmp_path), "r")
    assert load_checkpoint(store) is None
    # the optimizer actor's and RunStorageCheckpoint's earlier file
    store.write_json(OPTIMIZER_STATE, {"step": 4, "optimizer": {"epoch": 1}})
    assert (load_checkpoint(store).step, load_checkpoint(store).optimizer) == (4, {"epoch": 1})
    # BackupAndRestore's earlier file (no step)
    store.write_json(OPTIMIZER_STATE, {"optimizer": {"epoch": 0}, "program_state": {"g": {}}})
    old = load_checkpoint(store)
    assert (old.step, old.program_state) == (0, {"g": {}})
    for content, message in [
            ({"step": 1}, "is not a synaray checkpoint.*'optimizer'"),
            ({"format": "other", "optimizer": {}}, "format 'other'; expected"),
            ({"version": CHECKPOINT_VERSION + 1, "optimizer": {}}, "upgrade"),
            ({"step": -1, "optimizer": {}}, "invalid 'step' -1")]:
        store.write_json(OPTIMIZER_STATE, content)
        with pytest.raises(CheckpointError, match=message) as info:
            load_checkpoint(store)
        assert OPTIMIZER_STATE in str(info.value)


async def test_backup_and_restore_and_the_optimizer_actor_write_one_schema(tmp_path):
    from synaray.engines.ray.optimizer_actor import OptimizerActor
    from synaray.runs.snapshot import write_snapshot
    from synaray.saving import serialize_object
    from synaray.trainers.data_adapter import train_val_datasets

    xs, ys = make_data(24)
    program = await make_program(seed=2, population_size=2, reflection=False)
    await program.fit(xs, ys, callbacks=[BackupAndRestore(tmp_path / "backup",
                                                          delete_checkpoint=False)], **FIT)

    fresh = await make_program(seed=2, population_size=2, reflection=False)
    train, val = train_val_datasets(xs, ys, FIT["validation_split"], None)
    store = RunStorage(str(tmp_path), "actor")
    write_snapshot(store, train=train, val=val)
    OptimizerActor(serialize_object(fresh.optimizer), fresh.to_payload(), str(tmp_path),
                   "actor", {"initial_state": fresh.get_state(), "batch_size": 6,
                             "epochs": 1})

    def files(folder):
        return {name: json.loads((folder / name).read_text())
                for name in (OPTIMIZER_STATE, BEST_PROGRAM, STATUS, MANIFEST)}

    local, remote = files(tmp_path / "backup"), files(tmp_path / "actor")
    for name in local:
        assert set(local[name]) == set(remote[name]), name
    assert local[OPTIMIZER_STATE]["format"] == remote[OPTIMIZER_STATE]["format"] \
        == CHECKPOINT_FORMAT
    assert set(local[OPTIMIZER_STATE]["optimizer"]) == set(remote[OPTIMIZER_STATE]["optimizer"])
    # one loader reads both; the actor's file restores a local fit (and the other way)
    assert load_checkpoint(RunStorage(str(tmp_path), "backup")).program_state is not None
    assert load_checkpoint(store).step == 0
    resumed = await make_program(seed=2, population_size=2, reflection=False)
    restore = BackupAndRestore(tmp_path / "actor")
    await resumed.fit(xs, ys, callbacks=[restore], **FIT)
    assert restore.restored_from is not None  # it started from the actor's checkpoint
    assert resumed.optimizer.history == program.optimizer.history
    assert not (tmp_path / "actor" / OPTIMIZER_STATE).exists()  # delete_checkpoint=True
