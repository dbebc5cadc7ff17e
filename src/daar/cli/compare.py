"""`daar compare`: several selectors at one budget on one pool; prints each method's status and the tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from daar.cli.flags import SELECTION_SECTIONS, add_settings, common
from daar.settings import Config


def build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="run several selection methods at one budget and compare their selections")
    common(p)
    sections = {**SELECTION_SECTIONS, "selection": ("methods", "budget", "strategy", "major", "min_naming_margin",
                                                    "force_naming", "with_scores", "label_field", "diagnostics")}
    add_settings(p, sections)


def run(cfg: Config, args: argparse.Namespace) -> int:
    from daar.runs.compare import run_compare

    summary = run_compare(cfg)
    out = Path(cfg.run.out or "runs/compare")
    for r in summary["runs"]:
        print(f"{r['method']:<20} {r['status']:<7} {r['seconds']:>8.1f} s" + (f"  {r['error']}" if r["error"] else ""))
    print(f"comparison: {out}/comparison.md  {out}/comparison.csv  {out}/comparison.html")
    if summary.get("report"):
        print(f"report: {summary['report']}")
    return 0 if all(r["status"] == "ok" for r in summary["runs"]) else 1
