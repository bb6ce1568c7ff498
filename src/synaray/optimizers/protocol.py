"""The ask/tell contract between optimizers and engines (DESIGN §2).

An optimizer never runs a program. It *asks* for evaluations (`EvalRequest`: a candidate's
state and example ids of a split), an engine runs them and returns one `EvalResult` per
(candidate, example), and the optimizer is *told* the results. Everything here is plain
data: JSON-compatible, picklable, free of Ray and asyncio.

Contract for engines (the GEPA adapter rules):
- one result per requested (candidate_id, example_id), whatever the completion order;
- `reward` is a float, higher is better; a failed prediction has `y_pred=None`, a reward
  (usually 0.0) and `error` set: a per-example failure is a result, never an exception;
- inputs are not mutated.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from synaray.data.schema_utils import canonical_json

__all__ = ["Candidate", "EvalRequest", "EvalResult", "candidate_id"]

TRAIN = "train"
VAL = "val"


def candidate_id(state: dict) -> str:
    """The content hash of a program state: equal states share an id (and their scores)."""
    return hashlib.sha256(canonical_json(state).encode()).hexdigest()[:12]


@dataclass
class Candidate:
    """A program state under search, with its lineage.

    Attributes:
        state: the program's trainable state (`Program.get_state()` JSON).
        id: `candidate_id(state)`.
        parents: ids of the candidates it was made from.
        operation: how it was made ("seed", "fewshot", "reflect", "crossover", ...).
        generation: the generation in which it was made.
    """

    state: dict
    id: str = ""
    parents: list[str] = field(default_factory=list)
    operation: str = "seed"
    generation: int = 0

    def __post_init__(self) -> None:
        if not self.id:
            self.id = candidate_id(self.state)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Candidate:
        return cls(**data)

    def __repr__(self) -> str:
        return f"<Candidate id={self.id} op={self.operation} gen={self.generation}>"


@dataclass(frozen=True)
class EvalRequest:
    """Score `state` (candidate `candidate_id`) on `example_ids` of `split` ("train"/"val")."""

    candidate_id: str
    state: dict
    example_ids: tuple[str, ...]
    split: str

    def __repr__(self) -> str:
        return (f"<EvalRequest candidate={self.candidate_id} split={self.split} "
                f"examples={len(self.example_ids)}>")


@dataclass
class EvalResult:
    """One (candidate, example) evaluated: prediction, reward, error, trace and usage.

    `trace` lists the trainable modules' inputs and outputs for this example
    (`{"module", "inputs", "outputs"}` dicts): what few-shot optimizers turn into examples.
    """

    candidate_id: str
    example_id: str
    split: str
    reward: float
    y_pred: dict | None = None
    error: str | None = None
    trace: list[dict] = field(default_factory=list)
    lm_calls: int = 0
    lm_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EvalResult:
        return cls(**data)

    def __repr__(self) -> str:
        return (f"<EvalResult candidate={self.candidate_id} example={self.example_id} "
                f"reward={self.reward:.3g}>")
