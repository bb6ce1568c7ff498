"""`PopulationSearch`: population-based training for prompts (DESIGN §4), the flagship.

One generation, in the order of DESIGN §4 (each a named step below):

1. `_select`: every member was scored on the same minibatch (the base asks for that), so
   members are ranked by their paired minibatch score.
2. `_exploit`: members of the bottom quantile are replaced by copies of members of the
   top quantile, except those on the per-example Pareto front (a member that is best on
   some example nobody else covers survives even with a low mean).
3. `_explore`: each copy, and each new member while the population grows, is perturbed by
   one operation drawn by probability: resample a module's few-shot examples from rewarded
   traces, swap one example, rewrite a module's instructions with an LM that sees this
   minibatch's failures (reflective mutation), or take each module from one of two parents
   (crossover). An operation that cannot apply (no demos, no LM, a failed LM call) gives
   way to another one.
4. `_promote`: the leading members not yet validated are scored on the whole validation
   set during the next generation, so the best on validation is known mid-epoch.

Sample efficiency (opt-in; `auto=` or `lm_calls=` turns all of it on):

- a budget preset (`strategies/presets.py`) chooses the minibatch, the population, the
  demo sets, the validation size and the promotions from the data at hand, stops the search
  at the budget and shrinks a generation that would not fit in the calls left;
- a diverse first generation (`demo_sets`, `instruction_proposals`): after the program alone
  has run on the first minibatch (its traces fill the demo pool, with the labels of those
  examples), the population becomes the program plus several demo sets drawn across distinct
  answers and instruction proposals grounded in a summary of the data
  (`strategies/proposals.py`), instead of growing a few children at a time;
- racing (`racing`, `strategies/racing.py`): a promoted candidate is scored on a third of
  the validation set first and on the rest only if it kept up with the best.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synaray.errors import ConfigError
from synaray.optimizers.budget import Budget
from synaray.optimizers.optimizer import Optimizer
from synaray.optimizers.protocol import TRAIN, Candidate, EvalRequest, EvalResult, candidate_id
from synaray.optimizers.steady_population import SteadyStateMixin
from synaray.optimizers.strategies.demos import (
    DemoPool,
    label_as_output,
)
from synaray.optimizers.strategies.few_shot import FewShotSearch
from synaray.optimizers.strategies.knobs import (
    check_int,
    check_number,
    check_probability,
    fill_doc,
)
from synaray.optimizers.strategies.mutations import (
    crossover,
    crossover_genes,
    draw_crossover,
    swap_example,
    with_examples,
    with_instructions,
)
from synaray.optimizers.strategies.pareto import (
    GenerationRanking,
    exploit_losers,
    pareto_front,
    quantiles,
    rank,
)
from synaray.optimizers.strategies.presets import (
    PRESET_DEMOS,
    SearchPlan,
    plan_search,
    preset_lm_calls,
)
from synaray.optimizers.strategies.proposal import Proposal
from synaray.optimizers.strategies.proposals import (
    data_summary,
    grounded_messages,
    shown_examples,
)
from synaray.optimizers.strategies.reflection import (
    FailureLog,
    reflection_messages,
    sample_cases,
)
from synaray.optimizers.strategies.steady import SteadySchedule
from synaray.optimizers.validation_race import ValidationRaceMixin
from synaray.saving import deserialize_object, serialize_object

__all__ = ["PopulationSearch"]

OPERATIONS = ("resample", "perturb", "reflect", "crossover")
# Knobs a budget preset chooses unless given: their values without a preset.
_DEFAULTS = {"population_size": 8, "nb_min_examples": 1, "nb_max_examples": 4, "promote_k": 2,
             "demo_sets": 0, "instruction_proposals": 0, "racing": False}
# With a preset, before setup() sizes the population from the data.
_PRESET_DEFAULTS = {**_DEFAULTS, "nb_min_examples": PRESET_DEMOS[0],
                    "nb_max_examples": PRESET_DEMOS[1], "racing": True}
# The epoch count of a preset search: the LM-call budget stops it first.
_PRESET_EPOCHS = 1000
# Training examples summarised for grounded proposals, and examples shown in their prompt.
_SUMMARY_ROWS, _PROPOSAL_EXAMPLES = 200, 4
STALLED = "no new evaluation in a generation: nothing left to try"
# What an operation made: (new state, readable operations, parent ids).
Made = tuple[dict, list[str], list[str]]


class PopulationSearch(ValidationRaceMixin, SteadyStateMixin, FewShotSearch, Optimizer):
    """Population-based search over instructions and few-shot examples (DESIGN §4).

    See the module docstring for one generation's steps. Members are compared on the same
    minibatch (paired scores); the bottom quantile copies the top quantile unless it holds
    part of the per-example Pareto front; copies and new members are explored by resampling
    or swapping demos, by reflective mutation of instructions, or by crossover; leading
    members are promoted to the validation set, and the best on validation is kept.

    Args:
        language_model: the model that rewrites instructions in reflective mutation; None
            disables reflection (its probability is shared by the other operations).
        population_size: members scored per generation (integer >= 1, default 8). The
            population starts from the program alone and grows by explored children.
            Cost per generation: up to `population_size * batch_size` program runs.
        quantile_fraction: share of the population in the top and in the bottom quantile
            (in (0, 0.5], default 0.25; a quantile holds `ceil(n * fraction)` members, at
            most half the population). Higher replaces more members per generation.
        reflection_probability: chance that an explored child comes from reflective
            mutation (in [0, 1], default 0.4). Each costs one call of `language_model`,
            counted in the budget.
        crossover_probability: chance of crossover with a second member, preferably from
            the Pareto front (in [0, 1], default 0.1). No LM call.
        resample_probability: chance of resampling all examples of one module from the demo
            pool (in [0, 1], default 0.25). The remaining probability, `1 -` the three
            above, is that of swapping a single example; the three must sum to <= 1.
{{few_shot_args}}
        reflection_examples: failing examples of the minibatch shown to the LM per
            reflection (integer >= 1, default 4); each lengthens the reflection prompt.
        promote_k: leading members (by this generation's paired score) promoted to the full
            validation set when not yet validated (integer >= 0, default 2; 0 disables
            promotion, as does the absence of validation data). Each promotion costs one
            program run per validation example.
        auto: a budget preset, "light", "medium" or "heavy" (150, 600 or 2000 LM calls;
            default None). The preset chooses the minibatch (replacing fit's `batch_size`),
            the population, the demo sets, instruction proposals, the validation size and
            promotions from the data (`strategies/presets.py`), turns racing on, uses 4-8
            demos, and stops at the budget (fit's `epochs` is not used). Knobs given
            explicitly win. Not yet the default: see the README's bench results.
        lm_calls: the same with a budget of this many LM calls (integer >= 20; not with
            `auto`).
        demo_sets: demo sets in the first generation (integer >= 0; default 0, or the
            preset's): after the program alone has run on the first minibatch, the
            population becomes the program plus this many candidates whose modules get
            demos drawn across distinct answers (labelled and bootstrapped).
        instruction_proposals: candidates of the first generation whose instructions an LM
            writes from a summary of the training data (integer >= 0; default 0, or the
            preset's; needs `language_model`; one LM call each, counted in the budget).
        racing: score a promoted candidate on a third of the validation set first, and on
            the rest only if it is not below the best candidate there (default False, True
            with a preset).
        steady_state: True for the steady-state (asynchronous) search: each member moves
            on to its next minibatch, or gives its slot to a child, as soon as its own
            minibatch is scored, compared with the members scored on the same examples; no
            generation waits for its slowest member (`steady_population.py`). `fit` then
            keeps several evaluations in flight. False (the default): generation by
            generation. "auto": steady-state on RayEngine, generation by generation
            elsewhere (chosen by `fit` through `choose_loop`). Presets, racing and the
            diverse first generation work in both modes.
        surrogate: in a preset's race on validation (generation by generation), make up
            to half of each later generation's challengers from a surrogate model, MIPROv2's
            way: an additive model of the instructions and demo set of each module, fitted
            to the paired validation scores of the candidates raced so far, proposes the
            untried combinations it expects to score best (`strategies/surrogate.py`; no LM
            call). Default False; elsewhere it has no effect.
{{search_args}}
{{raises}}

    Example:
        >>> search = PopulationSearch(population_size=6, quantile_fraction=0.5, seed=3)
        >>> search
        <PopulationSearch population=6>
        >>> PopulationSearch.from_config(search.get_config()).quantile_fraction
        0.5
    """

    def __init__(self, language_model: Any = None, population_size: int | None = None,
                 quantile_fraction: float = 0.25, reflection_probability: float = 0.4,
                 crossover_probability: float = 0.1, resample_probability: float = 0.25,
                 nb_min_examples: int | None = None, nb_max_examples: int | None = None,
                 sampling: str = "softmax", sampling_temperature: float = 0.3,
                 reflection_examples: int = 4, promote_k: int | None = None, seed: int = 0,
                 budget: Budget | dict | None = None, val_top_k: int = 2,
                 use_labels: bool = True, auto: str | None = None,
                 lm_calls: int | None = None, demo_sets: int | None = None,
                 instruction_proposals: int | None = None, racing: bool | None = None,
                 steady_state: bool | str = False, surrogate: bool = False,
                 name: str | None = None) -> None:
        self.preset_calls = preset_lm_calls(auto, lm_calls)
        self.auto, self.lm_calls = auto, lm_calls
        given = {"population_size": population_size, "nb_min_examples": nb_min_examples,
                 "nb_max_examples": nb_max_examples, "promote_k": promote_k,
                 "demo_sets": demo_sets, "instruction_proposals": instruction_proposals,
                 "racing": racing}
        self._given = {k: v for k, v in given.items() if v is not None}
        knobs = {**(_DEFAULTS if self.preset_calls is None else _PRESET_DEFAULTS),
                 **self._given}
        population_size, promote_k = knobs["population_size"], knobs["promote_k"]
        nb_min_examples, nb_max_examples = knobs["nb_min_examples"], knobs["nb_max_examples"]
        super().__init__(nb_min_examples, nb_max_examples, sampling, sampling_temperature,
                         use_labels, population_size=population_size, val_top_k=val_top_k,
                         seed=seed, budget=budget, name=name)
        check_number("quantile_fraction", quantile_fraction, 0.0, 0.5, low_inclusive=False)
        for knob, value in (("reflection_probability", reflection_probability),
                            ("crossover_probability", crossover_probability),
                            ("resample_probability", resample_probability)):
            check_probability(knob, value)
        total = reflection_probability + crossover_probability + resample_probability
        if total > 1.0 + 1e-9:
            raise ConfigError(
                f"Invalid value for argument `resample_probability`. Received: "
                f"{resample_probability!r}. Expected reflection_probability + "
                f"crossover_probability + resample_probability <= 1 (the sum is {total:g}).")
        self.language_model = language_model
        self.quantile_fraction = quantile_fraction
        self.reflection_probability = reflection_probability
        self.crossover_probability = crossover_probability
        self.resample_probability = resample_probability
        self.reflection_examples = check_int("reflection_examples", reflection_examples, 1)
        self.promote_k = check_int("promote_k", promote_k, 0)
        self.demo_sets = check_int("demo_sets", knobs["demo_sets"], 0)
        self.instruction_proposals = check_int("instruction_proposals",
                                               knobs["instruction_proposals"], 0)
        if not isinstance(knobs["racing"], bool):
            raise ConfigError(f"Invalid value for argument `racing`. Received: "
                              f"{knobs['racing']!r}. Expected True or False.")
        self.racing = knobs["racing"]
        if not isinstance(surrogate, bool):
            raise ConfigError(f"Invalid value for argument `surrogate`. Received: "
                              f"{surrogate!r}. Expected True or False.")
        self.surrogate = surrogate
        if not isinstance(steady_state, bool) and steady_state != "auto":
            raise ConfigError(f"Invalid value for argument `steady_state`. Received: "
                              f"{steady_state!r}. Expected True, False or \"auto\".")
        # "auto" searches generation by generation until `choose_loop` picks the mode
        self.steady_mode = steady_state
        self.steady_state = steady_state is True
        self.plan: SearchPlan | None = None
        self._reset_search_state()

    def _reset_search_state(self) -> None:
        self.demos = DemoPool()
        self.failures = FailureLog()
        self.counters = {**{op: 0 for op in OPERATIONS}, "reflection_failures": 0,
                         "demo_sets": 0, "proposals": 0, "proposal_failures": 0,
                         "trimmed": 0}
        self.last_reflection_error: str | None = None
        self._ranking: list[str] = []
        self._promoted: list[str] = []
        # Lineage detail: child id -> the bottom member whose slot it took (exploit copy).
        self.exploited: dict[str, str] = {}
        # Modules reading the program's inputs, seen on the first minibatch (transient).
        self._direct: dict[str, dict] = {}
        self.steady = SteadySchedule()

    @property
    def operation_probabilities(self) -> dict[str, float]:
        """The probability of each explore operation (before unavailable ones drop out)."""
        perturb = 1.0 - (self.reflection_probability + self.crossover_probability
                         + self.resample_probability)
        return {"resample": self.resample_probability, "perturb": max(0.0, perturb),
                "reflect": self.reflection_probability,
                "crossover": self.crossover_probability}

    # --- budget preset -------------------------------------------------------------------
    def setup(self, initial_state: dict, train: Any, val: Any = None, batch_size: int = 32,
              epochs: int = 1) -> None:
        """Start a search; with a preset, its plan replaces `batch_size` and `epochs`."""
        if self.preset_calls is not None:
            self._apply_plan(initial_state, train, val)
            batch_size, epochs = self.plan.minibatch_size, _PRESET_EPOCHS
        super().setup(initial_state, train, val, batch_size=batch_size, epochs=epochs)

    def _apply_plan(self, initial_state: dict, train: Any, val: Any) -> None:
        n_val = len(val) if val is not None else 0
        self._use_plan(plan_search(self.preset_calls, len(train), n_val,
                                   n_modules=len(initial_state),
                                   with_proposer=self.language_model is not None,
                                   population_size=self._given.get("population_size"),
                                   race=self.racing and not self.steady_state))

    def _use_plan(self, plan: SearchPlan) -> None:
        """Set the knobs the plan chooses (those given explicitly are kept)."""
        self.plan = plan
        self.population_size = plan.population_size
        self.promote_k = self._given.get("promote_k", plan.promote_k)
        self.instruction_proposals = self._given.get("instruction_proposals",
                                                     plan.instruction_proposals)
        self.demo_sets = self._given.get(
            "demo_sets", max(0, plan.population_size - 1 - self.instruction_proposals))
        if self.budget.max_lm_calls is None:
            self.budget = self.budget.model_copy(update={"max_lm_calls": plan.lm_calls})

    def bind_data(self, train: Any, val: Any = None) -> None:
        """As the base; a preset's plan keeps a seeded subset of `val_size` validation ids."""
        super().bind_data(train, val)
        if self.plan is not None and self.val is not None \
                and 0 < self.plan.val_size < len(self.val_ids):
            picks = np.random.default_rng(self.seed).permutation(len(self.val_ids))
            self.val_ids = [self.val_ids[int(i)] for i in sorted(picks[:self.plan.val_size])]

    def load_state_dict(self, state: dict, train: Any, val: Any = None) -> None:
        plan = state.get("extra", {}).get("plan")
        self.plan = None
        if plan:
            self._use_plan(SearchPlan(**plan))
        super().load_state_dict(state, train, val)

    # --- hooks ---------------------------------------------------------------------------
    def initial_population(self, seed: Candidate) -> list[Candidate]:
        self._reset_search_state()
        return [seed]

    def choose_loop(self, prefers_steady_state: bool) -> None:
        """With `steady_state="auto"`: steady-state where the engine prefers it (RayEngine:
        many evaluators to keep busy), generation by generation elsewhere. The choice is
        kept in the config, so the optimizer actor that rebuilds it runs the same loop."""
        if self.steady_mode == "auto":
            self.steady_mode = self.steady_state = bool(prefers_steady_state)

    def ask(self) -> list[EvalRequest]:
        """The evaluations needed now; in steady-state mode only those ready (maybe [])."""
        if not self.steady_state or not self._ready:
            return super().ask()
        return self._steady_ask()

    async def tell(self, results: list[EvalResult]) -> None:
        """Record results and advance; in steady-state mode, results of any complete
        subset of the outstanding requests."""
        if self.steady_state:
            await self._steady_tell(results)
            return
        batch = set(self._batch) if self.phase == TRAIN else set()
        fresh = self._learn(results, batch)
        # the first minibatch, before a diverse first generation: which modules read the
        # program's own inputs (their labelled demos can come from any training example)
        self._direct = (self._direct_modules([r for r in fresh if r.example_id in batch])
                        if self.generation == 0 and self.demo_sets and batch else {})
        await super().tell(results)

    def _direct_modules(self, results: list[EvalResult]) -> dict[str, dict]:
        """Modules whose inputs were the program's inputs on every result: module ->
        an output of theirs (the shape a labelled demo takes)."""
        if not results or not self.use_labels:
            return {}
        inputs = {eid: x.get_json() if hasattr(x, "get_json") else x
                  for eid, (x, _) in zip([r.example_id for r in results],
                                         self.train.fetch([r.example_id for r in results]),
                                         strict=True)}
        direct: dict[str, dict] = {}
        spoiled: set[str] = set()
        for result in results:
            for record in result.trace:
                module = record.get("module")
                if record.get("inputs") != inputs[result.example_id]:
                    spoiled.add(module)
                elif isinstance(record.get("outputs"), dict):
                    direct.setdefault(module, record["outputs"])
        return {m: outputs for m, outputs in direct.items() if m not in spoiled}

    def _label_training_data(self) -> None:
        """Labelled demos of every training example for the modules that read the program's
        inputs (`_direct_modules`): demo sets then cover the whole training set's answers."""
        for module, outputs in sorted(self._direct.items()):
            for example_id, (x, _) in zip(self.train_ids, self.train.fetch(self.train_ids),
                                          strict=True):
                label = self.label_of(example_id)
                if label is not None and set(label) == set(outputs):
                    self.demos.add(module, x.get_json() if hasattr(x, "get_json") else x,
                                   label_as_output(label, outputs), 1.0, example_id)

    async def evolve(self, batch_ids: list[str]) -> None:
        """One generation: select, exploit (keeping the Pareto front), explore, promote.

        After the first generation, with `demo_sets` or `instruction_proposals`, the
        population is replaced by a diverse one instead (`_first_generation`).
        """
        if self.races_on_validation:
            await self._race_evolve(batch_ids)
            self.failures.clear()
            self._race_fit_to_budget()
            return
        ranked = self._select(batch_ids)
        self._ranking = ranked
        if self.generation == 1 and (self.demo_sets or self.instruction_proposals):
            population = await self._first_generation(ranked[0])
            self._promoted = []
        else:
            front = pareto_front(self._per_example(ranked), ranked)
            generation = GenerationRanking(batch_ids, ranked, front)
            population = await self._exploit(generation)
            await self._grow(population, generation)
            self._promoted = self._promote(ranked)
        self.population = population
        self.failures.clear()
        if self.plan is not None:
            self._fit_to_budget()

    def promotions(self) -> list[Candidate]:
        return [self.candidates[cid] for cid in self._promoted
                if self.val_reward(cid) is None and not self._raced_out(cid)]

    def val_candidates(self) -> list[Candidate]:
        """Pending promotions, then the leaders of the last generation's ranking (none in a
        preset's race: it validates as it goes)."""
        if self.races_on_validation:
            return []
        if not self._ranking:
            return super().val_candidates()
        ids = [c.id for c in self.promotions()] + self._ranking[:self.val_top_k]
        ids = [cid for cid in dict.fromkeys(ids) if not self._raced_out(cid)]
        if self.plan is not None:
            ids = ids[:max(1, self._affordable_runs() // max(1, len(self.val_ids)))]
        return [self.candidates[cid] for cid in ids]

    # --- budget fit (presets) ------------------------------------------------------------
    def _calls_per_run(self) -> float:
        return self.spent.lm_calls / len(self.table) if len(self.table) else 1.0

    def _affordable_runs(self) -> int:
        """Program runs the calls left pay for (a preset always has `max_lm_calls`)."""
        left = (self.budget.max_lm_calls or 0) - self.spent.lm_calls
        return int(left / max(self._calls_per_run(), 1e-9))

    def _fit_to_budget(self) -> None:
        """Shrink the next generation (last members, then promotions) to the calls left;
        stop when not even the leader's minibatch fits.

        Promotions are costed at their whole validation (not just a racing rung): the
        calls to validate the leaders are kept, or the budget could run out with nothing
        validated and the unvalidated program as the result (seen on the bench).
        """
        runs = self._affordable_runs()

        def cost() -> int:
            promoted = sum(len(self.unscored(c.id, self.val_split, self.val_ids))
                           for c in self.promotions())
            # the leader's minibatch of the generations that finish a racing validation
            rounds = 2 if self.racing and promoted else 1
            return (len(self.population) - 1 + rounds) * self.batch_size + promoted

        while cost() > runs and (len(self.population) > 1 or self._promoted):
            if len(self.population) > 1:
                self.population = self.population[:-1]
            else:
                self._promoted = self._promoted[:-1]
            self.counters["trimmed"] += 1
        if self._stalled() and self.stop_reason is None:
            self.stop_reason = STALLED
        if cost() > runs and self.stop_reason is None:
            self.stop_reason = (f"max_lm_calls: the next generation does not fit in the "
                                f"{max(0, (self.budget.max_lm_calls or 0) - self.spent.lm_calls)}"
                                " LM calls left")

    def _stalled(self) -> bool:
        """Nothing new was scored in the last generation (every pair known): more
        generations would only cycle."""
        calls = [h.get("lm_calls") for h in self.history[-2:]]
        return len(calls) == 2 and calls[0] == calls[1]

    # --- the steps of a generation ------------------------------------------------------
    def _select(self, batch_ids: list[str]) -> list[str]:
        members = list(dict.fromkeys(self.population))
        return rank({cid: self.table.mean(cid, TRAIN, batch_ids) for cid in members})

    def _per_example(self, members: list[str]) -> dict[str, dict[str, float]]:
        scores = {}
        for cid in members:
            ids = self.table.scored_ids(cid, TRAIN)
            scores[cid] = {e: float(r) for e, r in zip(ids, self.table.rewards(cid, TRAIN, ids),
                                                       strict=True)}
        return scores

    async def _exploit(self, generation: GenerationRanking) -> list[str]:
        """Bottom-quantile members off the front give their slot to explored top members:
        the survivors in rank order, then each loser's child (the loser if none was made)."""
        losers = self._losers(generation)
        population = [cid for cid in generation.ranked if cid not in losers]
        children = await self._exploit_children(generation, losers, population)
        return population + [child or loser for loser, child in zip(losers, children,
                                                                     strict=True)]

    def _losers(self, generation: GenerationRanking) -> list[str]:
        """The members that give up their slot: as many as the bottom quantile, off the
        Pareto front first (`exploit_losers`)."""
        bottom = quantiles(generation.ranked, self.quantile_fraction)[1]
        return exploit_losers(generation.ranked, bottom, generation.front)

    async def _exploit_children(self, generation: GenerationRanking, losers: list[str],
                                taken: list[str]) -> list[str | None]:
        """The exploit step of both modes: for each of `losers`, in order, a member of the
        top quantile drawn at random is explored into a child whose state is not in
        `taken` (None where no operation made one). A new child's lineage records the loser
        whose slot it takes (`exploited`)."""
        top = quantiles(generation.ranked, self.quantile_fraction)[0]
        parents = [top[int(self.rng.integers(len(top)))] for _ in losers]
        known = set(self.candidates)
        children = await self._explore_many(parents, taken, generation)
        for loser, child in zip(losers, children, strict=True):
            if child is not None and child.id not in known:  # a new candidate
                self.exploited[child.id] = loser
        return [None if child is None else child.id for child in children]

    async def _grow(self, population: list[str], generation: GenerationRanking) -> None:
        """Fill free slots with explored children of the top quantile (or the leader); the
        children of one round are explored together (their LM calls run concurrently)."""
        parents = quantiles(generation.ranked, self.quantile_fraction)[0] or generation.ranked[:1]
        attempts = 0
        while len(population) < self.population_size and attempts < 2 * self.population_size:
            count = min(self.population_size - len(population), 2 * self.population_size
                        - attempts)
            attempts += count
            picks = [parents[int(self.rng.integers(len(parents)))] for _ in range(count)]
            for child in await self._explore_many(picks, population, generation):
                if child is not None:
                    population.append(child.id)

    def _promote(self, ranked: list[str]) -> list[str]:
        """The leaders of this generation not yet validated: scored on validation next."""
        if self.promote_k == 0 or self.val is None:
            return []
        return [cid for cid in ranked[:self.promote_k] if self.val_reward(cid) is None]

    # --- the diverse first generation -------------------------------------------------------
    async def _first_generation(self, seed: str) -> list[str]:
        """The seed, `demo_sets` demo sets and `instruction_proposals` proposals."""
        population = [seed]
        self._label_training_data()
        modules = self._demo_modules(seed)
        attempts = 0
        while modules and self.nb_max_examples > 0 and attempts < 3 * self.demo_sets \
                and len(population) < 1 + self.demo_sets:
            attempts += 1
            child = self._demo_set(seed, modules)
            if child.id not in population:
                population.append(child.id)
                self.counters["demo_sets"] += 1
        wanted = self.instruction_proposals if self.language_model is not None else 0
        count = 0
        while count < wanted and self.calls_left(reserved=count):
            count += 1
        # each proposal keeps the demos of one demo set: without demos it raced against
        # demo sets and never passed the first rung on the bench (six runs of six)
        bases = population[1:1 + count] + [seed] * max(0, count - len(population) + 1)
        for child in await self._grounded_proposals(seed, count, bases):
            if child is not None and child.id not in population:
                population.append(child.id)
                self.counters["proposals"] += 1
        return population

    def _demo_set(self, parent: str, modules: list[str]) -> Candidate:
        state, operations = self.candidates[parent].state, []
        for module in modules:
            state, ops = with_examples(state, module, self._draw_demos(module),
                                       how="demo set")
            operations += ops
        return self.register(Candidate(state, parents=[parent], operation="; ".join(operations),
                                       generation=self.generation))

    async def _grounded_proposals(self, parent: str, count: int,
                                  bases: list[str] | None = None) -> list[Candidate | None]:
        """Instructions written from a summary of the training data (MIPROv2's proposer):
        `count` proposals drawn in order, their LM calls made together, each rewriting
        `parent`'s instructions into the state of its base (`bases[i]`, default `parent`:
        a demo set, whose demos the proposal then keeps)."""
        state = self.candidates[parent].state
        bases = bases or [parent] * count
        ids = self.train_ids[:_SUMMARY_ROWS]
        rows = self.train.fetch(ids) if count else []
        summary = data_summary(rows) if count else ""
        modules, proposals = [], []
        for _ in range(count):
            module = self._pick(sorted(state))
            picks = self.rng.choice(len(ids), size=min(_PROPOSAL_EXAMPLES, len(ids)),
                                    replace=False)
            shown = [rows[int(i)] for i in sorted(picks)]
            modules.append(module)
            proposals.append(Proposal(grounded_messages(
                module, state[module].get("instructions"), shown, summary),
                shown=shown_examples(shown)))
        children: list[Candidate | None] = []
        for module, base, (text, error) in zip(modules, bases,
                                               await self.propose_many(proposals), strict=True):
            if text is None:
                self.counters["proposal_failures"] += 1
                self.last_reflection_error = error
                children.append(None)
                continue
            new_state, ops = with_instructions(self.candidates[base].state, module, text,
                                               how="propose")
            on = "" if base == parent else f" on the demos of {base}"
            children.append(self.register(Candidate(new_state, parents=[base],
                                                    operation=ops[0] + on,
                                                    generation=self.generation)))
        return children

    # --- explore -------------------------------------------------------------------------
    async def _explore_many(self, parents: list[str], population: list[str],
                            generation: GenerationRanking) -> list[Candidate | None]:
        """A new child of each parent by one operation drawn by probability (or None),
        never a state already in `population` or made for an earlier parent.

        The first operation of every child is drawn in parent order and the reflective
        rewrites among them run together (`propose_many`); the children are then settled
        in parent order (an operation that gave nothing gives way to another one), so the
        search is the same whatever order the LM calls complete in.
        """
        plans, proposals = [], []
        for parent in parents:
            weights = {op: p for op, p in self.operation_probabilities.items()
                       if p > 0 and self._available(op, parent, reserved=len(proposals))}
            op = self._draw_operation(weights)
            job = None
            if op == "reflect":
                job = self._reflection_job(parent)
                proposals.append(job[1])
            plans.append((parent, weights, op, job))
        answers = iter(await self.propose_many(proposals) if proposals else [])
        taken, children = list(population), []
        for parent, weights, op, job in plans:
            made = self._reflected(parent, job, *next(answers)) if job is not None else None
            child = await self._settle(parent, weights, op, made, taken, generation)
            if child is not None:
                taken.append(child.id)
            children.append(child)
        return children

    def _draw_operation(self, weights: dict[str, float]) -> str | None:
        if not weights:
            return None
        names = list(weights)
        p = np.asarray([weights[n] for n in names])
        return names[int(self.rng.choice(len(names), p=p / p.sum()))]

    async def _settle(self, parent: str, weights: dict[str, float], op: str | None,
                      made: Made | None, taken: list[str],
                      generation: GenerationRanking) -> Candidate | None:
        """The child of `op` (`made` when its LM call was already made), falling back on
        the other available operations, or None."""
        first = True
        while op is not None:
            if not (first and op == "reflect"):
                made = await self._apply(op, parent, generation)
            first = False
            del weights[op]
            if made is not None:
                state, operations, parents = made
                if candidate_id(state) not in taken and candidate_id(state) != parent:
                    self.counters[op] += 1
                    return self.register(Candidate(state, parents=parents,
                                                   operation="; ".join(operations),
                                                   generation=self.generation))
            op = self._draw_operation(weights)
        return None

    def _available(self, op: str, parent: str, reserved: int = 0) -> bool:
        if op in ("resample", "perturb"):
            return self.nb_max_examples > 0 and bool(self._demo_modules(parent))
        if op == "reflect":
            return (self.language_model is not None and bool(self.failures.notes(parent))
                    and self.calls_left(reserved))
        return True

    async def _apply(self, op: str, parent: str, generation: GenerationRanking) -> Made | None:
        if op == "resample":
            return self._resample(parent)
        if op == "perturb":
            return self._perturb(parent)
        if op == "reflect":
            return await self._reflect(parent)
        return self._crossover(parent, generation)

    def _demo_modules(self, parent: str) -> list[str]:
        return [m for m in self.demos.modules() if m in self.candidates[parent].state]

    def _resample(self, parent: str) -> Made:
        module = self._pick(self._demo_modules(parent))
        state, ops = with_examples(self.candidates[parent].state, module,
                                   self._draw_demos(module))
        return state, ops, [parent]

    def _perturb(self, parent: str) -> Made | None:
        module = self._pick(self._demo_modules(parent))
        current = self.candidates[parent].state[module].get("examples") or []
        if len(current) + 1 < self.nb_min_examples:
            return None  # one demo more cannot reach nb_min_examples: resample instead
        demo = self.demos.sample(module, 1, self._selector, self.rng, exclude=current)
        if not demo:
            return None
        index = int(self.rng.integers(len(current))) if current else 0
        state, ops = swap_example(self.candidates[parent].state, module, index, demo[0])
        if not self._within_caps(state):
            return None  # a parent from before a context overflow capped the demos
        return state, ops, [parent]

    async def _reflect(self, parent: str) -> Made | None:
        job = self._reflection_job(parent)
        return self._reflected(parent, job, *(await self.propose_many([job[1]]))[0])

    def _reflection_job(self, parent: str) -> tuple[str, Proposal, int]:
        """The module to rewrite, the proposal showing its failures, how many cases."""
        state = self.candidates[parent].state
        module = self._pick(sorted(state))
        cases = sample_cases(self.failures.notes(parent), module, self.train,
                             self.reflection_examples, self.rng)
        messages = reflection_messages(module, state[module].get("instructions"), cases)
        return module, Proposal(messages, cases), len(cases)

    def _reflected(self, parent: str, job: tuple[str, Proposal, int], text: str | None,
                   error: str | None) -> Made | None:
        if text is None:
            self.counters["reflection_failures"] += 1
            self.last_reflection_error = error
            return None
        module, _, n_cases = job
        new_state, ops = with_instructions(self.candidates[parent].state, module, text,
                                           how="reflect")
        return new_state, [f"{ops[0]} from {n_cases} failures"], [parent]

    def _crossover(self, parent: str, generation: GenerationRanking) -> Made | None:
        partners = ([c for c in generation.front if c != parent]
                    or [c for c in generation.ranked if c != parent])
        if not partners:
            return None
        other = self._pick(partners)
        state_a, state_b = self.candidates[parent].state, self.candidates[other].state
        from_b = draw_crossover(crossover_genes(state_a, state_b), self.rng)
        if not from_b:
            return None
        state, ops = crossover(state_a, state_b, from_b, names=(parent, other))
        if not self._within_caps(state):
            return None
        return state, ops, [parent, other]

    # --- state and config ---------------------------------------------------------------
    def extra_state(self) -> dict:
        return {**self._pool_state(), "counters": dict(self.counters),
                "ranking": list(self._ranking),
                "promoted": list(self._promoted),
                "last_reflection_error": self.last_reflection_error,
                "exploited": dict(self.exploited),
                "plan": self.plan.to_dict() if self.plan is not None else None,
                **({"steady": self.steady.to_json()} if self.steady_state else {})}

    def load_extra_state(self, state: dict) -> None:
        self._reset_search_state()
        self._load_pool_state(state)
        self.counters.update(state.get("counters", {}))
        self._ranking = list(state.get("ranking", []))
        self._promoted = list(state.get("promoted", []))
        self.last_reflection_error = state.get("last_reflection_error")
        self.exploited = dict(state.get("exploited", {}))
        self.steady = SteadySchedule.from_json(state.get("steady"))

    def get_config(self) -> dict:
        config = {**super().get_config(), **self.few_shot_config()}
        config.update(
            language_model=serialize_object(self.language_model),
            quantile_fraction=self.quantile_fraction,
            reflection_probability=self.reflection_probability,
            crossover_probability=self.crossover_probability,
            resample_probability=self.resample_probability,
            reflection_examples=self.reflection_examples, promote_k=self.promote_k)
        if self.steady_mode is not False:
            config["steady_state"] = self.steady_mode
        if self.surrogate:
            config["surrogate"] = True
        if self.preset_calls is None:
            if self.demo_sets or self.instruction_proposals or self.racing:
                config.update(demo_sets=self.demo_sets, racing=self.racing,
                              instruction_proposals=self.instruction_proposals)
            return config
        # a preset: the knobs it chooses are saved as given (None: the preset's choice)
        for knob in _DEFAULTS:
            config[knob] = self._given.get(knob)
        if self.plan is not None and self.budget.max_lm_calls == self.plan.lm_calls:
            config["budget"] = {k: v for k, v in config["budget"].items()
                                if k != "max_lm_calls"}
        config.update(auto=self.auto, lm_calls=self.lm_calls)
        return config

    @classmethod
    def from_config(cls, config: dict) -> PopulationSearch:
        config = dict(config)
        config["language_model"] = deserialize_object(config.get("language_model"))
        return cls(**config)


PopulationSearch.__doc__ = fill_doc(PopulationSearch.__doc__)
