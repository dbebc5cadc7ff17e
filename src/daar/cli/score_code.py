"""`daar score-code`: pass@k of code samples made elsewhere, executed in the sandbox; prints the summary."""

from __future__ import annotations

import argparse

from daar.cli.flags import add_settings, common
from daar.errors import ConfigError
from daar.settings import Config


def build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score-code", help="pass@k of HumanEval / MBPP samples (JSONL of task_id + completion), "
                       "executed in the bubblewrap sandbox",
                       description="Execute every sample of --samples (one JSON object per line: task_id, "
                       "completion; several per task allowed) against the task's tests in the OS sandbox and "
                       "write results.jsonl + summary.json (pass@1, and pass@10 / pass@100 where every task "
                       "has that many samples) into --out.")
    common(p)
    g = p.add_argument_group("score-code", "what to score and how")
    g.add_argument("--task", required=True, choices=("humaneval", "mbpp"), help="benchmark the samples answer")
    g.add_argument("--samples", required=True, metavar="JSONL", help="samples file: task_id + completion per line")
    g.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="wall-clock seconds per program (default: 10)")
    g.add_argument("--memory-mb", type=int, default=None, metavar="MB", help="address-space limit per program "
                   "(default: 2048)")
    g.add_argument("--workers", type=int, default=None, metavar="N", help="programs run at once (default: the "
                   "CPU count)")
    add_settings(p, {"eval": ("data_dir", "allow_unsandboxed_code"), "run": ("out",)})


def run(cfg: Config, args: argparse.Namespace) -> int:
    from daar.evaluate.runner import resolve_data_dir
    from daar.evaluate.sandbox import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
    from daar.evaluate.score_code import score_samples

    if not cfg.run.out:
        raise ConfigError("daar score-code needs --out DIR (results.jsonl and summary.json go there)")
    for flag, value in (("--timeout", args.timeout), ("--memory-mb", args.memory_mb), ("--workers", args.workers)):
        if value is not None and not value > 0:
            raise ConfigError(f"{flag} must be > 0 (got {value})")
    summary = score_samples(args.task, args.samples, cfg.run.out, resolve_data_dir(cfg.eval.data_dir),
                            timeout=args.timeout or DEFAULT_TIMEOUT, memory_mb=args.memory_mb or DEFAULT_MEMORY_MB,
                            workers=args.workers, allow_unsandboxed=cfg.eval.allow_unsandboxed_code)
    ks = ", ".join(f"{k} {v:.4f}" for k, v in summary.items() if k.startswith("pass@"))
    print(f"{args.task}: {summary['n_samples']} samples of {summary['n_tasks']} tasks: {ks} "
          f"({summary['seconds']:.1f} s, {', '.join(f'{s} {c}' for s, c in summary['status'].items())}, "
          f"isolation {'/'.join(summary['isolation'])})")
    print(f"results -> {cfg.run.out}/results.jsonl, summary.json")
    return 0
