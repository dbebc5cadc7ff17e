"""daar's fused decoder forward computes what transformers' forward computes (tiny Llama and Qwen2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from daar.features import FeatureExtractor, FeatureStore
from daar.features.extract import _padded_batch, decoder_forward
from daar.models.loading import load_model
from daar.perf.fast_decoder import FastDecoder, supports
from data_helpers import ALPACA_ROWS


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fast_forward_equals_transformers_on_real_tokens(tiny_model, dtype):
    lm = load_model(tiny_model, layers=3, dtype=dtype, device="cpu")
    assert supports(lm.model, 1024)
    texts = [r["instruction"] + " " + r["output"] for r in ALPACA_ROWS]
    rows = lm.tokenizer(texts)["input_ids"]
    ids, mask = _padded_batch(rows, max(map(len, rows)), lm.tokenizer.pad_token_id)
    with torch.inference_mode():
        want = lm.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        got = FastDecoder(lm.model)(ids).float()
    real = mask.bool()
    tol = 1e-5 if dtype == "float32" else 0.05 * float(want[real].abs().max())
    torch.testing.assert_close(got[real], want[real], atol=tol, rtol=0)


def test_features_unchanged_by_the_fast_path(tiny_llama, tmp_path, monkeypatch):
    """The same features, to 1e-5 (float32), with daar's forward and with transformers' forward."""
    texts = [r["instruction"] + "\n" + r["output"] for r in ALPACA_ROWS] * 3
    kw = dict(model=tiny_llama, layer=2, dtype="float32", show_progress=False, max_tokens=64)
    monkeypatch.setenv("DAAR_FAST_DECODER", "1")
    fast = FeatureExtractor(store=FeatureStore(tmp_path / "a"), **kw)
    got = fast(texts)
    assert isinstance(decoder_forward(fast.loaded, 1024), FastDecoder)
    monkeypatch.setenv("DAAR_FAST_DECODER", "0")
    plain = FeatureExtractor(store=FeatureStore(tmp_path / "b"), **kw)
    want = plain(texts)
    assert not isinstance(decoder_forward(plain.loaded, 1024), FastDecoder)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_unsupported_models_keep_transformers_forward(tiny_qwen2):
    lm = load_model(tiny_qwen2, layers=2, dtype="float32", device="cpu")
    lm.model.config.use_sliding_window, lm.model.config.sliding_window = True, 16
    assert not supports(lm.model, 1024) and supports(lm.model, 16)
    lm.model.config.hidden_act = "gelu"
    assert not supports(lm.model, 16)
