"""Forward-pass scorers (ifd, deita-*) on the tiny random models, and the deita redundancy filter."""

from __future__ import annotations

import numpy as np
import pytest
from selector_helpers import make_rows

from daar.selectors.base import get_selector
from daar.selectors.baselines import deita as deita_module
from daar.selectors.baselines.deita import redundancy_filter
from daar.selectors.baselines.lm_scoring import answer_token_groups, load_scorer, span_losses, start_token


def test_ifd_on_tiny_model(make_ctx, tiny_model):
    rows = make_rows(9) + [{"instruction": "Say nothing.", "input": "", "output": ""}]
    ctx = make_ctx(rows, model=tiny_model)
    r = get_selector("ifd").select(ctx, 4)
    assert len(r.selected) == 4
    ifd = r.scores
    assert np.isnan(ifd[9]) and r.metadata["no_response"] == 1
    assert np.all(np.isfinite(ifd[:9])) and np.all(ifd[:9] > 0)
    below = np.flatnonzero(ifd < 1)
    expected = below[np.argsort(-ifd[below], kind="stable")][:4]
    if len(below) >= 4:
        assert r.selected.tolist() == sorted(expected.tolist())
    assert r.metadata["ifd_below_1"] + r.metadata["ifd_at_least_1"] == 9
    assert r.metadata["judge"]["computed"] == 10
    again = get_selector("ifd").select(make_ctx(rows, model=tiny_model), 4)  # new context, cached losses
    assert again.metadata["judge"]["from_cache"] == 10 and again.metadata["judge"]["computed"] == 0
    assert again.selected.tolist() == r.selected.tolist()


def test_span_losses_match_a_plain_forward_pass(make_ctx, tiny_llama):
    import torch

    ctx = make_ctx(make_rows(3), model=tiny_llama)
    loaded = load_scorer(ctx)
    tok = loaded.tokenizer
    seqs = [[start_token(tok), *tok.encode(t, add_special_tokens=False)] for t in ("add two numbers", "x = 1 + 2 = 3")]
    spans = [(2, len(seqs[0])), (1, len(seqs[1]))]
    got = span_losses(loaded, seqs, spans, batch_size=2)  # batched and right-padded
    for s, (a, b), value in zip(seqs, spans, got, strict=True):
        with torch.inference_mode():
            logits = loaded.model(input_ids=torch.tensor([s])).logits[0].float()
        ref = torch.nn.functional.cross_entropy(logits[a - 1 : b - 1], torch.tensor(s[a:b]))
        assert value == pytest.approx(float(ref), rel=1e-4)


def test_deita_scores_on_tiny_model(make_ctx, tiny_llama):
    ctx = make_ctx(make_rows(6), model=tiny_llama, features=np.eye(6))
    for name in ("deita-complexity", "deita-quality"):
        r = get_selector(name).select(ctx, 2)
        assert len(r.selected) == 2
        assert np.all((r.scores >= 1) & (r.scores <= 6))
        assert 0 < r.metadata["mean_digit_mass"] <= 1
    d = get_selector("deita").select(ctx, 3)  # reuses both cached score sets
    assert d.metadata["judge"]["complexity"]["from_cache"] == 6
    assert d.metadata["judge"]["quality"]["from_cache"] == 6
    np.testing.assert_allclose(d.scores, d.extra_columns["complexity"] * d.extra_columns["quality"])
    assert len(d.selected) == 3 and d.metadata["skipped_as_redundant"] == 0  # orthogonal features


def test_answer_tokens_are_single_tokens(make_ctx, tiny_llama):
    tok = load_scorer(make_ctx(make_rows(2), model=tiny_llama)).tokenizer
    groups = answer_token_groups(tok, ["1", "2", "3"])
    assert all(groups) and len({g[0] for g in groups}) == 3


# -- the score-first redundancy filter, with fixed scores -----------------------------------------
FILTER_FEATS = np.array([[1, 0], [0.99, 0.05], [0, 1], [0.7, 0.7], [1, 0.01], [-1, 0]], dtype=np.float64)


def fixed_scores(ctx, kind):
    if kind == "complexity":
        return np.array([6.0, 5, 4, 3, 2, 1]), np.ones(6), {"model": "fixed"}
    return np.ones(6), np.ones(6), {"model": "fixed"}


def test_deita_filter_golden(make_ctx, monkeypatch):
    monkeypatch.setattr(deita_module, "deita_scores", fixed_scores)
    ctx = make_ctx(make_rows(6), features=FILTER_FEATS, extra={"center_features": False})
    r = get_selector("deita").select(ctx, 3)
    assert r.selected.tolist() == [0, 2, 3]  # row 1 is a near-copy of row 0 (cosine 0.9987)
    assert r.metadata["skipped_as_redundant"] == 1 and r.metadata["filled_by_score"] == 0
    r5 = get_selector("deita").select(ctx, 5)
    assert r5.selected.tolist() == [0, 1, 2, 3, 5]  # the filter keeps 4; the best skipped one fills up
    assert r5.metadata["skipped_as_redundant"] == 2 and r5.metadata["filled_by_score"] == 1
    loose = make_ctx(make_rows(6), features=FILTER_FEATS, similarity_threshold=0.99999,
                     extra={"center_features": False})
    assert get_selector("deita").select(loose, 3).selected.tolist() == [0, 1, 2]


def test_redundancy_filter_direct():
    x = FILTER_FEATS / np.linalg.norm(FILTER_FEATS, axis=1, keepdims=True)
    kept, skipped = redundancy_filter(x, np.arange(6), 6, 0.9)
    assert kept == [0, 2, 3, 5] and skipped == 2
