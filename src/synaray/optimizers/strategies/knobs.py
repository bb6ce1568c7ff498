"""Knobs shared by the optimizers: argument checks (Keras wording) and their documentation.

The text of a knob is written once here and substituted into each optimizer's docstring
(`{{few_shot_args}}`, `{{search_args}}`), so the same knob never reads differently in two
classes (after Keras' `{{base_optimizer_keyword_args}}`).
"""

from __future__ import annotations

from typing import Any

from synaray.errors import ConfigError
from synaray.optimizers.strategies.selectors import SAMPLINGS, Selector, make_selector

__all__ = ["check_few_shot", "check_int", "check_number", "check_probability", "fill_doc"]

FEW_SHOT_ARGS = """\
        nb_min_examples: fewest few-shot examples a resampled module gets (integer >= 0,
            default given per optimizer). Fewer are used while the demo pool is smaller.
        nb_max_examples: most few-shot examples a resampled module gets (integer >=
            `nb_min_examples`). Each demo lengthens every prompt of its module, so this
            bounds the token cost per call; 0 turns few-shot search off.
        sampling: how demos are drawn from the pool of rewarded traces: "softmax"
            (probability grows with the demo's reward, see `sampling_temperature`),
            "random" (uniform) or "best" (the highest rewards, no randomness).
        sampling_temperature: softmax temperature (> 0, default 0.3); lower concentrates the
            draws on the best-rewarded demos, higher approaches uniform. Only for
            `sampling="softmax"`.
        use_labels: also make labelled demos (default True): for the module whose outputs
            have exactly the keys of the expected output, the training example's inputs with
            its expected output, whatever the program predicted. Demos are drawn spread over
            distinct outputs. False keeps only demos from rewarded predictions (bootstrapped).
"""

SEARCH_ARGS = """\
        seed: seeds the optimizer's numpy RNG (minibatch order and every random choice);
            the same seed, data and (deterministic) models give the same search.
        budget: a `synaray.optimizers.Budget` or dict (`max_generations`, `max_lm_calls`,
            `max_tokens`, `max_cost`, `max_time_s`, `target_reward`); None means only the
            epochs bound the search. LM calls of the optimizer's own proposals count.
        val_top_k: at each epoch end, how many leading members are scored on the whole
            validation set (integer >= 1, default 2); the best on validation is `best()`.
            Each costs one program run per validation example (pairs already scored are
            never rerun).
        name: display name (default: the class name)."""


RAISES = """
    Raises:
        ConfigError: a knob out of range (the message names it and the value received)."""


def fill_doc(doc: str | None) -> str | None:
    """`doc` with the shared knob templates substituted."""
    if doc is None:
        return None
    return doc.replace("{{few_shot_args}}", FEW_SHOT_ARGS).replace(
        "{{search_args}}", SEARCH_ARGS).replace("{{raises}}", RAISES)


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """`value` if it is an integer in [minimum, maximum], else a ConfigError naming it."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        expected = (f"an integer >= {minimum}" if maximum is None
                    else f"an integer between {minimum} and {maximum}")
        raise ConfigError(f"Invalid value for argument `{name}`. Received: {value!r}. "
                          f"Expected {expected}.")
    return value


def check_number(name: str, value: Any, low: float, high: float | None = None,
                 low_inclusive: bool = True) -> float:
    """`value` if it is a number in the range, else a ConfigError naming it."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bound = f"{'>=' if low_inclusive else '>'} {low}"
        expected = f"a number {bound}" + (f" and <= {high}" if high is not None else "")
        raise ConfigError(f"Invalid value for argument `{name}`. Received: {value!r}. "
                          f"Expected {expected}.")
    return float(value)


def check_probability(name: str, value: Any) -> float:
    return check_number(name, value, 0.0, 1.0)


def check_few_shot(nb_min_examples: Any, nb_max_examples: Any, sampling: Any,
                   sampling_temperature: Any) -> Selector:
    """Check the few-shot knobs together; returns the demo selector they describe."""
    check_int("nb_max_examples", nb_max_examples, 0)
    check_int("nb_min_examples", nb_min_examples, 0)
    if nb_min_examples > nb_max_examples:
        raise ConfigError(f"Invalid value for argument `nb_min_examples`. Received: "
                          f"{nb_min_examples!r}. Expected an integer between 0 and "
                          f"`nb_max_examples` ({nb_max_examples}).")
    if sampling not in SAMPLINGS:
        raise ConfigError(f"Invalid value for argument `sampling`. Received: {sampling!r}. "
                          f"Expected one of {list(SAMPLINGS)}.")
    check_number("sampling_temperature", sampling_temperature, 0.0, low_inclusive=False)
    return make_selector(sampling, sampling_temperature)
