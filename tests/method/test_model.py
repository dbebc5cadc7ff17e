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


def test_head_ensemble_averages_its_members_and_round_trips(tmp_path):
    from daar.method.mlp import HeadTraining, head_from_arrays, head_to_arrays, train_classifier

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (30, 6)), rng.normal(3, 1, (30, 6))]).astype(np.float32)
    y = np.repeat([0, 1], 30)
    s = HeadTraining(lr=1e-3, batch_size=4, epochs=2, val_fraction=0.1, seed=5, ensemble=3)
    ens = train_classifier(x, y, 2, s)
    assert len(ens.members) == 3
    probs = ens.predict_proba(x)
    assert np.allclose(probs, np.mean([m.predict_proba(x) for m in ens.members], axis=0))
    assert not np.allclose(ens.members[0].predict_proba(x), ens.members[1].predict_proba(x))  # other inits
    assert all(np.array_equal(m.val_idx, ens.val_idx) for m in ens.members)  # one validation split
    back = head_from_arrays(head_to_arrays(ens, "dom"), "dom")
    assert len(back.members) == 3 and np.allclose(back.predict_proba(x), probs)
    single = train_classifier(x, y, 2, HeadTraining(lr=1e-3, batch_size=4, epochs=2, val_fraction=0.1, seed=5,
                                                     ensemble=1))
    assert np.array_equal(single.predict_proba(x), ens.members[0].predict_proba(x))  # member 0 = the one head


def test_default_probe_epochs_keep_the_methods_step_count():
    from daar.method.mlp import HeadTraining, epochs_for_steps

    assert epochs_for_steps(5000, 0.03, 1) == 2  # 4,850 training records: 2 epochs reach 5,000 steps
    assert epochs_for_steps(5155, 0.03, 1) == 1  # the paper's probe set with its 3 % split: one epoch
    assert epochs_for_steps(1000, 0.03, 1) == 6  # W-4k's probe set: 970 records
    assert epochs_for_steps(250, 0.0, 4) == 80  # 63 steps per epoch at batch 4
    cfg = Config().validate()
    assert HeadTraining.from_settings(cfg, 1000).epochs == 6
    assert HeadTraining.from_settings(cfg.replace(probe_epochs=3), 1000).epochs == 3  # an explicit value wins


def test_head_seed_moves_only_the_heads():
    from daar.method.mlp import HeadTraining

    cfg = Config().validate()
    assert HeadTraining.from_settings(cfg, 100).seed == 42
    assert HeadTraining.from_settings(cfg.replace(head_seed=7), 100).seed == 7
    assert cfg.replace(head_seed=7).run.seed == 42  # synthesis, probe sample and k-means keep --seed
