"""`daar embed` command: arguments and the printed summary (the work is in features/job.py)."""

from __future__ import annotations

from daar.cli_args import S, common, data_args, model_args
from daar.config import Config


def build(sub) -> None:
    p = sub.add_parser("embed", help="pooled shallow-layer features for every record of a file")
    common(p)
    data_args(p)
    model_args(p)
    p.add_argument("--layer", default=S, help="'embedding' or decoder layer K (model loaded truncated to K)")
    p.add_argument("--pooling", default=S, choices=["mean", "last", "mean-padded"])


def run(cfg: Config) -> int:
    from daar.features.job import run_embed

    summary = run_embed(cfg)
    print(f"read {summary['read']} = embedded {summary['embedded']} + rejected {summary['rejected']} "
          f"({summary['from_cache']} from the feature store, {summary['computed']} computed in "
          f"{summary['seconds']:.1f} s); features {tuple(summary['shape'])} -> {cfg.out or 'embeddings'}")
    return 0
