"""DaaR itself: keep the records with the highest predicted domain entropy (METHOD.md step 8).

Strategies: `top` (global top-k), `customized --major D` (the method's 50% of pseudo-domain D and
10% of every other one, turned into exact quotas of the budget in that 5:1 ratio, weighted by group
size), `balanced` (an equal share per pseudo-domain). Within a group, records go by predicted entropy.
"""

from __future__ import annotations

import numpy as np

from daar.errors import ConfigError
from daar.selectors.base import SelectionResult, Selector, register_selector, top_k
from daar.selectors.context import SelectionContext
from daar.selectors.quotas import allocate, select_by_quota


@register_selector("daar", "Diversity as a Reward: top records by the model's predicted domain entropy")
class DaaRSelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        dm = ctx.domain_model
        scores = dm.pool_entropy
        names = dm.domain_names
        k = len(names)
        sizes = np.bincount(dm.pool_domain, minlength=k)
        strategy = ctx.cfg.strategy
        if strategy == "top":
            selected = top_k(scores, budget)
        else:
            if strategy == "customized":
                if ctx.cfg.major not in names:
                    raise ConfigError(f"--major '{ctx.cfg.major}' is not a domain; choose one of {', '.join(names)}")
                rates = np.array([0.5 if n == ctx.cfg.major else 0.1 for n in names])
                weights = rates * sizes
            else:  # balanced
                weights = np.ones(k)
            quotas = allocate(sizes, weights, budget)
            selected = select_by_quota(dm.pool_domain, scores, quotas)
        cutoff = float(np.min(scores[selected])) if len(selected) else float("nan")
        return SelectionResult(
            selected=selected, scores=scores,
            metadata={"strategy": strategy, "major": ctx.cfg.major, "entropy_cutoff": cutoff,
                      "domain_names": names, "pool_domain_counts": sizes.tolist(),
                      "probe_val_accuracy": dm.probe_metrics.get("val_accuracy"),
                      "synthesis": dm.synthesis},
            extra_columns={**{f"p_{n}": dm.pool_probs[:, i] for i, n in enumerate(names)},
                           "pseudo_domain": np.array(names, dtype=object)[dm.pool_domain]})
