"""Budgets: whichever limit comes first stops a search; what was spent is checkpointed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Budget", "BudgetSpent"]


class Budget(BaseModel):
    """Limits of a search; None means no limit on that axis.

    Args:
        max_generations: ask/tell rounds on training minibatches.
        max_lm_calls: model calls made by evaluations and by the optimizer's own proposals
            (cache hits are not calls).
        max_tokens: prompt plus completion tokens.
        max_cost: in the provider's currency, where litellm knows the price.
        max_time_s: wall time spent in the search, summed across resumes.
        target_reward: stop once the best validation reward reaches this.

    Example:
        >>> Budget(max_lm_calls=2000)
        Budget(max_lm_calls=2000)
    """

    model_config = ConfigDict(extra="forbid")

    max_generations: int | None = Field(default=None, ge=1)
    max_lm_calls: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost: float | None = Field(default=None, gt=0)
    max_time_s: float | None = Field(default=None, gt=0)
    target_reward: float | None = None

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.model_dump(exclude_defaults=True).items())
        return f"Budget({fields})"


class BudgetSpent(BaseModel):
    """What a search has used so far (part of the optimizer state)."""

    generations: int = 0
    lm_calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    time_s: float = 0.0
    lm_failures: int = 0

    def stop_reason(self, budget: Budget, best_reward: float | None) -> str | None:
        """The first limit reached, as a short reason, or None."""
        checks = [
            ("max_generations", self.generations),
            ("max_lm_calls", self.lm_calls),
            ("max_tokens", self.tokens),
            ("max_cost", self.cost),
            ("max_time_s", self.time_s),
        ]
        for name, spent in checks:
            limit = getattr(budget, name)
            if limit is not None and spent >= limit:
                return f"{name} reached ({spent:g} >= {limit:g})"
        if (budget.target_reward is not None and best_reward is not None
                and best_reward >= budget.target_reward):
            return f"target_reward reached ({best_reward:.4g} >= {budget.target_reward:g})"
        return None
