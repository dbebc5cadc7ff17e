"""`daar embed`: pooled features for every record of a file; prints the counts and where they went."""

from __future__ import annotations

import argparse

from daar.cli.flags import add_settings, common
from daar.settings import Config, FeatureSettings


def build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="pooled shallow-layer features for every record of a file")
    common(p)
    features = [n for n in FeatureSettings.names() if n != "stage_cache"]  # embed runs no DaaR stage
    add_settings(p, {"input": None, "lm": None, "features": features, "run": ("out",)})


def run(cfg: Config, args: argparse.Namespace) -> int:
    from daar.features.job import run_embed

    s = run_embed(cfg)
    print(f"read {s['read']} = embedded {s['embedded']} + rejected {s['rejected']} "
          f"({s['from_cache']} from the feature store, {s['computed']} computed in "
          f"{s['seconds']:.1f} s); features {tuple(s['shape'])} -> {cfg.run.out or 'embeddings'}")
    return 0
