"""`daar list-selectors`: every registered selection method with its one-line description."""

from __future__ import annotations

from daar.config import Config


def build(sub) -> None:
    p = sub.add_parser("list-selectors", help="list the selection methods (names for --method / --methods)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


def run(cfg: Config) -> int:
    from daar.selectors.base import describe_all

    rows = describe_all()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0
