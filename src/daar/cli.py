"""Command-line interface: argument definitions and dispatch only; the work lives in the stage packages."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

from daar import __version__
from daar.config import Config
from daar.errors import DaarError

S = argparse.SUPPRESS  # unset flags stay unset, so YAML values and defaults show through


def _data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input")
    g.add_argument("--data", default=S, help="pool file (.jsonl/.json/.parquet/.csv) or datasets folder")
    g.add_argument("--schema", default=S, choices=["auto", "alpaca", "sharegpt", "messages", "text"],
                   help="record schema (default: auto-detect)")
    g.add_argument("--format", default=S, choices=["auto", "jsonl", "json", "parquet", "csv", "hf"])
    g.add_argument("--on-bad-record", default=S, choices=["error", "skip"],
                   help="error (default): stop at the first bad record; skip: write it to rejects.jsonl")
    g.add_argument("--template", default=S,
                   help="renderer template: default, reference-train, reference-score or a format string")


def _model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and features")
    g.add_argument("--model", default=S, help="HF id or local folder; 'default' = bundled SmolLM2-135M-Instruct")
    g.add_argument("--max-length", type=int, default=S, help="token limit (default 1024 for layers, 512 embedding)")
    g.add_argument("--dtype", default=S, choices=["auto", "bfloat16", "float16", "float32"])
    g.add_argument("--batch-size", type=int, default=S, help="records per forward pass (length-bucketed)")
    g.add_argument("--device", default=S, help="cpu, cuda, cuda:1 (default: cuda if available)")
    g.add_argument("--feature-cache", default=S, help="feature store folder (default $DAAR_CACHE/features)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file of settings (keys are these flag names)")
    p.add_argument("--out", default=S, help="output folder")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


def _build_embed(sub) -> None:
    p = sub.add_parser("embed", help="pooled shallow-layer features for every record of a file")
    _common(p)
    _data_args(p)
    _model_args(p)
    p.add_argument("--layer", default=S, help="'embedding' or decoder layer K (model loaded truncated to K)")
    p.add_argument("--pooling", default=S, choices=["mean", "last", "mean-padded"])


def _run_embed(cfg: Config) -> int:
    from daar.features.job import run_embed

    summary = run_embed(cfg)
    print(f"read {summary['read']} = embedded {summary['embedded']} + rejected {summary['rejected']} "
          f"({summary['from_cache']} from the feature store, {summary['computed']} computed in "
          f"{summary['seconds']:.1f} s); features {tuple(summary['shape'])} -> {cfg.out or 'embeddings'}")
    return 0


COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "embed": (_build_embed, _run_embed),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daar", description="Diversity as a Reward: choose fine-tuning data "
                                     "by the model's own predicted domain entropy.")
    parser.add_argument("--version", action="version", version=f"daar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for build, _ in COMMANDS.values():
        build(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    cfg = Config.from_yaml(args.config) if getattr(args, "config", None) else Config()
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config", "quiet")}
    return Config.from_mapping(flags, cfg, source="command line").apply_preset().validate()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return COMMANDS[args.command][1](config_from_args(args))
    except DaarError as exc:
        print(f"daar {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"daar {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def dump(obj: object) -> str:
    return json.dumps(obj, indent=2, default=str)
