"""`daar export` command: write a selection in LLaMA-Factory / ms-swift / ShareGPT format (work in train/export.py)."""

from __future__ import annotations

from daar.cli_args import S
from daar.config import Config
from daar.errors import ConfigError


def build(sub) -> None:
    p = sub.add_parser("export", help="write records in LLaMA-Factory, ms-swift or ShareGPT dataset format",
                       description="Export a selection (or any pool daar reads) for training with another tool.")
    p.add_argument("--config", help="YAML file of settings (keys are these flag names)")
    p.add_argument("--data", default=S, help="records to export (e.g. runs/exp1/selected.jsonl)")
    p.add_argument("--format", dest="export_format", default=S, choices=["llama-factory", "ms-swift", "sharegpt"],
                   help="llama-factory: Alpaca JSON + dataset_info.json entry; ms-swift: JSONL with messages; "
                        "sharegpt: JSONL with conversations (from/value)")
    p.add_argument("--out", default=S, help="output file (.json for llama-factory, .jsonl otherwise) or folder")
    p.add_argument("--schema", default=S, choices=["auto", "alpaca", "sharegpt", "messages", "text"],
                   help="input record schema (default: auto-detect)")
    p.add_argument("--input-format", dest="format", default=S, choices=["auto", "jsonl", "json", "parquet", "csv", "hf"],
                   help="input file format (default: from the extension)")
    p.add_argument("--on-bad-record", default=S, choices=["error", "skip"])
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


def run(cfg: Config) -> int:
    from daar.train.export import export_file

    if not cfg.data:
        raise ConfigError("--data is required: the records to export")
    if not cfg.export_format:
        raise ConfigError("--format is required: llama-factory, ms-swift or sharegpt")
    if not cfg.out:
        raise ConfigError("--out is required: an output file or folder")
    res = export_file(cfg.data, cfg.export_format, cfg.out, cfg.schema, cfg.format, cfg.on_bad_record)
    extra = f"; dataset_info entry '{res.dataset_name}' in {res.dataset_info}" if res.dataset_info else ""
    print(f"wrote {res.count} records ({res.format}, {res.layout} layout) -> {res.path}{extra}")
    return 0
