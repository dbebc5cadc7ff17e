"""`daar export`: a selection in LLaMA-Factory / ms-swift / ShareGPT format; prints what was written."""

from __future__ import annotations

import argparse

from daar.cli.flags import add_settings, common
from daar.settings import Config

OUT_MAY_BE_FILE = True  # --out is the export file (or a folder for it)


def build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write records in LLaMA-Factory, ms-swift or ShareGPT dataset format",
                       description="Export a selection (or any pool daar reads) for training with another tool.")
    common(p)
    add_settings(p, {"input": ("data", "schema", "format", "on_bad_record"), "train": ("export_format",),
                     "run": ("out",)})


def run(cfg: Config, args: argparse.Namespace) -> int:
    from daar.train.export import run_export

    res = run_export(cfg)
    extra = f"; dataset_info entry '{res.dataset_name}' in {res.dataset_info}" if res.dataset_info else ""
    print(f"wrote {res.count} records ({res.format}, {res.layout} layout) -> {res.path}{extra}")
    return 0
