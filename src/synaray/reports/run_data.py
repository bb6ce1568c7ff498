"""`RunData`: what a report needs from a run's saved files, as plain Python.

It reads the files a run writes to `<storage>/<run>/`:
`optimizer_state.json` (history per generation, candidates and lineage, the score table with
every prediction, reward and error, the budget spent), `status.json`, `best_program.json`,
`data/train.parquet` / `data/val.parquet` (inputs and expected outputs), and, from
`synaray fit`, `predictions_val.parquet` / `predictions_test.parquet` (each row scored by the
initial and by the best program). The file names are those of `synaray.runs.files`; a
LocalEngine run (`synaray fit`, or `BackupAndRestore(folder, delete_checkpoint=False)`)
writes the same files through the same checkpointer (a `BackupAndRestore` folder has no
data snapshot: everything but the inputs and expected outputs is then available).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LineageStep", "RunData", "mutation_kind"]

# The first word of a candidate's `operation` (optimizers/strategies/mutations.py) -> kind.
KINDS = {
    "seed": "seed",
    "resample": "demo resample",
    "perturb": "demo swap",
    "reflect": "reflection rewrite",
    "crossover": "crossover",
    "fewshot": "few-shot draw",
    "mutation": "LM rewrite",
}


def mutation_kind(operation: str, exploited: bool = False) -> str:
    """A readable kind for a lineage operation ("exploit copy + demo resample", ...).

    Example:
        >>> mutation_kind("reflect generator.instructions (0 -> 12 chars)", exploited=True)
        'exploit copy + reflection rewrite'
    """
    parts = [p.strip() for p in (operation or "").split(";") if p.strip()]
    kinds = []
    for part in parts or ["seed"]:
        kind = KINDS.get(part.split()[0], part.split()[0])
        if kind not in kinds:
            kinds.append(kind)
    text = " + ".join(kinds)
    return f"exploit copy + {text}" if exploited else text


@dataclass
class LineageStep:
    """One candidate on the path from the seed to the best."""

    id: str
    generation: int
    operation: str
    kind: str
    parents: list[str]
    train_reward: float | None
    val_reward: float | None
    replaced: str | None = None


@dataclass
class RunData:
    """A run's saved state, read once. Build it with `RunData.load(store)`.

    Attributes:
        name: the run name.
        location: where the run lives.
        state: the optimizer state (`Optimizer.state_dict()`).
        status: `status.json` (or a status derived from the state).
        best_program: the payload of `best_program.json`, or None.
        data: per split, example id -> (input JSON, expected JSON); empty if not saved.
        predictions: per split ("val", "test"), the rows scored before and after the search
            (`synaray.config.before_after.COLUMNS`); empty when `synaray fit` wrote none.
    """

    name: str
    location: str
    state: dict[str, Any]
    status: dict[str, Any]
    best_program: dict | None = None
    data: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    predictions: dict[str, list[dict]] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Any) -> RunData:
        """Read a run from its `RunStorage` (see `synaray.observability.run_files.open_run`)."""
        from synaray.errors import CheckpointError
        from synaray.observability.run_files import display_location
        from synaray.observability.status import RunStatus
        from synaray.runs.checkpoint import load_checkpoint, stored_status
        from synaray.runs.files import BEST_PROGRAM, OPTIMIZER_STATE, predictions_file
        from synaray.runs.snapshot import read_split_table

        checkpoint = load_checkpoint(store)
        if checkpoint is None:
            raise CheckpointError(f"Run {store.run_name!r} has no {OPTIMIZER_STATE} in "
                                  f"{display_location(store)}: nothing to report yet.")
        state = checkpoint.optimizer
        status = stored_status(store, checkpoint)
        # the state as `synaray status` tells it: "stale" for a silent running run
        status = {**status, "state": RunStatus(status).state}
        best_program = store.read_json(BEST_PROGRAM) if store.exists(BEST_PROGRAM) else None
        data = {}
        for split in ("train", "val"):
            table = read_split_table(store, split)
            if table is not None:
                columns = table.to_pydict()
                data[split] = {i: (_loads(x), _loads(y)) for i, x, y in
                               zip(columns["id"], columns["x"], columns["y"], strict=True)}
        predictions = {split: store.read_table(predictions_file(split)).to_pylist()
                       for split in ("val", "test")
                       if store.exists(predictions_file(split))}
        return cls(store.run_name, display_location(store), state, status, best_program, data,
                   predictions)

    # --- basic views ---------------------------------------------------------------------
    @property
    def state_text(self) -> str:
        """How the run stands: "finished", "running", "stale", or "failed"/"stopped" with
        the reason the run wrote ("failed: ValueError: ...")."""
        state = self.status.get("state") or "-"
        reason = self.status.get("error")
        return f"{state}: {reason}" if state in ("failed", "stopped") and reason else state

    @property
    def history(self) -> list[dict]:
        return list(self.state.get("history") or [])

    @property
    def spent(self) -> dict:
        return dict(self.state.get("spent") or {})

    @property
    def best_id(self) -> str:
        return self.state["best_id"]

    @property
    def candidates(self) -> dict[str, dict]:
        return {c["id"]: c for c in self.state.get("candidates", [])}

    @property
    def val_split(self) -> str:
        """The split candidates are validated on: "val" when the run had validation data."""
        if "val" in self.data or any(row[1] == "val" for row in self._rows):
            return "val"
        return "train"

    @property
    def _rows(self) -> list[list]:
        return self.state.get("table") or []

    def rows(self, candidate: str, split: str) -> list[dict]:
        """The score-table rows of a candidate on a split: id, reward, prediction, error."""
        return [{"example_id": e, "reward": r, "y_pred": y, "error": err}
                for c, s, e, r, y, err in self._rows if c == candidate and s == split]

    def mean_reward(self, candidate: str, split: str) -> float | None:
        values = [row["reward"] for row in self.rows(candidate, split)]
        return sum(values) / len(values) if values else None

    def best_state(self) -> dict:
        """The best program's trainable state: module -> {instructions, examples}."""
        if self.best_program is not None and self.best_program.get("state") is not None:
            return self.best_program["state"]
        return self.candidates.get(self.best_id, {}).get("state", {})

    # --- lineage -------------------------------------------------------------------------
    def lineage(self, candidate: str | None = None) -> list[LineageStep]:
        """The chain seed -> ... -> `candidate` (default: the best), through first parents."""
        known = self.candidates
        exploited = (self.state.get("extra") or {}).get("exploited") or {}
        chain: list[LineageStep] = []
        current = candidate or self.best_id
        seen: set[str] = set()
        while current in known and current not in seen:
            seen.add(current)
            record = known[current]
            val_split = self.val_split
            chain.append(LineageStep(
                id=current, generation=int(record.get("generation", 0)),
                operation=record.get("operation", ""),
                kind=mutation_kind(record.get("operation", ""), current in exploited),
                parents=list(record.get("parents") or []),
                train_reward=self.mean_reward(current, "train"),
                val_reward=self.mean_reward(current, val_split) if val_split == "val" else None,
                replaced=exploited.get(current)))
            parents = record.get("parents") or []
            current = parents[0] if parents else None
        return list(reversed(chain))

    def kind_counts(self) -> dict[str, int]:
        """How many candidates each kind of operation made (over the whole run)."""
        exploited = (self.state.get("extra") or {}).get("exploited") or {}
        counts: dict[str, int] = {}
        for cid, record in self.candidates.items():
            kind = mutation_kind(record.get("operation", ""), cid in exploited)
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    # --- failures ------------------------------------------------------------------------
    def failures(self, below: float = 1.0, candidate: str | None = None) -> list[dict]:
        """Examples where the best candidate scores under `below` on its validation split.

        Each row: example_id, input, expected (None when the run kept no data), predicted,
        reward, error; worst first.
        """
        split = self.val_split
        rows = self.rows(candidate or self.best_id, split)
        if not rows and split == "val":  # the best was never validated: its training rows
            split = "train"
            rows = self.rows(candidate or self.best_id, split)
        examples = self.data.get(split, {})
        out = []
        for row in rows:
            if row["reward"] < below or row["error"]:
                x, y = examples.get(row["example_id"], (None, None))
                out.append({**row, "split": split, "input": x, "expected": y})
        return sorted(out, key=lambda r: (r["reward"], r["example_id"]))

    def changed_rows(self, split: str = "test") -> dict[str, list[dict]]:
        """The rows of `split` whose reward went up ("improved") or down ("regressed") from
        the initial program to the best one, largest change first."""
        out: dict[str, list[dict]] = {"improved": [], "regressed": []}
        for row in self.predictions.get(split, []):
            if row.get("change") in out:
                out[row["change"]].append(row)
        for rows in out.values():
            rows.sort(key=lambda r: (-abs(r["reward_after"] - r["reward_before"]), r["id"]))
        return out

    def error_counts(self) -> dict[str, int]:
        """Failed evaluations (an error recorded) over the whole score table, by error type."""
        counts: dict[str, int] = {}
        for _, _, _, _, _, error in self._rows:
            if error:
                kind = str(error).split(":", 1)[0].strip() or "Error"
                counts[kind] = counts.get(kind, 0) + 1
        return counts


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
