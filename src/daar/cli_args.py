"""Argument groups shared by several subcommands (each package's `commands.py` builds its own parser)."""

from __future__ import annotations

import argparse

S = argparse.SUPPRESS  # unset flags stay unset, so YAML values and defaults show through


def data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input")
    g.add_argument("--data", default=S, help="pool file (.jsonl/.json/.parquet/.csv) or datasets folder")
    g.add_argument("--schema", default=S, choices=["auto", "alpaca", "sharegpt", "messages", "text"],
                   help="record schema (default: auto-detect)")
    g.add_argument("--format", default=S, choices=["auto", "jsonl", "json", "parquet", "csv", "hf"])
    g.add_argument("--on-bad-record", default=S, choices=["error", "skip"],
                   help="error (default): stop at the first bad record; skip: write it to rejects.jsonl")
    g.add_argument("--template", default=S,
                   help="renderer template: default, reference-train, reference-score or a format string")


def model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and features")
    g.add_argument("--model", default=S, help="HF id or local folder; 'default' = bundled SmolLM2-135M-Instruct")
    g.add_argument("--max-length", type=int, default=S, help="token limit (default 1024 for layers, 512 embedding)")
    g.add_argument("--dtype", default=S, choices=["auto", "bfloat16", "float16", "float32"])
    g.add_argument("--batch-size", type=int, default=S, help="records per forward pass (length-bucketed)")
    g.add_argument("--device", default=S, help="cpu, cuda, cuda:1 (default: cuda if available)")
    g.add_argument("--feature-cache", default=S, help="feature store folder (default $DAAR_CACHE/features)")


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file of settings (keys are these flag names)")
    p.add_argument("--out", default=S, help="output folder")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
