"""`daar demo`: the main job (a small mixed pool, DaaR on the bundled model, a report); prints the split."""

from __future__ import annotations

import argparse

from daar.cli.flags import add_settings, common
from daar.settings import Config


def build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job: a small mixed pool, DaaR selection with the bundled model, a report")
    common(p)
    add_settings(p, {"lm": ("model",), "run": ("seed", "out")})


def run(cfg: Config, args: argparse.Namespace) -> int:
    from daar.runs.demo import run_demo

    m = run_demo(cfg)
    d, c = m["demo"], m["counts"]
    print(f"[demo] read {c['read']} = selected {c['selected']} + not selected {c['not_selected']} + rejected {c['rejected']}")
    sources = sorted(d["pool_sources"])
    width = max(len(x) for x in sources)
    print("[demo] hidden source  " + " ".join(f"{x:>{width}}" for x in sources))
    print("[demo] pool           " + " ".join(f"{d['pool_sources'].get(x, 0):>{width}}" for x in sources))
    print("[demo] selection      " + " ".join(f"{d['selected_sources'].get(x, 0):>{width}}" for x in sources))
    print(f"[demo] total-variation distance of the selection's mix from the pool's: {d['source_tv']:.3f}")
    print(f"[demo] done in {d['wall_seconds']} s. Selection: {cfg.run.out or 'demo-run'}/selection/selected.jsonl")
    print(f"[demo] report: {m.get('report')}")
    return 0
