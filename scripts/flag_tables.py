"""Print the README's "Main flags of select" table from the settings metadata (daar.settings).

The defaults and meanings come from the fields themselves, so the README cannot drift from the
CLI: `python scripts/flag_tables.py` prints the table, `--check README.md` exits 1 when the
README's copy differs (tests/test_settings.py runs the check).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daar.settings import Config, FieldInfo

# Rows of the table: the fields shown together on one row, in README order.
SELECT_ROWS: list[tuple[str, ...]] = [
    ("data",), ("on_bad_record",), ("model",), ("domains",), ("generator_model", "generator_url"),
    ("seeds_per_domain", "samples_per_domain"), ("tau",), ("max_attempts",), ("max_new_tokens", "synth_batch"),
    ("probe_data", "probe_size"), ("centroid_layer", "assignment", "calibration"), ("layer", "pooling", "max_length"),
    ("probe_epochs", "probe_lr", "probe_batch_size"), ("method", "budget"), ("strategy", "major"), ("min_naming_margin", "force_naming"),
    ("seed",),
    ("preset",),
]


def _default(info: FieldInfo) -> str:
    label = info.default_label
    if label is None:
        return "—"
    if info.default_text is None and isinstance(info.default, str) and not label.isdigit():
        return f"`{label}`"
    return label


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def select_table(rows: list[tuple[str, ...]] = SELECT_ROWS) -> str:
    """The markdown table: flag(s) | default(s) | meaning(s), one row per group of fields."""
    lines = ["| flag | default | meaning |", "|---|---|---|"]
    for names in rows:
        infos = [Config.field_info(n) for n in names]
        flags = ", ".join(f"`{i.flag}`" for i in infos)
        defaults = ", ".join(_default(i) for i in infos)
        meaning = "; ".join(i.help for i in infos)
        lines.append(f"| {flags} | {_cell(defaults)} | {_cell(meaning)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", metavar="README", help="exit 1 unless this file contains the table as printed")
    args = p.parse_args(argv)
    table = select_table()
    if args.check:
        if table not in Path(args.check).read_text(encoding="utf-8"):
            print(f"{args.check}: the 'Main flags of select' table differs from the settings; "
                  "paste the output of `python scripts/flag_tables.py`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
