"""`Proposal`: one instruction proposal an optimizer asks its LM for (plain data).

Optimizers gather the proposals of a step first (their random draws made in a fixed
order), then make the calls together (`Optimizer.propose_many`), so reflective rewrites and
grounded proposals overlap with each other, and with evaluations in a steady-state search.

Example:
    >>> Proposal([{"role": "user", "content": "Write instructions."}]).kwargs
    {}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROPOSALS_AT_ONCE", "Proposal"]

#: Proposals in flight at once, per optimizer (each also takes an LM-call slot).
PROPOSALS_AT_ONCE = 8


@dataclass
class Proposal:
    """The prompt of one proposal, the cases and examples it shows (a proposal copying
    them is rejected), and extra arguments of the call (e.g. `temperature`)."""

    messages: list[dict]
    cases: list[dict] | None = None
    shown: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
