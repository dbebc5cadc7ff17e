"""The paper's contrastive pools: per-domain percentile bands of inter- and intra-diversity.

For a record x in group k, with unit centroids C_1..C_K:
    inter-diversity score = sum over j != k of cos(x, C_j)   (how close x is to the *other* domains)
    intra-diversity score = cos(x, C_k)                       (how close x is to its own domain)
Within each group the records are ranked by score, highest first, and `--band LO-HI` keeps the
records between the LO-th and HI-th percentile of that ranking: `0-20` is the fifth most similar,
`80-100` the fifth least similar. The budget is split into an equal share per group (a group whose
band is too small gives the shortfall to the others); when the bands together hold fewer records
than the budget, each band grows outward to the nearest ranks, and the metadata says so. A band
with more records than its share contributes a seeded random sample, so it represents the band.

Groups and centroids: the DaaR pseudo-domains and their synthesized centroids by default, or with
--label-field the user's labels and the per-label means of the same features (the centroid space,
--centroid-layer, the probe layer --layer unless changed).
"""

from __future__ import annotations

import logging

import numpy as np

from daar.errors import ConfigError
from daar.selectors.base import SelectionResult, Selector, register_selector
from daar.selectors.baselines.common import equal_shares, rng_for, sample_within, unit_rows
from daar.selectors.context import SelectionContext
from daar.settings import parse_band

log = logging.getLogger(__name__)


def _cut(p: float, n: int) -> int:
    return int(np.floor(p / 100.0 * n + 0.5))  # half-up, so adjacent bands tile a group exactly


def groups_and_centroids(ctx: SelectionContext) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, str]:
    """(group per record, group names, features [n, d], centroids [K, d], where the groups came from)."""
    layer = ctx.cfg.centroid_space
    feats = np.asarray(ctx.features(layer), dtype=np.float64)
    field = ctx.cfg.selection.label_field
    if field:
        groups, names = ctx.labels(field)
        cents = np.stack([feats[groups == g].mean(axis=0) for g in range(len(names))])
        return groups, names, feats, cents, f"label field '{field}' (centroids = per-label feature means)"
    model, scores = ctx.daar_model, ctx.daar_scores
    cents = np.asarray(model.centroids, dtype=np.float64)
    if cents.shape[1] != feats.shape[1]:
        raise ConfigError(f"the DaaR centroids have {cents.shape[1]} dimensions but the '{layer}' features have "
                          f"{feats.shape[1]}; use the same --centroid-layer for both")
    return np.asarray(scores.domain), list(scores.names), feats, cents, "DaaR pseudo-domains"


def band_select(groups: np.ndarray, n_groups: int, scores: np.ndarray, band: tuple[float, float], budget: int,
                rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Exactly `budget` records: an equal share per group, taken from each group's percentile band."""
    lo, hi = band
    members = [np.flatnonzero(groups == g) for g in range(n_groups)]
    ranked = [m[np.argsort(-scores[m], kind="stable")] for m in members]
    spans = [(_cut(lo, len(r)), _cut(hi, len(r))) for r in ranked]
    band_sizes = np.array([e - s for s, e in spans])
    extended = budget > band_sizes.sum()
    quotas = equal_shares(np.array([len(r) for r in ranked]) if extended else band_sizes, budget)
    chosen, grown = [], []
    for r, (s, e), q in zip(ranked, spans, quotas, strict=True):
        if q <= e - s:
            chosen.append(sample_within(rng, r[s:e], int(q)))
            grown.append(0)
            continue
        # the whole band, then the ranks nearest to it (ties: the higher-scored side first)
        outside = [p for p in range(len(r)) if not s <= p < e]
        outside.sort(key=lambda p: (s - p if p < s else p - e + 1, p))
        extra = outside[: int(q) - (e - s)]
        chosen.append(np.concatenate([r[s:e], r[np.array(extra, dtype=np.int64)]]))
        grown.append(len(extra))
    picked = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return picked, {"band_sizes": band_sizes.tolist(), "quotas": quotas.tolist(), "band_extended": bool(extended),
                    "taken_outside_band": grown}


class _BandSelector(Selector):
    kind = ""

    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        band = parse_band(ctx.cfg.baselines.band)
        groups, names, feats, cents, source = groups_and_centroids(ctx)
        cos = unit_rows(feats) @ unit_rows(cents).T
        own = cos[np.arange(len(groups)), groups]
        scores = own if self.kind == "intra" else cos.sum(axis=1) - own
        picked, meta = band_select(groups, len(names), scores, band, budget, rng_for(ctx, self.name))
        if meta["band_extended"]:
            log.warning(
                "%s: the %s bands hold %d records, fewer than the budget %d; took the nearest ranks outside them",
                self.name, ctx.cfg.baselines.band, sum(meta["band_sizes"]), budget)
        percentile = np.zeros(len(groups))
        for g in range(len(names)):
            m = np.flatnonzero(groups == g)
            percentile[m[np.argsort(-scores[m], kind="stable")]] = 100.0 * np.arange(len(m)) / max(len(m), 1)
        return SelectionResult(
            selected=picked, scores=scores,
            metadata={"band": ctx.cfg.baselines.band, "groups": source, "group_names": names, "seed": ctx.cfg.run.seed,
                      "score": ("cosine to the own centroid" if self.kind == "intra"
                                else "sum of cosines to the other groups' centroids"),
                      "ranking": "highest score first: band 0-20 = the 20% most similar", **meta},
            extra_columns={"group": np.array(names, dtype=object)[groups], "band_percentile": percentile})


@register_selector("inter-diversity", "per group, the --band percentile bin of summed cosine to the other "
                   "groups' centroids (the paper's contrastive pools)")
class InterDiversitySelector(_BandSelector):
    kind = "inter"


@register_selector("intra-diversity", "per group, the --band percentile bin of cosine to the group's own "
                   "centroid (the paper's contrastive pools)")
class IntraDiversitySelector(_BandSelector):
    kind = "intra"
