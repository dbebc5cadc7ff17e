"""`daar experiment CONFIG.yaml`: selection -> LoRA training -> evaluation for several methods and seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from daar.cli.flags import quiet
from daar.settings import Config


def build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="the paper's protocol from one YAML: select, train, evaluate, table")
    p.add_argument("experiment", help="experiment YAML (see configs/cpu-small.yaml)")
    quiet(p)


def run(cfg: Config, args: argparse.Namespace) -> int:
    from daar.runs.experiment import run_experiment

    summary = run_experiment(args.experiment)
    out = Path(summary["config"]["out"])
    print((out / "experiment.md").read_text(encoding="utf-8"))
    print(f"table: {out}/experiment.md, {out}/experiment.csv, {out}/experiment.png; "
          f"wall time {summary['wall_seconds']} s")
    return 0
