"""Baselines that need no model: random, random per group, and the two length heuristics."""

from __future__ import annotations

import numpy as np

from daar.selectors.base import SelectionResult, Selector, register_selector, top_k
from daar.selectors.baselines.common import equal_shares, query_text, rng_for, sample_within, word_count
from daar.selectors.context import SelectionContext


@register_selector("random", "uniform random sample of the pool (seeded by --seed)")
class RandomSelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        picked = rng_for(ctx, "random").choice(ctx.n, size=budget, replace=False)
        return SelectionResult(selected=picked, metadata={"seed": ctx.cfg.run.seed})


@register_selector("random-balanced", "random sample with an equal share per group "
                   "(pseudo-domain, or --label-field)")
class RandomBalancedSelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        label_field = ctx.cfg.selection.label_field
        groups, names = ctx.labels(label_field)
        sizes = np.bincount(groups, minlength=len(names))
        quotas = equal_shares(sizes, budget)
        rng = rng_for(ctx, "random-balanced")
        chosen = [sample_within(rng, np.flatnonzero(groups == g), int(q)) for g, q in enumerate(quotas)]
        picked = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
        return SelectionResult(
            selected=picked,
            metadata={"seed": ctx.cfg.run.seed, "groups": f"label field {label_field}" if label_field
                      else "pseudo-domains", "group_names": names, "group_sizes": sizes.tolist(),
                      "quotas": quotas.tolist()},
            extra_columns={"group": np.array(names, dtype=object)[groups]})


class _LengthSelector(Selector):
    """Longest first by whitespace words; ties keep pool order."""

    def lengths(self, ctx: SelectionContext) -> np.ndarray:
        raise NotImplementedError

    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        words = self.lengths(ctx).astype(np.float64)
        picked = top_k(words, budget)
        return SelectionResult(selected=picked, scores=words,
                               metadata={"mean_words_pool": float(words.mean()),
                                         "mean_words_selected": float(words[picked].mean()),
                                         "min_words_selected": float(words[picked].min())})


@register_selector("instruction-length", "longest instruction + input, by whitespace words")
class InstructionLengthSelector(_LengthSelector):
    def lengths(self, ctx: SelectionContext) -> np.ndarray:
        return np.array([word_count(query_text(r)) for r in ctx.records])


@register_selector("output-length", "longest response, by whitespace words")
class OutputLengthSelector(_LengthSelector):
    def lengths(self, ctx: SelectionContext) -> np.ndarray:
        return np.array([word_count(r.output) for r in ctx.records])
