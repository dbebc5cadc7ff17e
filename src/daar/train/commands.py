"""`daar train` command: arguments and the printed summary (the work is in train/lora.py)."""

from __future__ import annotations

from daar.cli_args import S, common, data_args
from daar.config import Config


def build(sub) -> None:
    p = sub.add_parser("train", help="LoRA fine-tuning on a (selected) pool, response tokens only (TRL + PEFT)",
                       description="Fine-tune a causal LM with LoRA. Defaults are the paper's: all linear layers, "
                       "r 8, alpha 16, lr 5e-5, warmup 0.05, 1 epoch, batch 4 x accumulation 4, max length 2048, "
                       "seed 42; bf16 on a CUDA GPU that supports it, float32 otherwise.")
    common(p)
    data_args(p)
    g = p.add_argument_group("model and format")
    g.add_argument("--model", default=S, help="HF id or local folder; 'default' = bundled SmolLM2-135M-Instruct")
    g.add_argument("--chat-template", default=S,
                   help="auto (default: the tokenizer's own if it has one), none (plain --template text), "
                        "tokenizer, chatml, a .jinja file or a Jinja string")
    g.add_argument("--dtype", default=S, choices=["auto", "bfloat16", "float16", "float32"],
                   help="auto: bf16 on a bf16-capable CUDA GPU, float32 elsewhere")
    g.add_argument("--device", default=S, help="cpu or cuda (default: cuda if available)")
    h = p.add_argument_group("LoRA and optimisation")
    h.add_argument("--lora-r", type=int, default=S, help="LoRA rank (default 8)")
    h.add_argument("--lora-alpha", type=int, default=S, help="LoRA alpha (default 16)")
    h.add_argument("--lora-dropout", type=float, default=S, help="LoRA dropout (default 0)")
    h.add_argument("--lr", type=float, default=S, help="peak learning rate (default 5e-5, cosine schedule)")
    h.add_argument("--warmup-ratio", type=float, default=S, help="warmup fraction of the steps (default 0.05)")
    h.add_argument("--epochs", type=float, default=S, help="epochs over the data (default 1)")
    h.add_argument("--batch-size", dest="train_batch_size", metavar="N", type=int, default=S,
                   help="per-device batch (default 4)")
    h.add_argument("--gradient-accumulation", type=int, default=S, help="micro-batches per step (default 4)")
    h.add_argument("--max-length", dest="train_max_length", metavar="N", type=int, default=S,
                   help="token limit per record; longer ones are truncated (default 2048)")
    h.add_argument("--max-steps", type=int, default=S, help="stop after N optimizer steps (quick checks)")
    h.add_argument("--seed", type=int, default=S, help="seed for LoRA init and data order (default 42)")
    h.add_argument("--group-by-length", action="store_true", default=S,
                   help="put records of similar length in the same micro-batch (random order of groups): "
                        "far less padding, so faster on CPU; off by default, as in the paper")
    r = p.add_argument_group("checkpoints and outputs")
    r.add_argument("--save-steps", type=int, default=S, help="checkpoint every N steps (default 200; always at the end)")
    r.add_argument("--resume", action="store_true", default=S, help="continue from the last checkpoint in --out")
    r.add_argument("--merge", action="store_true", default=S, help="also write base + adapter merged into out/merged")


def run(cfg: Config) -> int:
    from daar.train.lora import train_lora

    res = train_lora(cfg)
    loss = f"{res.final_loss:.4f}" if res.final_loss is not None else "n/a"
    resumed = f" (resumed at step {res.resumed_from_step})" if res.resumed_from_step is not None else ""
    print(f"trained {res.steps} steps{resumed} on {res.records_used} records "
          f"({res.records_skipped} skipped) in {res.seconds:.1f} s; final loss {loss}")
    print(f"adapter -> {res.adapter_dir}; log -> {res.log_csv}; plot -> {res.loss_plot}; manifest -> {res.manifest}"
          + (f"; merged model -> {res.merged_dir}" if res.merged_dir else ""))
    return 0
