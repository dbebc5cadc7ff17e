"""Diversity figures on inputs whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from daar.selectors import diversity as dv


def test_vendi_score_bounds():
    same = np.tile([[1.0, 0.0, 0.0]], (5, 1))
    assert dv.vendi_score(same) == pytest.approx(1.0)
    assert dv.vendi_score(np.eye(4)) == pytest.approx(4.0)
    two_pairs = np.array([[1.0, 0], [1, 0], [0, 1], [0, 1]])
    assert dv.vendi_score(two_pairs) == pytest.approx(2.0)
    wide = np.random.default_rng(0).normal(size=(50, 8))  # more rows than dimensions: via the d x d Gram
    assert 1 < dv.vendi_score(dv.unit(wide)) <= 8 + 1e-9


def test_log_det_and_mean_cosine_distance():
    assert dv.log_det(np.eye(3)) == pytest.approx(3 * np.log(2))
    assert dv.mean_pairwise_cosine_distance(np.eye(3)) == pytest.approx(1.0)
    assert dv.mean_pairwise_cosine_distance(np.tile([[0.0, 1.0]], (4, 1))) == pytest.approx(0.0)
    x = dv.unit(np.random.default_rng(1).normal(size=(20, 5)))
    cos = x @ x.T
    brute = 1 - (cos.sum() - np.trace(cos)) / (20 * 19)
    assert dv.mean_pairwise_cosine_distance(x) == pytest.approx(brute)


def test_cluster_coverage_and_composition():
    x = np.repeat(np.eye(3), 4, axis=0) + 0.01 * np.random.default_rng(0).normal(size=(12, 3))
    clusters = dv.PoolClusters(dv.unit(x), 3, seed=0)
    assert clusters.coverage(np.array([0, 1, 2, 3])) == pytest.approx(1 / 3)
    assert clusters.coverage(np.array([0, 4, 8])) == pytest.approx(1.0)
    groups = np.array([0, 0, 1, 1, 1, 2])
    assert dv.distribution(groups, 3).tolist() == pytest.approx([2 / 6, 3 / 6, 1 / 6])
    assert dv.distribution(groups, 3, np.array([0, 1])).tolist() == [1.0, 0.0, 0.0]
    assert dv.total_variation([1.0, 0, 0], [0.5, 0.5, 0]) == pytest.approx(0.5)
    assert dv.default_clusters(4000) == 100 and dv.default_clusters(200) == 5


def test_overlap_matrix():
    m = dv.overlap_matrix([np.array([0, 1, 2, 3]), np.array([2, 3, 4, 5])])
    assert m.tolist() == [[1.0, 0.5], [0.5, 1.0]]
    j = dv.overlap_matrix([np.array([0, 1, 2, 3]), np.array([2, 3, 4, 5])], "jaccard")
    assert j[0, 1] == pytest.approx(2 / 6)
