"""Splitting a budget across groups exactly (largest remainder), respecting group sizes."""

from __future__ import annotations

import numpy as np


def allocate(sizes: list[int] | np.ndarray, weights: list[float] | np.ndarray, budget: int) -> np.ndarray:
    """Integer quotas summing to `budget`, proportional to `weights`, never above a group's size.

    A group too small for its share gives the shortfall to the others (again by weight). Remainders
    go to the largest fractional parts, ties to the lower group index, so the split is deterministic.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if budget > sizes.sum():
        raise ValueError(f"budget {budget} exceeds the {int(sizes.sum())} records available")
    quota = np.zeros(len(sizes), dtype=np.int64)
    left = budget
    open_ = (sizes > 0) & (weights > 0)
    if not open_.any():
        open_ = sizes > 0
        weights = np.ones_like(weights)
    while left > 0 and open_.any():
        w = np.where(open_, weights, 0.0)
        share = left * w / w.sum()
        take = np.minimum(np.floor(share).astype(np.int64), sizes - quota)
        rem = left - take.sum()
        frac = np.where(open_ & (quota + take < sizes), share - np.floor(share), -1.0)
        for g in np.argsort(-frac, kind="stable")[: max(rem, 0)]:
            if frac[g] >= 0 and quota[g] + take[g] < sizes[g]:
                take[g] += 1
        if take.sum() == 0:  # every open group got a zero share: give one each in order
            for g in np.flatnonzero(open_)[:left]:
                take[g] = 1
        quota += take
        left = budget - quota.sum()
        open_ = open_ & (quota < sizes)
    return quota


def select_by_quota(groups: np.ndarray, scores: np.ndarray, quotas: np.ndarray) -> np.ndarray:
    """Within each group, the top `quotas[g]` records by score (stable ties); indices in pool order."""
    chosen = []
    for g, q in enumerate(quotas):
        if q <= 0:
            continue
        members = np.flatnonzero(groups == g)
        order = np.argsort(-scores[members], kind="stable")
        chosen.append(members[order[:q]])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
