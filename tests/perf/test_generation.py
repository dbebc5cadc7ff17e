"""The local backend's KV-cache choice changes speed, not text: greedy outputs are identical."""

from __future__ import annotations

import pytest

from daar.synth.backends import HFBackend


@pytest.mark.parametrize("cache", ["static"])
def test_cache_implementation_keeps_greedy_output(tiny_llama, cache):
    chats = [[{"role": "user", "content": "Solve for x: 3x + 5 = 20."}], [{"role": "user", "content": "def add"}]]
    plain = HFBackend(tiny_llama, dtype="float32", device="cpu", batch_size=2)
    other = HFBackend(tiny_llama, dtype="float32", device="cpu", batch_size=2, cache_implementation=cache)
    want = plain.generate(chats, max_new_tokens=12, temperature=0)
    assert other.generate(chats, max_new_tokens=12, temperature=0) == want
    assert all(len(o[0]) > 0 for o in want)


def test_own_decoder_gives_generate_greedy_text(tiny_llama):
    chats = [[{"role": "user", "content": f"Question {i}: what is {i} + {i}?"}] for i in range(5)]
    hf = HFBackend(tiny_llama, dtype="float32", device="cpu", batch_size=3, decoder="hf")
    loop = HFBackend(tiny_llama, dtype="float32", device="cpu", batch_size=3)
    want = hf.generate(chats, max_new_tokens=10, temperature=0)
    assert loop.generate(chats, max_new_tokens=10, temperature=0) == want


def test_sampling_distribution_is_generates():
    """Temperature, top-k 50 and top-p as transformers' warpers apply them, over the full vocabulary."""
    import torch
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    from daar.synth.backends import TOP_K, sampling_probs

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 300, generator=g) * torch.tensor([0.5, 1, 2, 4, 8, 16])[:, None]
    for temperature, top_p in ((0.9, 0.95), (0.7, 0.5), (1.3, 0.99), (0.95, 1.0)):
        scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
        scores = TopPLogitsWarper(top_p)(None, TopKLogitsWarper(TOP_K)(None, scores))
        want = scores.softmax(-1)
        probs, idx = sampling_probs(logits, temperature, top_p)
        got = torch.zeros_like(logits).scatter(-1, idx, probs)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
        assert ((want > 0).sum(-1) <= TOP_K).all()


def test_an_ended_row_leaves_the_batch_without_changing_the_others(tiny_llama):
    """Rows that stop early are dropped from the batch and the KV cache; the rest continue as before."""
    import torch

    from daar.models.loading import load_model
    from daar.synth.backends import decode

    loaded = load_model(tiny_llama, dtype="float32", device="cpu", causal_lm=True)
    tok = loaded.tokenizer
    tok.padding_side = "left"
    enc = tok(["short", "a somewhat longer prompt here", "mid length one"], return_tensors="pt", padding=True)
    kw = dict(max_new_tokens=12, temperature=0, top_p=1.0, eos=set(), generator=None)
    with torch.inference_mode():
        full = decode(loaded.model, enc["input_ids"], enc["attention_mask"], **kw)
        cut = decode(loaded.model, enc["input_ids"], enc["attention_mask"], stop=lambda r, t: r == 1, **kw)
    assert len(full[1]) == 12 and cut[1] == full[1][:1]  # row 1 stopped after its first token (kept)
    assert cut[0] == full[0] and cut[2] == full[2]


def _decode_both(tiny_llama, temperature, stop=None, max_new_tokens=14):
    import torch

    from daar.models.loading import load_model
    from daar.synth.backends import decode

    loaded = load_model(tiny_llama, dtype="float32", device="cpu", causal_lm=True)
    tok = loaded.tokenizer
    tok.padding_side = "left"
    enc = tok(["short", "a somewhat longer prompt here", "mid length one", "x"], return_tensors="pt", padding=True)
    out = {}
    for kv in ("dynamic", "growing"):
        with torch.inference_mode():
            out[kv] = decode(loaded.model, enc["input_ids"], enc["attention_mask"], max_new_tokens=max_new_tokens,
                             temperature=temperature, top_p=0.95, eos=set(), stop=stop, kv_cache=kv,
                             generator=torch.Generator().manual_seed(3))
    return out


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_growing_kv_cache_gives_dynamic_cache_tokens(tiny_llama, temperature):
    """Tokens written in place give what transformers' concatenating cache gives, rows dropping included."""
    out = _decode_both(tiny_llama, temperature, stop=lambda r, t: r == 1 or (r == 3 and t % 3 == 0))
    assert out["growing"] == out["dynamic"]
    assert len(out["dynamic"][1]) == 1 and len(out["dynamic"][0]) == 14  # a row did leave the batch


def test_growing_kv_layer_holds_what_dynamic_layer_holds_and_grows_past_its_capacity():
    import torch
    from transformers.cache_utils import DynamicLayer

    from daar.perf.kv_cache import GrowingLayer

    g = torch.Generator().manual_seed(0)
    mine, ref = GrowingLayer(capacity=4), DynamicLayer()
    rows = 3
    for step, length in enumerate((3, 1, 1, 2, 1)):  # 8 positions into room for 4: it must grow
        k, v = torch.randn(rows, 2, length, 5, generator=g), torch.randn(rows, 2, length, 5, generator=g)
        got, want = mine.update(k, v), ref.update(k, v)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        assert mine.get_seq_length() == ref.get_seq_length()
        if step == 2:
            keep = torch.tensor([0, 2])
            mine.batch_select_indices(keep)
            ref.batch_select_indices(keep)
            rows = 2
            assert torch.equal(mine.keys, ref.keys) and torch.equal(mine.values, ref.values)
    assert mine.get_seq_length() == 8 and mine.keys.shape == (2, 2, 8, 5)
