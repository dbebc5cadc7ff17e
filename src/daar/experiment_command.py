"""`daar experiment CONFIG.yaml`: selection -> LoRA training -> evaluation for several methods and seeds."""

from __future__ import annotations

from daar.config import Config


def build(sub) -> None:
    p = sub.add_parser("experiment", help="the paper's protocol from one YAML: select, train, evaluate, table")
    p.add_argument("experiment", help="experiment YAML (see configs/cpu-small.yaml)")
    p.add_argument("-q", "--quiet", action="store_true")


def run(cfg: Config) -> int:
    from daar.experiment import run_experiment

    summary = run_experiment(cfg.extra["experiment"])
    out = summary["config"]["out"]
    print(open(f"{out}/experiment.md").read())
    print(f"table: {out}/experiment.md, {out}/experiment.csv, {out}/experiment.png; "
          f"wall time {summary['wall_seconds']} s")
    return 0

