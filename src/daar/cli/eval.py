"""`daar eval`: benchmarks of a model (+ LoRA adapter); prints one line per task and the average."""

from __future__ import annotations

import argparse

from daar.cli.flags import add_settings, common
from daar.settings import Config


def build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="benchmark a model or model + LoRA adapter (lm-eval, local data, offline)",
                       description="Evaluate on the paper's benchmarks (nq, triviaqa, hellaswag, gsm8k, math, "
                       "mbpp, humaneval; 'paper' = all seven) and/or heldout-loss; writes results.json, "
                       "results.md and raw/ under --out.")
    common(p)
    add_settings(p, {"lm": None, "eval": None, "input": ("template",), "features": ("max_length",),
                     "run": ("seed", "out")})


def run(cfg: Config, args: argparse.Namespace) -> int:
    from daar.evaluate.runner import evaluate

    results = evaluate(cfg)
    for name, task in results["tasks"].items():
        value = f"{task['value']:.4f}" if task.get("unit") == "nats/token" else f"{task['value']:.2f}"
        print(f"{name:>13}: {task['metric']} {value} ({task['n']} items, {task.get('seconds', 0):.0f} s)")
    if results.get("average"):
        print(f"{'average':>13}: {results['average']['value']:.2f} over {', '.join(results['average']['over'])}")
    out = cfg.run.out
    print(f"results -> {out}/results.json, results.md; per-sample outputs in {out}/raw/")
    return 0
