"""Small search strategies the optimizers are built from (after GEPA's `strategies/`).

- `selectors`: pick k items by score (`Selector`: softmax, random, best);
- `demos`: the pool of few-shot demos harvested from rewarded traces;
- `pareto`: ranking, PBT quantiles and the per-example Pareto front;
- `mutations`: pure state mutations returning `(new_state, operations)`;
- `reflection`: failure notes, prompts and the structured call that proposes instructions;
- `novelty`: distances and Dominated Novelty Search;
- `knobs`: shared argument checks and knob documentation.

None of them imports Ray, an engine or asyncio; randomness is always an injected numpy
`Generator`.
"""

from __future__ import annotations

__all__ = ["demos", "knobs", "mutations", "novelty", "pareto", "reflection", "selectors"]
