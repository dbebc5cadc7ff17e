"""Coverage baselines on the model's pooled features (ctx.features(), i.e. --layer).

Both work on pool-centred, unit-normalised features (common.geometry_features), so "distance" is
cosine distance and "similarity" cosine similarity, the geometry the comparison's diversity figures
use too.

k-center greedy (Sener & Savarese 2018): start at the record nearest the pool's mean direction,
then repeatedly add the record farthest from everything chosen so far.

Facility location: maximise f(S) = sum_i max_{j in S} sim(i, j) with sim = max(cos, 0) (facility
location needs non-negative similarities), by lazy greedy (Minoux 1978), exact for the greedy
order. The dense mode stores the n x n similarity matrix in float32 (1 GiB at n = 16,384); with
--knn K only each record's K most similar records count, a sparse n x K graph (Mirzasoleiman et al.
2015), so memory is O(n K). Pools above DENSE_LIMIT switch to --knn AUTO_KNN on their own (logged
and written to the metadata). apricot-select was tried first: its sparse (n_neighbors) path fails
with current scipy/numba (index dtype mismatch), so this is our own implementation; with apricot's
similarity (squared cosine) the dense mode reproduces apricot 0.6.1's greedy ranking exactly.
"""

from __future__ import annotations

import heapq
import logging

import numpy as np

from daar.selectors.base import SelectionResult, Selector, register_selector
from daar.selectors.baselines.common import geometry_features, rank_column
from daar.selectors.context import SelectionContext

log = logging.getLogger(__name__)

_CHUNK = 1024  # rows per block when a pass over all pairs is needed
DENSE_LIMIT = 16_384
AUTO_KNN = 100


def kcenter_greedy(x: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    """k-center greedy on unit rows; returns picks in order and each pick's distance when picked."""
    n = len(x)
    x = np.asarray(x, dtype=np.float32)  # matrix-vector products here are memory-bound: half the bytes
    centre = x.mean(axis=0)
    first = int(np.argmax(x @ centre))  # the most central record; first index on ties
    picks, gains = [first], [float("nan")]
    min_dist = 1.0 - x @ x[first]
    min_dist[first] = -np.inf
    for _ in range(1, min(k, n)):
        j = int(np.argmax(min_dist))
        picks.append(j)
        gains.append(float(min_dist[j]))
        np.minimum(min_dist, 1.0 - x @ x[j], out=min_dist)
        min_dist[picks] = -np.inf  # chosen (and exact duplicates of chosen) never come back
    return picks, gains


def knn_graph(x: np.ndarray, k: int):
    """Sparse column-major matrix M with M[i, j] = max(cos(i, j), 0) for the k most similar j of each i."""
    from scipy import sparse

    n = len(x)
    k = min(k, n)
    rows, cols, vals = [], [], []
    for start in range(0, n, _CHUNK):
        block = x[start : start + _CHUNK] @ x.T
        idx = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(block), 1))
        rows.append(np.repeat(np.arange(start, start + len(block)), k))
        cols.append(idx.ravel())
        vals.append(np.maximum(np.take_along_axis(block, idx, axis=1), 0.0).ravel())
    return sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def facility_location_greedy(x: np.ndarray, k: int, knn: int | None = None) -> tuple[list[int], list[float]]:
    """Lazy greedy facility location on unit rows; returns picks in order and their marginal gains."""
    n = len(x)
    cur = np.zeros(n, dtype=np.float32)
    x = np.asarray(x, dtype=np.float32)
    if knn:
        m = knn_graph(x, knn)
        indptr, indices, data = m.indptr, m.indices, m.data.astype(np.float32)

        def column(j: int) -> tuple[np.ndarray | slice, np.ndarray]:
            return indices[indptr[j] : indptr[j + 1]], data[indptr[j] : indptr[j + 1]]

        init = np.asarray(m.sum(axis=0), dtype=np.float64).ravel()
    else:
        sim = np.empty((n, n), dtype=np.float32)  # symmetric, so column j is the contiguous row j
        for start in range(0, n, _CHUNK):
            np.maximum(x[start : start + _CHUNK] @ x.T, 0.0, out=sim[start : start + _CHUNK])
        everyone = slice(None)

        def column(j: int) -> tuple[np.ndarray | slice, np.ndarray]:
            return everyone, sim[j]

        init = sim.sum(axis=0, dtype=np.float64)

    def gain(j: int) -> float:
        rows, sims = column(j)
        return float(np.maximum(sims - cur[rows], 0.0).sum())

    heap = [(-float(g), j) for j, g in enumerate(init)]
    heapq.heapify(heap)
    picks, gains, evaluations = [], [], 0
    while heap and len(picks) < k:
        _, j = heapq.heappop(heap)
        g = gain(j)
        evaluations += 1
        if not heap or (-g, j) <= heap[0]:
            picks.append(j)
            gains.append(g)
            rows, sims = column(j)
            cur[rows] = np.maximum(cur[rows], sims)  # rows of one column are unique
        else:
            heapq.heappush(heap, (-g, j))
    log.debug("facility location: %d gain evaluations for %d picks", evaluations, len(picks))
    return picks, gains


def _result(ctx: SelectionContext, picks: list[int], gains: list[float], meta: dict) -> SelectionResult:
    scores = np.full(ctx.n, np.nan)
    scores[picks] = gains
    return SelectionResult(selected=picks, scores=scores, metadata={"layer": str(ctx.cfg.features.layer), **meta},
                           extra_columns={"greedy_rank": rank_column(ctx.n, picks)})


@register_selector("kcenter", "k-center greedy on the model's features: each next record is the one "
                   "farthest from those chosen")
class KCenterSelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        picks, gains = kcenter_greedy(geometry_features(ctx), budget)
        covered = gains[-1] if len(gains) > 1 else float("nan")
        return _result(ctx, picks, gains, {"distance": "cosine", "final_radius": covered,
                                           "score": "cosine distance to the nearest chosen record when picked"})


@register_selector("facility-location", "lazy-greedy facility location (cosine similarity) on the model's "
                   "features; --knn K for a sparse graph")
class FacilityLocationSelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        knn = ctx.cfg.baselines.knn  # >= 1: checked by the settings
        auto = knn is None and ctx.n > DENSE_LIMIT
        if auto:
            knn = AUTO_KNN
            log.warning("facility-location: %d records would need a %.1f GiB dense similarity matrix; using "
                        "--knn %d instead (set --knn to choose)", ctx.n, ctx.n**2 * 4 / 2**30, knn)
        picks, gains = facility_location_greedy(geometry_features(ctx), budget, int(knn) if knn else None)
        return _result(ctx, picks, gains, {"similarity": "max(cosine, 0)", "knn": knn, "knn_auto": auto,
                                           "objective": float(np.sum(gains)),
                                           "score": "marginal gain of the facility-location objective when picked"})
