"""Command-line interface: one module per command, each building its parser from the settings
metadata and calling one run function; this module only dispatches.

A command module has `build(subparsers)` and `run(cfg, args) -> exit code`. Errors meant for the
user (DaarError) are printed on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

from daar import __version__
from daar.errors import DaarError
from daar.settings import Config

# subcommand -> module. Order = order in --help.
COMMANDS: dict[str, str] = {
    "demo": "daar.cli.demo",
    "select": "daar.cli.select",
    "embed": "daar.cli.embed",
    "experiment": "daar.cli.experiment",
    "eval": "daar.cli.eval",
    "score-code": "daar.cli.score_code",
    "train": "daar.cli.train",
    "export": "daar.cli.export",
    "compare": "daar.cli.compare",
    "list-selectors": "daar.cli.list_selectors",
}


def _module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser(commands: list[str] | None = None) -> argparse.ArgumentParser:
    """The `daar` parser with every command (or only `commands`)."""
    parser = argparse.ArgumentParser(prog="daar", description="Diversity as a Reward: choose fine-tuning data "
                                     "by the model's own predicted domain entropy.")
    parser.add_argument("--version", action="version", version=f"daar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands or COMMANDS:
        _module(name).build(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """defaults < --config YAML < flags, with the preset applied, validated once (before anything loads).

    A command module sets `OUT_MAY_BE_FILE = True` when its --out may name a file (daar export).
    """
    cfg = Config.from_yaml(args.config) if getattr(args, "config", None) else Config()
    flags = {k: v for k, v in vars(args).items() if k in Config.names()}
    out_may_be_file = bool(getattr(_module(args.command), "OUT_MAY_BE_FILE", False))
    return Config.from_mapping(flags, cfg, source="command line").apply_preset().validate(out_may_be_file)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from daar.perf.allocator import keep_freed_memory

    keep_freed_memory()  # every command's tensors reuse freed memory (perf/allocator.py)
    try:
        return _module(args.command).run(config_from_args(args), args)
    except DaarError as exc:
        print(f"daar {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"daar {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
