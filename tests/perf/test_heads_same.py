"""The fast head-training loop gives the heads the simple loop gave, for the same seed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from daar.method.mlp import HeadTraining, entropy, train_classifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from heads import problem, reference_fit  # noqa: E402


def test_same_weights_and_predictions_as_the_simple_loop():
    x, labels = problem(300, 32, 4)
    s = HeadTraining(lr=1e-3, batch_size=1, epochs=2, val_fraction=0.03, seed=7, ensemble=1)
    ref = reference_fit(x, labels, 4, "ce", s)
    head = train_classifier(x, labels, 4, s)
    fast = head.members[0]
    assert max(float((ref[k] - fast.state[k]).abs().max()) for k in ref) < 1e-5
    ref_head = type(fast)(state=ref, d=fast.d, out=fast.out, mean=fast.mean, std=fast.std,
                          train_idx=fast.train_idx, val_idx=fast.val_idx)
    p_ref, p_fast = ref_head.predict_proba(x), fast.predict_proba(x)
    np.testing.assert_array_equal(p_ref.argmax(1), p_fast.argmax(1))
    np.testing.assert_allclose(entropy(p_ref), entropy(p_fast), atol=1e-5)
    # deterministic: the same seed gives bit-identical weights
    again = train_classifier(x, labels, 4, s).members[0]
    assert all(bool((again.state[k] == fast.state[k]).all()) for k in fast.state)
    assert len(fast.history) == 2  # one 200-step loss window per 291-step epoch
