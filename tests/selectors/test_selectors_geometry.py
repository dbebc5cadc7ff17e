"""Golden tests for k-center, facility location and the inter-/intra-diversity bins."""

from __future__ import annotations

import numpy as np
import pytest
from selector_helpers import make_rows

from daar.errors import ConfigError
from daar.selectors.base import get_selector
from daar.selectors.baselines.contrastive import parse_band
from daar.selectors.baselines.geometry import facility_location_greedy
from daar.settings import Config

RAW = {"center_features": False}  # the goldens below are built on raw cosine geometry


def unit_angles(degrees) -> np.ndarray:
    a = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def three_clusters() -> np.ndarray:
    """9 points around the x (4), y (3) and z (2) axes, interleaved in pool order."""
    rng = np.random.default_rng(0)
    pts = [c + 0.1 * rng.normal(size=3) for c, s in zip(np.eye(3), (4, 3, 2), strict=True) for _ in range(s)]
    return np.array(pts)[[0, 4, 7, 1, 5, 8, 2, 6, 3]]  # x: 0,3,6,8  y: 1,4,7  z: 2,5


def test_kcenter_golden(make_ctx):
    # mean direction ~70.8 deg -> starts at 80 deg (row 3), then 200 (6), 0 (0), 45 (2)
    feats = unit_angles([0, 10, 45, 80, 90, 170, 200])
    ctx = make_ctx(make_rows(7), features=feats, extra=RAW)
    r = get_selector("kcenter").select(ctx, 4)
    assert r.selected.tolist() == [0, 2, 3, 6]
    assert r.extra_columns["greedy_rank"].tolist() == [2, -1, 3, 0, -1, -1, 1]
    assert r.scores[6] == pytest.approx(1.5)  # cos distance of 120 degrees


def test_facility_location_golden_one_per_cluster(make_ctx):
    ctx = make_ctx(make_rows(9), features=three_clusters(), extra=RAW)
    r = get_selector("facility-location").select(ctx, 3)
    assert r.selected.tolist() == [0, 2, 4]  # one per cluster, biggest cluster first
    assert r.extra_columns["greedy_rank"][[0, 4, 2]].tolist() == [0, 1, 2]
    sparse_ctx = make_ctx(make_rows(9), features=three_clusters(), knn=3, extra=RAW)
    assert get_selector("facility-location").select(sparse_ctx, 3).selected.tolist() == [0, 2, 4]


def test_features_are_centred_on_the_pool_mean_by_default(make_ctx):
    # a big shared offset (like mean-pooled LLM states) hides the structure from raw cosine
    offset = np.array([10.0, 0.0, 0.0, 0.0])
    feats = offset + np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [-1, 0, 0, 0],
                               [0, -1, 0, 0], [0, 0, -1, 0], [0, 0, 0, -1]], dtype=np.float64)
    centred = get_selector("kcenter").select(make_ctx(make_rows(8), features=feats), 4)
    raw = get_selector("kcenter").select(make_ctx(make_rows(8), features=feats, extra=RAW), 4)
    assert max(centred.scores[~np.isnan(centred.scores)]) > 0.9  # opposite directions after centring
    assert max(raw.scores[~np.isnan(raw.scores)]) < 0.05  # all nearly parallel without it


def test_facility_location_lazy_greedy_equals_plain_greedy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    picks, gains = facility_location_greedy(x, 25)
    sim = np.maximum(x @ x.T, 0.0)
    cur, naive = np.zeros(len(x)), []
    for _ in range(25):
        g = np.maximum(sim - cur[:, None], 0.0).sum(axis=0)
        g[naive] = -1
        j = int(np.argmax(g))
        naive.append(j)
        cur = np.maximum(cur, sim[:, j])
    assert picks == naive
    assert all(a >= b - 1e-5 for a, b in zip(gains, gains[1:], strict=False))  # diminishing returns


def test_facility_location_rejects_bad_knn():
    with pytest.raises(ConfigError, match="--knn"):
        Config(knn=0).validate()


# -- inter-/intra-diversity bins on a label field --------------------------------------------------
# group a (rows 0-4) around 21 deg, group b (rows 5-9) around 91 deg
BIN_FEATS = unit_angles([0, 12, 20, 33, 41, 50, 70, 90, 115, 128])


def bin_ctx(make_ctx, **settings):
    rows = make_rows(10)
    for i, r in enumerate(rows):
        r["source"] = "a" if i < 5 else "b"
    # the bins live in the centroid space; these features are given as the token-embedding layer's
    return make_ctx(rows, embedding=BIN_FEATS, label_field="source", **{"centroid_layer": "embedding", **settings})


def test_intra_diversity_golden(make_ctx):
    r = get_selector("intra-diversity").select(bin_ctx(make_ctx, band="0-40"), 4)
    assert r.selected.tolist() == [1, 2, 6, 7]  # the two closest to each label centroid
    assert r.metadata["quotas"] == [2, 2] and not r.metadata["band_extended"]


def test_inter_diversity_golden(make_ctx):
    assert get_selector("inter-diversity").select(bin_ctx(make_ctx, band="0-40"), 4).selected.tolist() == [3, 4, 5, 6]
    assert get_selector("inter-diversity").select(bin_ctx(make_ctx, band="80-100"), 2).selected.tolist() == [0, 9]


def test_bins_extend_to_nearest_ranks_when_budget_exceeds_band(make_ctx):
    r = get_selector("intra-diversity").select(bin_ctx(make_ctx, band="0-40"), 6)
    assert r.selected.tolist() == [1, 2, 3, 6, 7, 8]
    assert r.metadata["band_extended"] and r.metadata["taken_outside_band"] == [1, 1]


def test_bins_sample_within_a_wider_band(make_ctx):
    r = get_selector("intra-diversity").select(bin_ctx(make_ctx, band="0-60"), 4)
    assert len(r.selected) == 4
    assert set(r.selected.tolist()) <= {1, 2, 3, 6, 7, 8}
    assert sum(1 for i in r.selected if i < 5) == 2


def test_bins_on_pseudo_domains_use_the_domain_model(make_ctx):
    from selector_helpers import fixed_domain_model

    probs = np.array([[0.9, 0.1]] * 5 + [[0.2, 0.8]] * 5)
    dm = fixed_domain_model(["x", "y"], unit_angles([20, 90]), probs, np.zeros(10))
    ctx = make_ctx(make_rows(10), embedding=BIN_FEATS, domain_model=dm, band="0-40",
                   centroid_layer="embedding")  # the domain model's centroids are in that space here
    assert get_selector("intra-diversity").select(ctx, 4).selected.tolist() == [1, 2, 6, 7]


@pytest.mark.parametrize("band", ["20", "40-20", "0-120", "a-b"])
def test_bad_band_is_a_clear_error(band):
    with pytest.raises(ConfigError, match="--band"):
        parse_band(band)
