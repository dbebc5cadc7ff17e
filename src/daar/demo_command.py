"""`daar demo`: build a small offline pool and run the whole selection on the bundled model."""

from __future__ import annotations

from daar.cli_args import S
from daar.config import Config


def build(sub) -> None:
    p = sub.add_parser("demo", help="the main job: a small mixed pool, DaaR selection with the bundled model, a report")
    p.add_argument("--config", help="YAML file of settings")
    p.add_argument("--out", default=S, help="output folder (default demo-run)")
    p.add_argument("--model", default=S, help="model (default: bundled SmolLM2-135M-Instruct)")
    p.add_argument("--seed", type=int, default=S)
    p.add_argument("-q", "--quiet", action="store_true")


def run(cfg: Config) -> int:
    from daar.demo import run_demo

    m = run_demo(cfg)
    d, c = m["demo"], m["counts"]
    print(f"[demo] read {c['read']} = selected {c['selected']} + not selected {c['not_selected']} + rejected {c['rejected']}")
    print(f"[demo] hidden sources in the pool:      {d['pool_sources']}")
    print(f"[demo] hidden sources in the selection: {d['selected_sources']}")
    print(f"[demo] done in {d['wall_seconds']} s. Selection: {cfg.out or 'demo-run'}/selection/selected.jsonl")
    print(f"[demo] report: {m.get('report')}")
    return 0
