"""`daar train` on a tiny random model: the loss goes down, the adapter loads, resume continues."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from daar.cli import main
from daar.data import Renderer, load_records
from daar.errors import ConfigError
from daar.models.loading import load_tokenizer
from daar.train import read_log_csv, train_lora
from daar.train.tokens import PadCollator, resolve_chat_template, tokenize_records
from data_helpers import ALPACA_ROWS, write_jsonl

pytestmark = pytest.mark.filterwarnings("ignore:.*gradient_checkpointing. is deprecated:FutureWarning")
FAST = dict(lr=1e-2, train_batch_size=2, gradient_accumulation=1, warmup_ratio=0.0)


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("pool") / "selected.jsonl", ALPACA_ROWS)


@pytest.fixture(scope="module")
def trained(tiny_llama, pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "lora"
    return train_lora(data=str(pool), model=tiny_llama, out=str(out), max_steps=9, merge=True, **FAST)


def _response_loss(model, tok, pool) -> float:
    """Mean response-token loss of `model` over the pool, as training sees it (chat template, prompt masked)."""
    import torch

    records = load_records(pool).records
    examples, _ = tokenize_records(records, tok, resolve_chat_template(tok, "auto"), Renderer(), 512)
    batch = PadCollator(tok.pad_token_id)([{"input_ids": e.input_ids, "labels": e.labels} for e in examples])
    with torch.no_grad():
        return float(model(**batch).loss)


def test_training_lowers_loss_and_writes_a_loadable_adapter(trained, tiny_llama, pool):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = trained.out
    assert trained.steps == 9 and trained.records_used == len(ALPACA_ROWS) and trained.records_skipped == 0
    rows = read_log_csv(trained.log_csv)
    assert [int(r["step"]) for r in rows] == list(range(1, 10))
    assert {"loss", "learning_rate", "epoch"} <= set(rows[0])
    # 6 records at batch 2 = 3 steps per epoch: the third epoch sees the same data as the first
    first, third = [r["loss"] for r in rows[:3]], [r["loss"] for r in rows[6:9]]
    assert sum(third) / 3 < sum(first) / 3
    assert trained.final_loss == pytest.approx(rows[-1]["loss"])

    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 8
    assert (out / "loss.png").stat().st_size > 1000
    assert (out / "checkpoints" / "checkpoint-9").is_dir()  # saved at the end

    tok = load_tokenizer(tiny_llama)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    base_loss = _response_loss(base, tok, pool)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32),
                                      str(out)).eval()
    tuned_loss = _response_loss(tuned, tok, pool)
    assert math.isfinite(tuned_loss) and tuned_loss < base_loss - 0.05

    merged = AutoModelForCausalLM.from_pretrained(trained.merged_dir, dtype=torch.float32).eval()
    assert _response_loss(merged, tok, pool) == pytest.approx(tuned_loss, abs=1e-3)


def test_manifest_records_settings_counts_and_timing(trained, tiny_llama):
    m = json.loads(trained.manifest.read_text())
    assert m["data"]["records"] == m["data"]["used"] == len(ALPACA_ROWS) and m["data"]["skipped"] == 0
    assert m["data"]["response_tokens"] < m["data"]["tokens"]
    assert m["training"]["target_modules"] == "all-linear" and m["training"]["lora_alpha"] == 16
    assert m["training"]["effective_batch"] == 2 and m["training"]["max_length"] == 2048
    assert m["hardware"] == {"device": "cpu", "weights": "float32", "mixed_precision": "no"}
    assert m["model"]["identity"].startswith(Path(tiny_llama).name)
    assert m["format"]["uses_chat_template"] is True
    assert m["timing"]["steps_this_run"] == 9 and m["timing"]["wall_seconds"] > 0
    assert m["config"]["train"]["lr"] == 1e-2 and m["config"]["run"]["out"] == str(trained.out)


def test_resume_continues_from_the_last_checkpoint(tiny_llama, pool, tmp_path, capsys):
    from transformers import TrainerCallback

    out = tmp_path / "lora"
    common = dict(data=str(pool), model=tiny_llama, out=str(out), save_steps=2, chat_template="none", **FAST)
    first = train_lora(max_steps=4, **common)
    assert first.steps == 4 and sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-2", "checkpoint-4"]
    first_rows = read_log_csv(first.log_csv)

    class StartStep(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.step = state.global_step

    start = StartStep()
    second = train_lora(max_steps=6, resume=True, callbacks=[start], **common)
    assert start.step == 4 and second.resumed_from_step == 4 and second.steps == 6
    state = json.loads((out / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    rows = read_log_csv(second.log_csv)
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    assert rows[:4] == first_rows  # the log keeps the first run's steps
    assert json.loads(second.manifest.read_text())["timing"]["steps_this_run"] == 2

    args = ["train", "--data", str(pool), "--model", tiny_llama, "--out", str(out), "--save-steps", "2",
            "--chat-template", "none", "--lr", "1e-2", "--train-batch-size", "2", "--gradient-accumulation", "1",
            "--warmup-ratio", "0", "--max-steps", "7"]
    assert main(args) == 2  # checkpoints exist: refuse to start over without --resume
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert "trained 7 steps (resumed at step 6)" in capsys.readouterr().out
    assert main(args + ["--resume", "--lora-r", "4"]) == 2  # a different adapter shape cannot resume
    assert "lora_r" in capsys.readouterr().err


def test_group_by_length_cuts_padding_and_still_sees_every_record(tiny_llama, tmp_path):
    # 8 short and 8 long records: in random order most micro-batches pair a short with a long one
    rows = [{"instruction": f"Say {i}.", "input": "", "output": "ok " * (2 if i % 2 else 60) + str(i)}
            for i in range(16)]
    pool = write_jsonl(tmp_path / "mixed.jsonl", rows)
    common = dict(data=str(pool), model=tiny_llama, epochs=1, **FAST)
    plain = train_lora(out=str(tmp_path / "plain"), **common)
    grouped = train_lora(out=str(tmp_path / "grouped"), group_by_length=True, **common)
    b_plain = json.loads(plain.manifest.read_text())["batching"]
    b_grouped = json.loads(grouped.manifest.read_text())["batching"]
    assert plain.steps == grouped.steps == 8  # one epoch of 16 records at batch 2 either way
    real = b_plain["token_cells"] - b_plain["padding_cells"]
    assert b_grouped["token_cells"] - b_grouped["padding_cells"] == real  # same tokens, other batches
    assert b_grouped["padding_fraction"] < b_plain["padding_fraction"] / 2
    assert json.loads(grouped.manifest.read_text())["training"]["group_by_length"] is True


def test_settings_are_validated(tiny_llama, pool, tmp_path):
    with pytest.raises(ConfigError, match="--out"):
        train_lora(data=str(pool), model=tiny_llama)
    with pytest.raises(ConfigError, match="--lr"):
        train_lora(data=str(pool), model=tiny_llama, out=str(tmp_path), lr=0)
    with pytest.raises(ConfigError, match="no trainable response tokens|response"):
        train_lora(data=str(pool), model=tiny_llama, out=str(tmp_path / "x"), train_max_length=3)
    with pytest.raises(ConfigError, match="train_batch_size"):  # batch_size is the feature-extraction batch
        train_lora(data=str(pool), model=tiny_llama, out=str(tmp_path / "y"), batch_size=2)


@pytest.mark.slow
def test_bundled_model_trains_a_few_steps(shared_data, tmp_path):
    """The real bundled SmolLM2 with its own chat template: a short run writes a loadable adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from daar.models.loading import resolve_model

    rows = []
    for name in ("coding", "common_sense", "mathematics", "reasoning"):
        with open(shared_data / "pool" / f"{name}.jsonl", encoding="utf-8") as fh:
            rows += [json.loads(next(fh)) for _ in range(2)]
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    res = train_lora(data=str(pool), model="default", out=str(tmp_path / "lora"), max_steps=2, train_batch_size=2,
                     gradient_accumulation=1, train_max_length=128)
    assert res.steps == 2 and res.records_used == 8 and math.isfinite(res.final_loss)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(resolve_model("default"),
                                                                           dtype=torch.float32), str(res.out))
    with torch.no_grad():
        assert torch.isfinite(tuned(input_ids=torch.tensor([[1, 2, 3]])).logits).all()
