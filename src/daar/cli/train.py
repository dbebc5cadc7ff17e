"""`daar train`: LoRA fine-tuning on a (selected) pool; prints steps, loss and where the adapter went."""

from __future__ import annotations

import argparse

from daar.cli.flags import add_settings, common
from daar.settings import Config, TrainSettings


def build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="LoRA fine-tuning on a (selected) pool, response tokens only (TRL + PEFT)",
                       description="Fine-tune a causal LM with LoRA (all linear layers). Defaults are the paper's; "
                       "--dtype auto trains in bf16 on a CUDA GPU that supports it, float32 otherwise.")
    common(p)
    train_fields = [n for n in TrainSettings.names() if n != "export_format"]
    add_settings(p, {"input": None, "lm": None, "train": train_fields, "run": ("seed", "out")})


def run(cfg: Config, args: argparse.Namespace) -> int:
    from daar.train.lora import train_lora

    res = train_lora(cfg)
    loss = f"{res.final_loss:.4f}" if res.final_loss is not None else "n/a"
    resumed = f" (resumed at step {res.resumed_from_step})" if res.resumed_from_step is not None else ""
    print(f"trained {res.steps} steps{resumed} on {res.records_used} records "
          f"({res.records_skipped} skipped) in {res.seconds:.1f} s; final loss {loss}")
    print(f"adapter -> {res.adapter_dir}; log -> {res.log_csv}; plot -> {res.loss_plot}; manifest -> {res.manifest}"
          + (f"; merged model -> {res.merged_dir}" if res.merged_dir else ""))
    return 0
