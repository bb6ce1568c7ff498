"""The score table: one entry per (candidate, split, example), so nothing is scored twice."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from synaray.optimizers.protocol import EvalResult

__all__ = ["ScoreTable"]


class ScoreTable:
    """Rewards, predictions and errors keyed by (candidate_id, split, example_id).

    Example:
        >>> table = ScoreTable()
        >>> table.add(EvalResult("c1", "e1", "train", 1.0))
        True
        >>> table.add(EvalResult("c1", "e1", "train", 0.0))  # already scored: ignored
        False
        >>> table.mean("c1", "train", ["e1"])
        1.0
        >>> copy = ScoreTable()
        >>> copy.load_state_dict(table.state_dict())
        >>> copy.scored_ids("c1", "train"), copy.scored_ids("c1", "val"), copy.candidates()
        (['e1'], [], {'c1'})
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, str], dict] = {}
        # (candidate, split) -> its example ids in scoring order: `scored_ids` without a
        # scan of the whole table (thousands of rows in a long search, asked every step)
        self._by_candidate: dict[tuple[str, str], list[str]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: tuple[str, str, str]) -> bool:
        return key in self._rows

    def add(self, result: EvalResult) -> bool:
        """Record a result; False (and nothing changed) if that pair was already scored."""
        key = (result.candidate_id, result.split, result.example_id)
        if key in self._rows:
            return False
        self._rows[key] = {"reward": float(result.reward), "y_pred": result.y_pred,
                           "error": result.error}
        self._by_candidate.setdefault(key[:2], []).append(result.example_id)
        return True

    def get(self, candidate_id: str, split: str, example_id: str) -> dict | None:
        return self._rows.get((candidate_id, split, example_id))

    def missing(self, candidate_id: str, split: str, example_ids: Iterable[str]) -> list[str]:
        return [e for e in example_ids if (candidate_id, split, e) not in self._rows]

    def rewards(self, candidate_id: str, split: str, example_ids: Iterable[str]) -> np.ndarray:
        """Rewards of the scored examples among `example_ids`, in that order."""
        values = [self._rows[(candidate_id, split, e)]["reward"] for e in example_ids
                  if (candidate_id, split, e) in self._rows]
        return np.asarray(values, dtype=float)

    def mean(self, candidate_id: str, split: str, example_ids: Iterable[str]) -> float | None:
        values = self.rewards(candidate_id, split, example_ids)
        return float(values.mean()) if values.size else None

    def scored_ids(self, candidate_id: str, split: str) -> list[str]:
        """The examples `candidate_id` was scored on in `split`, in scoring order."""
        return list(self._by_candidate.get((candidate_id, split), ()))

    def candidates(self) -> set[str]:
        return {c for (c, _) in self._by_candidate}

    def state_dict(self) -> list[list]:
        return [[c, s, e, row["reward"], row["y_pred"], row["error"]]
                for (c, s, e), row in self._rows.items()]

    def load_state_dict(self, rows: list[list]) -> None:
        self._rows = {(c, s, e): {"reward": r, "y_pred": y, "error": err}
                      for c, s, e, r, y, err in rows}
        self._by_candidate = {}
        for c, s, e in self._rows:
            self._by_candidate.setdefault((c, s), []).append(e)
