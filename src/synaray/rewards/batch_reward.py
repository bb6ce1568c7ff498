"""`BatchReward`: rewards that need the whole batch (group-relative scores, ranks, pairs)."""

from __future__ import annotations

import inspect
from typing import Any

from synaray.data import JsonDataModel
from synaray.rewards.reward import Reward
from synaray.rewards.reward_wrappers import FunctionRewardMixin

__all__ = ["BatchReward", "BatchRewardFunctionWrapper"]


class BatchReward(Reward):
    """Base class of rewards computed on the whole batch at once.

    Use it when a sample's reward depends on the other samples: scores centred on the batch
    mean, ranks, normalisation, paired comparisons. Subclasses write
    `call(y_true, y_pred)` where both are lists of `batch_size` masked `JsonDataModel`s, and
    return a `list[float]` of the same length, one reward per sample, in order.

    Missing predictions (None) are left out of the lists given to `call` and score 0.0
    (counted in `missing_predictions`), so `call` never sees a None.

    `compute_batch` returns the per-sample values unreduced: this is what trainers and
    engines call, on the full batch gathered from every shard, so the values do not depend
    on how the evaluation was sharded. `__call__` reduces them with `reduction`.

    Args:
        name, reduction, in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Reward`.

    Raises:
        DataError: (from `compute_batch`) when `call` returns a list of the wrong length, a
            value that is not a number, or NaN; the message names the reward and the index.

    Example:
        >>> import asyncio, math
        >>> class CentredLength(BatchReward):
        ...     def call(self, y_true, y_pred):
        ...         lengths = [len(p["answer"]) for p in y_pred]
        ...         mean = math.fsum(lengths) / len(lengths)
        ...         return [n - mean for n in lengths]
        >>> reward = CentredLength(reduction="none")
        >>> asyncio.run(reward.compute_batch([{"answer": ""}] * 2,
        ...                                  [{"answer": "ab"}, {"answer": "abcd"}]))
        [-1.0, 1.0]
    """

    async def call(self, y_true: list[JsonDataModel],  # type: ignore[override]
                   y_pred: list[JsonDataModel]) -> list[float]:
        """One reward per sample of the batch (lists of equal length, no None)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `call(y_true_list, y_pred_list)`.")

    async def _call_batch(self, y_true: list[JsonDataModel],
                          y_pred: list[JsonDataModel]) -> Any:
        value = self.call(y_true, y_pred)
        return await value if inspect.isawaitable(value) else value

    async def compute_batch(self, y_true: list[Any], y_pred: list[Any]) -> list[float]:
        """Apply masks and return the per-sample rewards of the batch, unreduced."""
        return await self.compute_elementwise(list(y_true), list(y_pred))


class BatchRewardFunctionWrapper(FunctionRewardMixin, BatchReward):
    """Wrap a batched function `fn(y_true_list, y_pred_list, **kwargs) -> list[float]`.

    `fn` may be async or a plain function; it receives the full batch (masked, missing
    predictions left out) and must return one float per sample.

    Args:
        fn: the batched reward function (a named function if the program is to be saved;
            register it with `@synaray.saving.register_synaray_serializable()`).
        name: defaults to the function's name.
        reduction, in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Reward`.
        **kwargs: JSON-serializable keyword arguments passed on to `fn`.

    Example:
        ```python
        async def my_batch_reward(y_true, y_pred):
            # y_true, y_pred: list[JsonDataModel] of length batch_size
            return [1.0 if t.get_json() == p.get_json() else 0.0
                    for t, p in zip(y_true, y_pred)]

        program.compile(
            reward=synalinks.rewards.BatchRewardFunctionWrapper(fn=my_batch_reward),
            optimizer=synalinks.optimizers.RandomFewShot(),
        )
        ```
    """

    FN_SIGNATURE = "fn(y_true_list, y_pred_list, **kwargs) -> list[float]"
