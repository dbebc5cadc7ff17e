"""--adapter: base + LoRA adapter loaded offline with PEFT; its contents are part of the resume fingerprint."""

from __future__ import annotations

import pytest

from daar.errors import ConfigError
from daar.evaluate import evaluate


def _adapter(base: str, path, seed: int) -> str:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a trained-looking adapter (fresh LoRA B is zero, i.e. a no-op)
    model.save_pretrained(path)
    return str(path)


def test_adapter_changes_the_model_and_the_fingerprint(tiny_llama, eval_data, tmp_path):
    kw = dict(model=tiny_llama, tasks="heldout-loss", data_dir=str(eval_data), device="cpu",
              extra={"heldout_rows": "0:2"})
    base = evaluate(out=str(tmp_path / "base"), **kw)["tasks"]["heldout-loss"]["value"]
    adapter = _adapter(tiny_llama, tmp_path / "adapter", seed=1)
    out = str(tmp_path / "lora")
    tuned = evaluate(out=out, adapter=adapter, **kw)["tasks"]["heldout-loss"]["value"]
    assert tuned != pytest.approx(base, abs=1e-4)
    _adapter(tiny_llama, tmp_path / "adapter", seed=2)  # retrained in place: the old result must not be reused
    again = evaluate(out=out, adapter=adapter, **kw)["tasks"]["heldout-loss"]["value"]
    assert again != pytest.approx(tuned, abs=1e-6)


def test_missing_adapter_is_a_clear_error(tiny_llama, eval_data, tmp_path):
    with pytest.raises(ConfigError, match="adapter_config.json"):
        evaluate(model=tiny_llama, adapter=str(tmp_path), tasks="heldout-loss", data_dir=str(eval_data),
                 out=str(tmp_path / "o"), device="cpu", extra={"heldout_rows": "0:2"})
