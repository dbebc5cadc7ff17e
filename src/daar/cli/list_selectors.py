"""`daar list-selectors`: every registered selection method with its one-line description."""

from __future__ import annotations

import argparse

from daar.cli.flags import quiet
from daar.settings import Config


def build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list-selectors", help="list the selection methods (names for --method / --methods)")
    quiet(p)


def run(cfg: Config, args: argparse.Namespace) -> int:
    from daar.selectors.base import describe_all

    rows = describe_all()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0
