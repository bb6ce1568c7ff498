"""`PassAtK`: the unbiased pass@k estimator over examples with n sampled predictions each."""

from __future__ import annotations

from fractions import Fraction
from math import comb
from typing import Any

from synaray.data import JsonDataModel
from synaray.errors import ConfigError, DataError
from synaray.metrics.metric import Metric
from synaray.rewards import get as get_reward
from synaray.rewards.common import is_batch, mask_sample
from synaray.rewards.reward import Reward
from synaray.saving import deserialize_object, serialize_object

__all__ = ["PassAtK", "pass_at_k"]


def pass_at_k(n: int, c: int, k: int) -> Fraction:
    """`1 - C(n - c, k) / C(n, k)`: the chance that k of n samples, c correct, hold one.

    Exact (a fraction). Needs 0 <= c <= n and 1 <= k <= n.

    Example:
        >>> pass_at_k(n=4, c=1, k=2), pass_at_k(n=4, c=0, k=2), pass_at_k(n=4, c=3, k=2)
        (Fraction(1, 2), Fraction(0, 1), Fraction(1, 1))
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise DataError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; received n={n}, c={c}, "
                        f"k={k}.")
    if n - c < k:
        return Fraction(1)
    return 1 - Fraction(comb(n - c, k), comb(n, k))


class PassAtK(Metric):
    """pass@k (Chen et al., 2021): the mean over examples of the unbiased estimator.

    Input shape: each example is one ground truth with a list of n >= k sampled
    predictions for it. `update_state(y_true, y_pred)` takes either one example
    (`y_true` a sample, `y_pred` a list of its n predictions) or a batch (`y_true` a list of
    samples, `y_pred` a list of lists of predictions, one list per example). n may differ
    between examples. A prediction is correct when `reward(y_true, prediction) >= threshold`
    (exact match of the masked JSON by default); a missing prediction (None) is wrong.
    Engines that already scored the samples can call `update_counts(n, c)` instead.

    The state is an exact rational total of the per-example estimates and an integer count,
    so merged states give exactly the one-pass value.

    Args:
        k: the number of attempts allowed, >= 1.
        reward: what decides correctness: None (exact match), a `Reward` or an identifier
            `synaray.rewards.get` accepts.
        threshold: the reward a prediction needs to count as correct (1.0 by default).
        name: defaults to "pass_at_{k}".
        in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Metric`.

    Raises:
        DataError: (from updates) when an example has fewer than k predictions.

    Example:
        >>> import asyncio
        >>> m = PassAtK(k=2, in_mask=["answer"])
        >>> asyncio.run(m.update_state(
        ...     [{"answer": "4"}, {"answer": "9"}],
        ...     [[{"answer": "4"}, {"answer": "5"}, None, {"answer": "3"}],   # c=1 of n=4
        ...      [{"answer": "1"}, {"answer": "2"}]]))                        # c=0 of n=2
        >>> m.result()
        0.25
    """

    def __init__(self, k: int = 1, reward: Any = None, threshold: float = 1.0,
                 name: str | None = None, in_mask: list[str] | None = None,
                 out_mask: list[str] | None = None, in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"Invalid value for argument `k`. Received: k={k!r}. Expected an "
                              "integer >= 1.")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ConfigError(f"Invalid value for argument `threshold`. Received: "
                              f"threshold={threshold!r}. Expected a number.")
        super().__init__(name=name or f"pass_at_{k}", in_mask=in_mask, out_mask=out_mask,
                         in_mask_pattern=in_mask_pattern, out_mask_pattern=out_mask_pattern)
        self.k = k
        self.reward: Reward | None = get_reward(reward)
        self.threshold = float(threshold)
        self.total = self.add_state("total", 0.0)
        self.count = self.add_state("count", 0)

    def update_counts(self, n: int, c: int) -> None:
        """Add one example with `n` sampled predictions of which `c` are correct."""
        if n < self.k:
            raise DataError(f"Metric {self.name!r}: an example has {n} predictions; pass@"
                            f"{self.k} needs at least k={self.k} per example.")
        self.total.accumulate(pass_at_k(n, c, self.k))
        self.count.accumulate(1)

    async def update_state(self, y_true: Any, y_pred: Any) -> None:
        """Add one example (a sample and its list of predictions) or a batch of them."""
        owner = f"Metric {self.name!r}"
        batch = is_batch(y_true)
        trues = list(y_true) if batch else [y_true]
        preds = list(y_pred) if batch else [y_pred]
        if len(trues) != len(preds) or not all(is_batch(p) for p in preds):
            raise DataError(f"{owner}: expected one list of predictions per example; received "
                            f"{len(trues)} examples and y_pred {type(y_pred).__name__} of "
                            f"length {len(preds)}.")
        for i, (t, samples) in enumerate(zip(trues, preds, strict=True)):
            if len(samples) < self.k:
                raise DataError(f"{owner}: example {i} has {len(samples)} predictions; pass@"
                                f"{self.k} needs at least k={self.k} per example.")
            truth = mask_sample(t, self.masks, owner, "y_true", i)
            if truth is None:
                raise DataError(f"{owner}: y_true of example {i} is None.")
            masked = [mask_sample(p, self.masks, owner, "y_pred", i) for p in samples]
            self.update_counts(len(masked), await self._correct(truth, masked))

    async def _correct(self, truth: JsonDataModel, samples: list[JsonDataModel | None]) -> int:
        if self.reward is None:
            return sum(p is not None and p.get_json() == truth.get_json() for p in samples)
        values = await self.reward.compute_elementwise([truth] * len(samples), samples)
        return sum(v >= self.threshold for v in values)

    def result(self) -> float:
        """Mean pass@k over examples, rounded once; 0.0 before any example."""
        count = self.count.value
        return float(self.total.value / count) if count else 0.0

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k, "threshold": self.threshold,
                "reward": serialize_object(self.reward)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PassAtK:
        config = dict(config)
        reward = deserialize_object(config.pop("reward", None))
        return cls(reward=reward, **config)
