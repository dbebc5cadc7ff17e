"""Write records in the dataset formats of other fine-tuning tools, for users who train elsewhere.

Formats (`--export-format`):
- `llama-factory`: an Alpaca-style JSON list (instruction / input / output) plus an entry in
  `dataset_info.json` beside it (created, or updated in place when it already exists), so the data
  is usable as `dataset: NAME` in a LLaMA-Factory config. Pools that were chats (ShareGPT /
  messages) are written in LLaMA-Factory's sharegpt formatting instead (conversations with
  from/value, the entry says `formatting: sharegpt`), which keeps every turn.
- `ms-swift`: JSONL, one `{"messages": [{"role", "content"}, ...]}` per line.
- `sharegpt`: JSONL, one `{"conversations": [{"from": human|gpt|system, "value"}, ...]}` per line.

`--out` is a file (`.json` / `.jsonl`) or a folder (the file is then named after the input file;
for LLaMA-Factory the file's stem is the dataset name). A record's own `id` is kept when it has one.
Round trip: `load_records` on the exported file gives back the same instruction / input / output
(llama-factory, Alpaca pools) or the same messages (every format).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daar.data import Record, load_records
from daar.data.records import detect_schema
from daar.errors import ConfigError, InputError
from daar.io import atomic_write
from daar.settings import EXPORT_FORMATS, Config

_TO_SHAREGPT = {"user": "human", "assistant": "gpt", "system": "system"}
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "system_tag": "system"}


@dataclass
class ExportResult:
    format: str
    path: Path
    count: int
    dataset_info: Path | None = None  # llama-factory only
    dataset_name: str | None = None
    layout: str = ""  # alpaca | sharegpt | messages


def _is_chat(record: Record) -> bool:
    return detect_schema(record.raw) in ("sharegpt", "messages")


def _with_id(record: Record, row: dict[str, Any]) -> dict[str, Any]:
    own = record.raw.get("id") if isinstance(record.raw, dict) else None
    return {"id": own, **row} if isinstance(own, (str, int)) and str(own) != "" else row


def sharegpt_turns(record: Record) -> list[dict[str, str]]:
    return [{"from": _TO_SHAREGPT.get(m["role"], m["role"]), "value": m["content"]} for m in record.messages]


def messages(record: Record) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in record.messages]


def _target(out: str | Path, default_stem: str, suffixes: tuple[str, ...], ext: str) -> Path:
    out = Path(out)
    if out.suffix.lower() in suffixes and not out.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{default_stem}{ext}"


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomic, so a trainer pointed at the file never reads a partial export."""
    atomic_write(path, lambda fh: fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
                 binary=False)


def _write_json(path: Path, doc: Any) -> None:
    atomic_write(path, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")


def _update_dataset_info(info_path: Path, name: str, entry: dict[str, Any]) -> None:
    info: dict[str, Any] = {}
    if info_path.exists():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(info_path, f"malformed JSON ({exc.msg})",
                             "Fix it or remove it; daar adds its entry to an existing dataset_info.json",
                             exc.lineno) from None
        if not isinstance(info, dict):
            raise InputError(info_path, "is not a JSON object", "LLaMA-Factory's dataset_info.json maps names to entries")
    info[name] = entry
    _write_json(info_path, info)


def export_records(records: Sequence[Record], fmt: str, out: str | Path, name: str = "daar_selected") -> ExportResult:
    """Write `records` in format `fmt` to `out` (a file, or a folder where `name` + extension is created)."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--export-format '{fmt}' is not one of: {', '.join(EXPORT_FORMATS)}")
    if not records:
        raise ConfigError("nothing to export: no records")
    if fmt == "ms-swift":
        path = _target(out, name, (".jsonl",), ".jsonl")
        _write_jsonl(path, [_with_id(r, {"messages": messages(r)}) for r in records])
        return ExportResult(fmt, path, len(records), layout="messages")
    if fmt == "sharegpt":
        path = _target(out, name, (".jsonl",), ".jsonl")
        _write_jsonl(path, [_with_id(r, {"conversations": sharegpt_turns(r)}) for r in records])
        return ExportResult(fmt, path, len(records), layout="sharegpt")
    path = _target(out, name, (".json",), ".json")
    if any(_is_chat(r) for r in records):
        rows = [_with_id(r, {"conversations": sharegpt_turns(r)}) for r in records]
        entry = {"file_name": path.name, "formatting": "sharegpt", "columns": {"messages": "conversations"},
                 "tags": SHAREGPT_TAGS}
        layout = "sharegpt"
    else:
        rows = [_with_id(r, {"instruction": r.instruction, "input": r.input, "output": r.output}) for r in records]
        entry = {"file_name": path.name, "columns": {"prompt": "instruction", "query": "input", "response": "output"}}
        layout = "alpaca"
    _write_json(path, rows)
    info_path = path.parent / "dataset_info.json"
    _update_dataset_info(info_path, path.stem, entry)
    return ExportResult(fmt, path, len(records), dataset_info=info_path, dataset_name=path.stem, layout=layout)


def export_file(data: str | Path, fmt: str, out: str | Path, schema: str = "auto", input_format: str = "auto",
                on_bad_record: str = "error") -> ExportResult:
    """Load `data` with daar's readers (any schema it reads) and export it; the input's stem names the output."""
    loaded = load_records(data, schema, input_format, on_bad_record)
    stem = Path(data).name.split(".")[0] or "daar_selected"
    return export_records(loaded.records, fmt, out, name=stem)


def run_export(cfg: Config) -> ExportResult:
    """`daar export` as a function: `cfg.input.data` in `cfg.train.export_format` to `cfg.run.out`."""
    cfg.require(data="the records to export (e.g. runs/exp1/selected.jsonl)",
                export_format=f"one of {', '.join(EXPORT_FORMATS)}", out="an output file or folder")
    i = cfg.input
    return export_file(i.data, cfg.train.export_format, cfg.run.out, i.schema, i.format, i.on_bad_record)
