"""The fitted DaaR model: fit on a probe set, score any pool, save and load, and the same numbers
as the selector."""

from __future__ import annotations

import json

import numpy as np
import pytest

from daar import Config, DaaRModel, Pool
from daar.errors import ConfigError
from daar.runs.select import DaaR


@pytest.fixture
def cfg(select_kwargs):
    return Config.from_mapping({k: v for k, v in select_kwargs.items() if k not in ("budget", "probe_size")}).validate()


def test_fit_score_save_load_round_trip(cfg, pool_file, tmp_path):
    pool = Pool.load(pool_file)
    probe = pool.sample(24, seed=42)
    model = DaaRModel.fit(cfg, probe)
    scores = model.score(pool)
    assert scores.probs.shape == (48, 4) and scores.entropy.shape == (48,)
    assert np.allclose(scores.probs.sum(1), 1.0) and scores.names == model.domain_names
    assert set(scores.domain) <= set(range(4))
    path = model.save(tmp_path / "m.npz")
    loaded = DaaRModel.load(path)
    again = loaded.score(pool)
    assert np.array_equal(again.entropy, scores.entropy) and np.array_equal(again.probs, scores.probs)
    assert loaded.fingerprint == model.fingerprint and loaded.samples == model.samples
    # a second fit with the same inputs comes from the stage store: identical heads
    assert np.array_equal(DaaRModel.fit(cfg, probe).score(pool).entropy, scores.entropy)


def test_selector_uses_the_same_fitted_model(cfg, select_kwargs, pool_file, tmp_path):
    out = tmp_path / "run"
    DaaR(**select_kwargs).select(pool_file, out)
    pool = Pool.load(pool_file)
    scores = DaaRModel.fit(cfg, pool.sample(24, seed=42)).score(pool)
    top = set(np.array(pool.ids)[np.argsort(-scores.entropy, kind="stable")[:10]])
    assert {json.loads(line)["id"] for line in open(out / "selected.jsonl")} == top


def test_load_refuses_a_file_that_is_not_a_model(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, a=np.zeros(2))
    with pytest.raises(ConfigError, match="not a saved DaaR model"):
        DaaRModel.load(bad)
