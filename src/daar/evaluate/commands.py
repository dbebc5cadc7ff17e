"""`daar eval` command: arguments and the printed summary (the work is in evaluate/runner.py)."""

from __future__ import annotations

from daar.cli_args import S, common
from daar.config import Config


def build(sub) -> None:
    p = sub.add_parser("eval", help="benchmark a model or model + LoRA adapter (lm-eval, local data, offline)",
                       description="Evaluate on the paper's benchmarks (nq, triviaqa, hellaswag, gsm8k, math, "
                       "mbpp, humaneval; 'paper' = all seven) and/or heldout-loss; writes results.json, "
                       "results.md and raw/ under --out.")
    common(p)
    g = p.add_argument_group("evaluation")
    g.add_argument("--model", default=S, help="HF id or local folder; 'default' = bundled SmolLM2-135M-Instruct")
    g.add_argument("--adapter", default=S, help="LoRA adapter folder (from daar train) applied to --model")
    g.add_argument("--tasks", default=S, help="comma-separated: nq,triviaqa,hellaswag,gsm8k,math,mbpp,humaneval,"
                   "heldout-loss (or paper / all)")
    g.add_argument("--limit", type=int, default=S, help="items per task instead of the paper's subset "
                   "(first N of the seed-42 permutation; per domain for heldout-loss)")
    g.add_argument("--data-dir", default=S, help="folder with the benchmark JSONL files "
                   "(default ../shared/data/eval beside the project)")
    g.add_argument("--eval-batch-size", type=int, default=S, help="sequences per forward pass / generate call")
    g.add_argument("--seed", type=int, default=S, help="subset sampling and generation seed (default 42)")
    g.add_argument("--template", default=S, help="renderer template for heldout-loss (default: default)")
    g.add_argument("--max-length", type=int, default=S,
                   help="context window for lm-eval (default: the model's) and heldout-loss truncation (default 2048)")
    g.add_argument("--dtype", default=S, choices=["auto", "bfloat16", "float16", "float32"])
    g.add_argument("--device", default=S, help="cpu, cuda, cuda:1 (default: cuda if available)")


def run(cfg: Config) -> int:
    from daar.evaluate.runner import evaluate

    results = evaluate(cfg)
    for name, task in results["tasks"].items():
        value = f"{task['value']:.4f}" if task.get("unit") == "nats/token" else f"{task['value']:.2f}"
        print(f"{name:>13}: {task['metric']} {value} ({task['n']} items, {task.get('seconds', 0):.0f} s)")
    if results.get("average"):
        print(f"{'average':>13}: {results['average']['value']:.2f} over {', '.join(results['average']['over'])}")
    print(f"results -> {cfg.out}/results.json, results.md; per-sample outputs in {cfg.out}/raw/")
    return 0
