"""LoRA fine-tuning (TRL + PEFT) and dataset export for training elsewhere.

Python API (imported lazily, so `import daar.train` does not load torch):

    train_lora(cfg=None, *, records=None, callbacks=None, **overrides) -> TrainResult
        Fine-tune cfg.lm.model with LoRA on cfg.input.data (or the given records) into cfg.run.out.
        `overrides` are setting names (train_batch_size, train_max_length, lr, ...).
        TrainResult: out, adapter_dir, log_csv, loss_plot, manifest, merged_dir, final_loss,
        train_loss, steps, resumed_from_step, records_used, records_skipped, seconds.
    tokenize_record(record, tokenizer, template, renderer, max_length) -> Example
        input_ids and labels (-100 on prompt tokens) for one record; raises SkipRecord.
    tokenize_records(records, tokenizer, template, renderer, max_length) -> (examples, TokenStats)
    resolve_chat_template(tokenizer, spec) -> str | None     (spec: none | auto | tokenizer | chatml | file | Jinja)
    export_records(records, fmt, out, name=None) -> ExportResult
        fmt: llama-factory | ms-swift | sharegpt (see daar.train.export).
    export_file(data, fmt, out, ...) -> ExportResult           load a file, then export_records.
    run_export(cfg) -> ExportResult                           `daar export`: cfg.input.data -> cfg.run.out.
    read_log_csv(path) -> list[dict]                          training_log.csv rows

CLI: `daar train` (daar.cli.train) and `daar export` (daar.cli.export).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "train_lora": "daar.train.lora", "TrainResult": "daar.train.lora", "validate_train": "daar.train.lora",
    "tokenize_record": "daar.train.tokens", "tokenize_records": "daar.train.tokens",
    "resolve_chat_template": "daar.train.tokens", "Example": "daar.train.tokens",
    "TokenStats": "daar.train.tokens", "SkipRecord": "daar.train.tokens", "PadCollator": "daar.train.tokens",
    "IGNORE_INDEX": "daar.train.tokens",
    "export_records": "daar.train.export", "export_file": "daar.train.export", "run_export": "daar.train.export", "ExportResult": "daar.train.export",
    "EXPORT_FORMATS": "daar.train.export",
    "read_log_csv": "daar.train.logs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'daar.train' has no attribute {name!r}")
