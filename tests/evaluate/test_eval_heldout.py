"""heldout-loss: response-only token loss per pool domain on a tiny random model."""

from __future__ import annotations

import math

from daar.data import Record, Renderer
from daar.evaluate.heldout import IGNORE_INDEX, encode, heldout_loss, pool_files
from daar.models.loading import load_model


def test_prompt_tokens_are_masked(tiny_llama):
    lm = load_model(tiny_llama, causal_lm=True, device="cpu")
    tok = lm.tokenizer
    rec = Record(id="r", index=0, line=1, instruction="What is 12 times 7?", input="", output="The answer is 84.",
                 messages=(), raw={})
    renderer = Renderer()
    ids, labels = encode(tok, rec, renderer, max_length=512)
    prompt_len = len(tok(renderer.render_prompt(rec), add_special_tokens=True)["input_ids"])
    assert len(ids) == len(labels)
    assert labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert all(t != IGNORE_INDEX for t in labels[prompt_len:])
    assert tok.decode(ids[prompt_len:]) == "\nThe answer is 84."


def test_heldout_loss_is_finite_per_domain(tiny_llama, eval_data, tmp_path):
    lm = load_model(tiny_llama, causal_lm=True, device="cpu")
    pool = eval_data.parent / "pool"
    assert [p.stem for p in pool_files(pool)] == ["common_sense", "mathematics", "coding"]  # workload order
    res = heldout_loss(lm.model, lm.tokenizer, pool, rows=(1, 4), batch_size=2, raw_dir=tmp_path / "raw")
    assert list(res["domains"]) == ["common_sense", "mathematics", "coding"]
    for d in res["domains"].values():
        assert math.isfinite(d["loss"]) and d["loss"] > 0
        assert d["samples"] == 3 and d["response_tokens"] > 0
    # a random model over a ~320-token vocabulary: loss near ln(320)
    assert abs(res["mean"] - math.log(len(lm.tokenizer))) < 1.5
    assert len((tmp_path / "raw" / "samples.jsonl").read_text().splitlines()) == 9
    limited = heldout_loss(lm.model, lm.tokenizer, pool, rows=(1, 4), limit=1)
    assert all(d["samples"] == 1 for d in limited["domains"].values())
