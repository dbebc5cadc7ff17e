"""Pooling goldens and pooled features from tiny random Llama / Qwen2 models.

The central check: a model loaded truncated to K layers gives exactly what the full model's layer-K
hidden state gives after the final norm, so features "at layer K" mean the same thing whichever way
they are computed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from daar.data import Record, Renderer
from daar.errors import ConfigError
from daar.features import FeatureExtractor, FeatureStore, extract_features
from daar.features.extract import parse_layer
from daar.features.pooling import pool
from data_helpers import ALPACA_ROWS


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP's spinning makes
    two threads hundreds of times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- pooling goldens ----------------------------------------------------------------------------------

HIDDEN = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [100.0, 100.0]],
                       [[-1.0, 0.0], [7.0, 1.0], [50.0, 50.0], [60.0, 60.0]]])


def test_mean_pooling_ignores_pads():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    out = pool(HIDDEN, mask, "mean")
    expected = torch.tensor([[(1 + 3 + 5) / 3, (2 + 4 + 6) / 3], [(-1 + 7) / 2, (0 + 1) / 2]])
    torch.testing.assert_close(out, expected)


def test_mean_pooling_with_left_padding():
    mask = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    expected = torch.tensor([[(3 + 5 + 100) / 3, (4 + 6 + 100) / 3], [55.0, 55.0]])
    torch.testing.assert_close(pool(HIDDEN, mask, "mean"), expected)


def test_last_pooling_right_padding():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    torch.testing.assert_close(pool(HIDDEN, mask, "last"), torch.tensor([[5.0, 6.0], [7.0, 1.0]]))


def test_last_pooling_left_padding():
    mask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    torch.testing.assert_close(pool(HIDDEN, mask, "last"), torch.tensor([[100.0, 100.0], [60.0, 60.0]]))


def test_last_pooling_without_padding_and_single_token():
    torch.testing.assert_close(pool(HIDDEN, torch.ones(2, 4, dtype=torch.long), "last"), HIDDEN[:, -1])
    mask = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 1]])
    torch.testing.assert_close(pool(HIDDEN, mask, "last"), torch.tensor([[1.0, 2.0], [60.0, 60.0]]))


def test_mean_padded_averages_pads_too():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    expected = torch.tensor([[109 / 4, 112 / 4], [116 / 4, 111 / 4]])
    torch.testing.assert_close(pool(HIDDEN, mask, "mean-padded"), expected)


def test_unknown_pooling():
    with pytest.raises(ValueError, match="unknown pooling"):
        pool(HIDDEN, torch.ones(2, 4), "max")


# -- helpers ------------------------------------------------------------------------------------------


def records(rows=ALPACA_ROWS) -> list[Record]:
    return [Record(id=f"r{i}", index=i, line=i + 1, instruction=r["instruction"], input=r["input"],
                   output=r["output"], messages=(), raw=r) for i, r in enumerate(rows)]


def full_model_reference(path: str, texts: list[str], layer: int, how: str = "mean",
                         pad_to: int | None = None) -> np.ndarray:
    """Features computed the long way: the full model, one text at a time, hidden_states[layer] -> norm."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    assert layer < model.config.num_hidden_layers  # so hidden_states[layer] is not the already-normed last one
    out = []
    with torch.no_grad():
        for text in texts:
            ids = tok(text, truncation=True, max_length=pad_to or 1024)["input_ids"]
            n = len(ids)
            if pad_to:
                ids = ids + [tok.pad_token_id] * (pad_to - n)
            hs = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
            assert len(hs) == model.config.num_hidden_layers + 1
            normed = model.model.norm(hs[layer])[0]
            if how == "mean":
                out.append(normed.mean(0))
            elif how == "last":
                out.append(normed[n - 1])
            else:  # mean-padded
                out.append(normed.mean(0))
    return torch.stack(out).numpy()


# -- truncated model == full model at layer K ---------------------------------------------------------


@pytest.mark.parametrize("layer", [1, 2])
def test_truncated_layer_k_equals_full_model_hidden_state(tiny_model, layer):
    recs = records()
    texts = [Renderer().render(r) for r in recs]
    ext = FeatureExtractor(tiny_model, layer=layer, dtype="float32", show_progress=False)
    got = ext(recs)
    assert got.shape == (len(recs), 64) and got.dtype == np.float32
    # the model really was built with K decoder layers, not the full 4
    assert ext.loaded.model.config.num_hidden_layers == layer
    assert len(ext.loaded.model.layers) == layer and ext.loaded.n_layers == layer
    np.testing.assert_allclose(got, full_model_reference(tiny_model, texts, layer), atol=1e-5, rtol=0)


def test_full_depth_equals_last_hidden_state(tiny_llama):
    from transformers import AutoModel, AutoTokenizer

    texts = [Renderer().render(r) for r in records()[:3]]
    got = extract_features(texts, model=tiny_llama, layer=4, dtype="float32", show_progress=False)
    tok, model = AutoTokenizer.from_pretrained(tiny_llama), AutoModel.from_pretrained(tiny_llama).eval()
    with torch.no_grad():
        want = [model(input_ids=torch.tensor([tok(t)["input_ids"]])).last_hidden_state[0].mean(0) for t in texts]
    np.testing.assert_allclose(got, torch.stack(want).numpy(), atol=1e-5, rtol=0)


def test_last_pooling_matches_full_model(tiny_qwen2):
    recs = records()
    texts = [Renderer().render(r) for r in recs]
    got = extract_features(recs, model=tiny_qwen2, layer=2, pooling="last", dtype="float32", show_progress=False)
    np.testing.assert_allclose(got, full_model_reference(tiny_qwen2, texts, 2, "last"), atol=1e-5, rtol=0)


