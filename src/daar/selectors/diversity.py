"""Diversity and composition figures of a selection, for `daar compare` and the report.

All feature-based figures take unit-normalised features (cosine geometry; `daar compare` centres
them on the pool mean first, as the selectors do, because raw mean-pooled LLM features are nearly
parallel):
- Vendi score (Friedman & Dieng 2023): exp of the Shannon entropy of the eigenvalues of K/n, K the
  cosine kernel of the selection; "the effective number of distinct records", from 1 (all the same)
  to n (all orthogonal). Computed from the d x d Gram matrix, which has the same non-zero eigenvalues.
- log det(I + K): the determinantal-point-process volume; grows with spread and with n, so compare
  it between selections of the same size only.
- mean pairwise cosine distance: 1 - mean over pairs i != j of cos(x_i, x_j), in O(n d).
- cluster coverage: the share of k-means clusters of the *pool* that the selection touches.
Composition: the share of each group (pseudo-domain, or --label-field) and the total-variation
distance of that mix from the pool's; and the overlap of two selections.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def kernel_eigenvalues(x_unit: np.ndarray) -> np.ndarray:
    """Eigenvalues of the cosine kernel X X^T (via the smaller Gram matrix), clipped at 0."""
    x = np.asarray(x_unit, dtype=np.float64)
    gram = x @ x.T if x.shape[0] <= x.shape[1] else x.T @ x
    return np.clip(np.linalg.eigvalsh(gram), 0.0, None)


def vendi_score(x_unit: np.ndarray) -> float:
    n = len(x_unit)
    if n == 0:
        return float("nan")
    lam = kernel_eigenvalues(x_unit) / n
    lam = lam[lam > 1e-12]
    lam = lam / lam.sum()
    return float(np.exp(-(lam * np.log(lam)).sum()))


def log_det(x_unit: np.ndarray) -> float:
    """log det(I + K) for the cosine kernel K of the rows."""
    return float(np.log1p(kernel_eigenvalues(x_unit)).sum())


def mean_pairwise_cosine_distance(x_unit: np.ndarray) -> float:
    x = np.asarray(x_unit, dtype=np.float64)
    n = len(x)
    if n < 2:
        return float("nan")
    s = x.sum(axis=0)
    off_diagonal = float(s @ s) - float((x * x).sum())
    return 1.0 - off_diagonal / (n * (n - 1))


class PoolClusters:
    """k-means clusters of the pool's unit features, fitted once and shared by every method."""

    def __init__(self, x_unit: np.ndarray, k: int, seed: int = 42):
        from sklearn.cluster import KMeans

        self.k = int(max(1, min(k, len(x_unit))))
        km = KMeans(n_clusters=self.k, n_init=3, random_state=seed)
        self.labels = km.fit_predict(np.asarray(x_unit, dtype=np.float64))

    def coverage(self, selected: np.ndarray) -> float:
        return len(np.unique(self.labels[selected])) / self.k


def default_clusters(n: int) -> int:
    """Clusters for coverage: about 40 records per cluster, between 2 and 100."""
    return int(min(100, max(2, n // 40)))


def diversity_metrics(x_unit: np.ndarray, selected: np.ndarray, clusters: PoolClusters | None = None) -> dict:
    sel = np.asarray(selected, dtype=np.int64)
    xs = x_unit[sel]
    out = {"vendi": vendi_score(xs), "log_det": log_det(xs), "mean_cos_distance": mean_pairwise_cosine_distance(xs)}
    if clusters is not None:
        out["cluster_coverage"] = clusters.coverage(sel)
    return out


def distribution(groups: np.ndarray, n_groups: int, selected: np.ndarray | None = None) -> np.ndarray:
    """Share of each group among `selected` (or the whole pool)."""
    g = groups if selected is None else groups[np.asarray(selected, dtype=np.int64)]
    counts = np.bincount(g, minlength=n_groups).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def overlap_matrix(selections: Sequence[np.ndarray], kind: str = "shared") -> np.ndarray:
    """Pairwise overlap: 'shared' = |A & B| / min(|A|, |B|) (the budget when both are full), or 'jaccard'."""
    sets = [set(np.asarray(s).tolist()) for s in selections]
    m = np.zeros((len(sets), len(sets)))
    for i, a in enumerate(sets):
        for j, b in enumerate(sets):
            inter = len(a & b)
            if kind == "jaccard":
                m[i, j] = inter / max(len(a | b), 1)
            else:
                m[i, j] = inter / max(min(len(a), len(b)), 1)
    return m
