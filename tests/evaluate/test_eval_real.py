"""Real-model check on the shared benchmark files (slow: deselected by default; run with -m slow)."""

from __future__ import annotations

import json
import math

import pytest

from daar.evaluate import evaluate


@pytest.mark.slow
def test_bundled_model_on_real_benchmarks(shared_data, tmp_path):
    res = evaluate(model="default", tasks="gsm8k,humaneval,mbpp,nq,hellaswag,heldout-loss", limit=3,
                   data_dir=str(shared_data / "eval"), out=str(tmp_path / "out"), extra={"max_gen_toks": 128})
    for name in ("gsm8k", "humaneval", "mbpp", "nq", "hellaswag"):
        task = res["tasks"][name]
        assert task["n"] == 3 and 0 <= task["value"] <= 100
    held = res["tasks"]["heldout-loss"]
    assert set(held["domains"]) == {"common_sense", "reasoning", "mathematics", "coding"}
    assert all(math.isfinite(d["loss"]) and 0 < d["loss"] < 10 for d in held["domains"].values())
    samples = [json.loads(x) for x in (tmp_path / "out" / "raw" / "humaneval" / "samples.jsonl").open()]
    assert all(s["daar"]["status"] in ("passed", "failed", "timeout") for s in samples)
