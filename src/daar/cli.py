"""Command-line interface: argument definitions and dispatch only; the work lives in the stage packages."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

from daar import __version__
from daar.config import Config
from daar.errors import DaarError

# subcommand -> module with build(subparsers) and run(config) -> exit code. Order = order in --help.
COMMANDS: dict[str, str] = {
    "demo": "daar.demo_command",
    "select": "daar.selectors.commands",
    "embed": "daar.features.commands",
    "experiment": "daar.experiment_command",
    "eval": "daar.evaluate.commands",
    "train": "daar.train.commands",
    "export": "daar.train.export_commands",
    "compare": "daar.selectors.compare",
    "list-selectors": "daar.selectors.list_command",
}


def _module(name: str):
    return importlib.import_module(COMMANDS[name])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daar", description="Diversity as a Reward: choose fine-tuning data "
                                     "by the model's own predicted domain entropy.")
    parser.add_argument("--version", action="version", version=f"daar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        _module(name).build(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    cfg = Config.from_yaml(args.config) if getattr(args, "config", None) else Config()
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config", "quiet")}
    # positional arguments of a command that are not settings (e.g. experiment's YAML path) go to `extra`
    extra = {k: flags.pop(k) for k in list(flags) if k not in Config.names()}
    cfg = Config.from_mapping(flags, cfg, source="command line")
    cfg.extra = {**cfg.extra, **extra}
    return cfg.apply_preset().validate()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return _module(args.command).run(config_from_args(args))
    except DaarError as exc:
        print(f"daar {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"daar {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def dump(obj: object) -> str:
    return json.dumps(obj, indent=2, default=str)