def test_mean_padded_reproduces_the_reference_scripts(tiny_llama):
    recs = records()[:3]
    texts = [Renderer().render(r) for r in recs]
    got = extract_features(recs, model=tiny_llama, layer=2, pooling="mean-padded", max_length=40, dtype="float32",
                           show_progress=False)
    want = full_model_reference(tiny_llama, texts, 2, "mean-padded", pad_to=40)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    masked = extract_features(recs, model=tiny_llama, layer=2, pooling="mean", dtype="float32", show_progress=False)
    assert not np.allclose(got, masked, atol=1e-3)  # the pads really do change the features


def test_embedding_layer_is_the_mean_token_embedding(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts = [Renderer().render(r) for r in records()]
    ext = FeatureExtractor(tiny_model, layer="embedding", dtype="float32", show_progress=False)
    got = ext(texts)
    assert ext.max_length == 512 and ext.loaded.model.config.num_hidden_layers == 0
    tok = AutoTokenizer.from_pretrained(tiny_model)
    emb = AutoModelForCausalLM.from_pretrained(tiny_model).get_input_embeddings()
    with torch.no_grad():
        want = torch.stack([emb(torch.tensor(tok(t)["input_ids"])).mean(0) for t in texts]).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_max_length_truncates(tiny_llama):
    long_text = " ".join(["Write a Python function that returns the sum of a list of numbers."] * 20)
    cut = extract_features([long_text], model=tiny_llama, layer=1, max_length=8, dtype="float32", show_progress=False)
    from transformers import AutoTokenizer

    prefix = AutoTokenizer.from_pretrained(tiny_llama).decode(
        AutoTokenizer.from_pretrained(tiny_llama)(long_text)["input_ids"][:8])
    whole = extract_features([prefix], model=tiny_llama, layer=1, max_length=8, dtype="float32", show_progress=False)
    np.testing.assert_allclose(cut, whole, atol=1e-5, rtol=0)


# -- batching -----------------------------------------------------------------------------------------


def test_dynamic_batching_equals_batch_size_one(tiny_model, tmp_path):
    rows = ALPACA_ROWS + [{"instruction": "x" * n, "input": "", "output": "y " * n} for n in (1, 5, 17, 40, 90)]
    recs = records(rows)
    kw = dict(model=tiny_model, layer=2, dtype="float32", show_progress=False)
    one = FeatureExtractor(batch_size=1, store=FeatureStore(tmp_path / "a"), **kw)(recs)
    many = FeatureExtractor(batch_size=4, store=FeatureStore(tmp_path / "b"), **kw)(recs)
    capped = FeatureExtractor(batch_size=64, max_tokens=200, shard_size=3, store=FeatureStore(tmp_path / "c"), **kw)(recs)
    np.testing.assert_allclose(many, one, atol=1e-5, rtol=0)
    np.testing.assert_allclose(capped, one, atol=1e-5, rtol=0)
    for how in ("last",):
        one_l = FeatureExtractor(batch_size=1, pooling=how, store=FeatureStore(tmp_path / "d"), **kw)(recs)
        many_l = FeatureExtractor(batch_size=8, pooling=how, store=FeatureStore(tmp_path / "e"), **kw)(recs)
        np.testing.assert_allclose(many_l, one_l, atol=1e-5, rtol=0)


def test_results_follow_input_order(tiny_llama):
    recs = records()
    ext = FeatureExtractor(tiny_llama, layer=1, dtype="float32", show_progress=False, batch_size=2)
    forward = ext(recs)
    backward = FeatureExtractor(tiny_llama, layer=1, dtype="float32", show_progress=False)(recs[::-1])
    np.testing.assert_array_equal(backward, forward[::-1])
    assert len({row.tobytes() for row in forward}) == len(recs)


def test_repeated_texts_are_embedded_once(tiny_llama):
    ext = FeatureExtractor(tiny_llama, layer=1, dtype="float32", show_progress=False)
    out = ext(["same text", "other text", "same text"])
    assert ext.stats.n_computed == 2
    np.testing.assert_array_equal(out[0], out[2])


# -- settings -----------------------------------------------------------------------------------------


def test_parse_layer():
    assert parse_layer(3) == "3" and parse_layer(" 03 ") == "3"
    assert parse_layer("Embedding") == "embedding" and parse_layer("emb") == "embedding"
    for bad in ("0", "-1", "last", "2.5"):
        with pytest.raises(ValueError, match="--layer"):
            parse_layer(bad)


def test_layer_deeper_than_the_model(tiny_llama):
    ext = FeatureExtractor(tiny_llama, layer=9, dtype="float32", show_progress=False)
    with pytest.raises(ConfigError, match="outside 0..4"):
        ext(["some text"])


def test_default_max_lengths_and_dtype_in_spec(tiny_llama):
    assert FeatureExtractor(tiny_llama, layer=3).spec.max_length == 1024
    assert FeatureExtractor(tiny_llama, layer="embedding").spec.max_length == 512
    assert FeatureExtractor(tiny_llama, layer=3, dtype="float32").spec.dtype == "float32"
    assert FeatureExtractor(tiny_llama, layer=3, dtype="bfloat16").spec.dtype == "bfloat16"


def test_bfloat16_is_close_to_float32(tiny_llama, tmp_path):
    texts = [Renderer().render(r) for r in records()]
    f32 = extract_features(texts, model=tiny_llama, layer=2, dtype="float32", show_progress=False)
    bf16 = extract_features(texts, model=tiny_llama, layer=2, dtype="bfloat16", show_progress=False)
    assert bf16.dtype == np.float32
    cos = (f32 * bf16).sum(1) / np.linalg.norm(f32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cos.min() > 0.99 and not np.array_equal(f32, bf16)
