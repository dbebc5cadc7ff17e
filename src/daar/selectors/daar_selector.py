"""The DaaR selector, thin: the fitted DaaRModel's pool scores (daar.method), then the budget.

Keep the records with the highest predicted domain entropy (METHOD.md step 8).

Strategies: `top` (global top-k), `customized --major D` (the method's 50% of pseudo-domain D and
10% of every other one, turned into exact quotas of the budget in that 5:1 ratio, weighted by group
size), `balanced` (an equal share per pseudo-domain). Within a group, records go by predicted entropy.

The two grouped strategies trust the pseudo-domains' names (which cluster is "coding"), so they
refuse to run while a name's margin (daar.method.naming) is below --min-naming-margin, unless
--force-naming; `top` ignores names and always runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from daar.errors import ConfigError
from daar.selectors.base import SelectionResult, Selector, register_selector, top_k
from daar.selectors.context import SelectionContext
from daar.selectors.quotas import allocate, select_by_quota

if TYPE_CHECKING:
    from daar.method.model import DaaRModel
    from daar.settings.sections import SelectionSettings


def check_naming(model: DaaRModel, sel_cfg: SelectionSettings) -> dict[str, Any]:
    """The naming verdict for the manifest; raises for customized / balanced on an unsure name."""
    threshold = sel_cfg.min_naming_margin
    unsure = model.unsure_domains(threshold)
    if unsure and sel_cfg.strategy != "top" and not sel_cfg.force_naming:
        which = ", ".join(f"{n} (margin {m:.3f})" for n, m in unsure.items())
        raise ConfigError(
            f"--strategy {sel_cfg.strategy} groups the pool by pseudo-domain name, but the names of {which} are "
            f"unsure (below --min-naming-margin {threshold:g}): another naming of the clusters fits almost as "
            "well. Give these domains more distinct descriptions or examples in domains.yaml (--domains), "
            "or pass --force-naming to use the names anyway (--strategy top does not use names)")
    return {**model.naming, "min_margin": threshold, "unsure": unsure, "confident": not unsure,
            "forced": bool(unsure) and sel_cfg.strategy != "top" and sel_cfg.force_naming}


@register_selector("daar", "Diversity as a Reward: top records by the model's predicted domain entropy")
class DaaRSelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        model, pool_scores = ctx.daar_model, ctx.daar_scores
        scores, names, domain = pool_scores.entropy, pool_scores.names, pool_scores.domain
        k = len(names)
        sizes = np.bincount(domain, minlength=k)
        sel_cfg = ctx.cfg.selection
        strategy = sel_cfg.strategy
        if strategy == "customized" and sel_cfg.major not in names:
            raise ConfigError(f"--major '{sel_cfg.major}' is not a domain; choose one of {', '.join(names)}")
        naming = check_naming(model, sel_cfg)
        if strategy == "top":
            selected = top_k(scores, budget)
        else:
            if strategy == "customized":
                rates = np.array([0.5 if n == sel_cfg.major else 0.1 for n in names])
                weights = rates * sizes
            else:  # balanced
                weights = np.ones(k)
            quotas = allocate(sizes, weights, budget)
            selected = select_by_quota(domain, scores, quotas)
        cutoff = float(np.min(scores[selected])) if len(selected) else float("nan")
        return SelectionResult(
            selected=selected, scores=scores,
            metadata={"strategy": strategy, "major": sel_cfg.major, "entropy_cutoff": cutoff,
                      "domain_names": names, "pool_domain_counts": sizes.tolist(),
                      "probe_val_accuracy": model.probe_metrics.get("val_accuracy"),
                      "model_fingerprint": model.fingerprint, "synthesis": model.synthesis,
                      "naming": naming},
            extra_columns={**{f"p_{n}": pool_scores.probs[:, i] for i, n in enumerate(names)},
                           "pseudo_domain": np.array(names, dtype=object)[domain]})
