"""`daar select`: DaaR (or any registered selector) on a pool; prints the counts and where outputs are."""

from __future__ import annotations

import argparse

from daar.cli.flags import SELECTION_SECTIONS, add_settings, common
from daar.settings import Config


def build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("select", help="choose a budget of records by predicted domain entropy (or another method)")
    common(p)
    from daar.method.pipeline import STAGE_NAMES

    add_settings(p, {**SELECTION_SECTIONS, "scale": None}, choices={"until": STAGE_NAMES})


def run(cfg: Config, args: argparse.Namespace) -> int:
    from daar.runs.select import run_selection

    m = run_selection(cfg)
    out = cfg.run.out
    if m.get("until"):
        for st in m["stages"]:
            print(f"stage {st['name']:<14} {'cached' if st['skipped_on_rerun'] else 'ran'} in {st['seconds']:.1f} s "
                  f"(fingerprint {st['fingerprint']})")
        print(f"stopped after stage '{m['until']}'; stage outputs in {m['stage_store']}")
        return 0
    c = m["counts"]
    print(f"read {c['read']} = selected {c['selected']} + not selected {c['not_selected']} + rejected {c['rejected']}")
    print(f"selection: {out}/selected.jsonl   scores: {out}/scores.parquet   manifest: {out}/manifest.json")
    if m.get("report"):
        print(f"report: {m['report']}")
    if m.get("scale"):
        sc = m["scale"]
        print(f"shards: {sc['shards_scored']} scored, {sc['shards_reused']} reused from {sc['shard_dir']} "
              f"({sc['backend']}, {sc['records_per_second']:.0f} records/s)")
    return 0
