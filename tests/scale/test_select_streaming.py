"""The bounded top-k and the quota selection over shards pick what the in-memory selectors pick."""

from __future__ import annotations

import numpy as np
import pytest

from daar.scale.select import BoundedTopK
from daar.selectors.base import top_k
from daar.selectors.quotas import select_by_quota


@pytest.mark.parametrize("seed", range(6))
def test_bounded_top_k_equals_top_k_with_ties_and_nan(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    scores = rng.integers(0, 12, n).astype(np.float64)  # many ties
    scores[rng.random(n) < 0.1] = np.nan
    k = int(rng.integers(1, n + 1))
    best = BoundedTopK(k)
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(5, n - 1), replace=False)) if n > 1 else []
    for part in np.split(np.arange(n), cuts):
        best.add(scores[part], part)
    assert np.array_equal(np.sort(best.index), top_k(scores, k))


def test_per_group_bounded_top_k_equals_select_by_quota():
    rng = np.random.default_rng(3)
    groups, scores = rng.integers(0, 4, 500), rng.integers(0, 9, 500).astype(float)
    quotas = np.array([10, 0, 37, 5])
    picked = []
    for g, q in enumerate(quotas):
        best = BoundedTopK(int(q))
        for part in np.array_split(np.arange(500), 7):
            m = part[groups[part] == g]
            best.add(scores[m], m)
        picked.append(best.index)
    assert np.array_equal(np.sort(np.concatenate(picked)), select_by_quota(groups, scores, quotas))
