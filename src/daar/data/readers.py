"""Readers for JSONL, JSON, Parquet, CSV and `datasets.save_to_disk` folders.

Each reader yields (position, row) pairs, where position is the 1-based line number for JSONL and
the 1-based record number otherwise, so every error and every rejected record can say where it was.
Files may be gzip / bzip2 / zstandard compressed and may start with a UTF-8 BOM (data.compression);
record ids follow data.ids (own ids kept, only the records with a duplicate or unusable id changed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daar.data.compression import (
    UTF8_BOM,
    check_not_utf16,
    compression_of,
    decode,
    open_binary,
    read_bytes,
    strip_suffix,
)
from daar.data.ids import IdChange, assign_ids, describe
from daar.data.records import SCHEMAS, Record, RejectedRecord, SchemaMismatch, detect_schema, normalise
from daar.errors import InputError
from daar.io import atomic_write

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "json", "parquet", "csv", "hf")
_FIX_JSON = "Fix or remove that line, or rerun with --on-bad-record skip to set it aside in rejects.jsonl"


@dataclass
class LoadResult:
    """What loading a pool produced: usable records, rejected rows, and the detected schema/format."""

    path: str
    format: str
    schema: str
    records: list[Record]
    rejected: list[RejectedRecord] = field(default_factory=list)
    unit: str = "line"
    id_changes: list[IdChange] = field(default_factory=list)  # records whose own id was changed or rejected

    @property
    def n_read(self) -> int:
        return len(self.records) + len(self.rejected)

    def write_rejects(self, path: str | Path) -> Path:
        """Write one JSON line per rejected row: its position, the reason and the row itself.

        Atomic, so a killed run never leaves a rejects file that silently lists only some rows.
        """
        def write(fh) -> None:
            for r in self.rejected:
                fh.write(json.dumps({"file": self.path, self.unit: r.line, "index": r.index,
                                     "reason": r.reason, "record": r.raw}, ensure_ascii=False,
                                    default=str) + "\n")

        return atomic_write(path, write, binary=False)


def detect_format(path: Path) -> str:
    """The format from the name, a compression suffix ignored (`pool.csv.gz` is csv); jsonl when unknown."""
    if path.is_dir():
        return "hf"
    suffix = strip_suffix(path).suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
            ".pq": "parquet", ".csv": "csv"}.get(suffix, "jsonl")


class _BadRow(Exception):
    def __init__(self, pos: int, reason: str, raw: Any = None):
        self.pos, self.reason, self.raw = pos, reason, raw


def _not_one_per_line(path: Path, lineno: int, text: str) -> None:
    """A .jsonl whose first record line opens a JSON list or a pretty-printed object is a JSON document."""
    head = text.strip()
    if head.startswith("[") or head == "{":
        what = "a JSON list" if head.startswith("[") else "one JSON document spread over several lines"
        raise InputError(path, f"holds {what}, not one JSON record per line (JSONL)",
                         "Rerun with --format json, or convert it to one record per line", lineno)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with open_binary(path) as fh:
        first = True
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1:
                check_not_utf16(raw, path)
                raw = raw.removeprefix(UTF8_BOM)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, _BadRow(lineno, f"not valid UTF-8 (byte {exc.start}); re-encode the file as UTF-8",
                                      raw.decode("utf-8", errors="replace"))
                continue
            if not text.strip():
                continue
            if first:
                _not_one_per_line(path, lineno, text)
                first = False
            try:
                yield lineno, json.loads(text)
            except json.JSONDecodeError as exc:
                yield lineno, _BadRow(lineno, f"malformed JSON ({exc.msg} at column {exc.colno})", text.rstrip("\n"))


def _read_text(path: Path) -> str:
    return decode(read_bytes(path), path)


def _iter_json(path: Path) -> Iterator[tuple[int, Any]]:
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON ({exc.msg} at column {exc.colno})",
                         "A .json pool must be one JSON list of records; use .jsonl for one record per line",
                         exc.lineno) from None
    if isinstance(doc, dict):  # {"data": [...]} style wrappers
        lists = [v for v in doc.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise InputError(path, "top-level JSON object is not a list of records",
                             "Put the records in a top-level list")
        doc = lists[0]
    if not isinstance(doc, list):
        raise InputError(path, "top-level JSON value is not a list", "Put the records in a top-level list")
    yield from enumerate(doc, start=1)


def _iter_table(table: Any) -> Iterator[tuple[int, Any]]:
    yield from enumerate(table.to_pylist(), start=1)


def _iter_parquet(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # a compressed Parquet file is read into memory (Parquet compresses its own columns anyway)
        table = pq.read_table(path if compression_of(path) is None else pa.BufferReader(read_bytes(path)))
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(path, f"cannot be read as Parquet ({exc})", "Check the file is a complete Parquet file") from None
    yield from _iter_table(table)


def _iter_csv(path: Path) -> Iterator[tuple[int, Any]]:
    import csv
    import io

    text = _read_text(path)
    # newline="" lets the csv module see quoted newlines itself (str.splitlines would also split on
    # \u2028, \x0c and friends inside fields)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for i, row in enumerate(reader, start=1):
        yield i, {k: v for k, v in row.items() if k is not None}


def _iter_hf(path: Path) -> Iterator[tuple[int, Any]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise InputError(path, f"is a folder but not a dataset saved with save_to_disk ({exc})",
                         "Point --data at a file or at a datasets.save_to_disk folder") from None
    if isinstance(ds, datasets.DatasetDict):
        split = "train" if "train" in ds else next(iter(ds))
        log.info("%s holds splits %s; reading '%s'", path, list(ds), split)
        ds = ds[split]
    yield from enumerate(ds, start=1)


_READERS = {"jsonl": _iter_jsonl, "json": _iter_json, "parquet": _iter_parquet, "csv": _iter_csv, "hf": _iter_hf}


def _read_rows(path: Path, fmt: str, schema: str, on_bad_record: str, unit: str):
    """(good rows as (index, position, row, normalised), rejected rows, resolved schema)."""
    good: list[tuple[int, int, dict[str, Any], tuple]] = []
    rejected: list[RejectedRecord] = []
    resolved = None if schema == "auto" else schema
    for index, (pos, row) in enumerate(_READERS[fmt](path)):
        try:
            if isinstance(row, _BadRow):
                raise row
            if resolved is None:
                resolved = detect_schema(row)
                if resolved is None:
                    keys = ", ".join(sorted(row)) if isinstance(row, dict) else type(row).__name__
                    raise _BadRow(pos, f"no known schema fields (found: {keys}); expected instruction/input/output, "
                                       "conversations, messages or text", row)
            try:
                good.append((index, pos, row, normalise(row, resolved)))
            except SchemaMismatch as exc:
                raise _BadRow(pos, f"{exc} (schema: {resolved})", row) from None
        except _BadRow as bad:
            if on_bad_record == "error":
                raise InputError(path, bad.reason, _FIX_JSON, bad.pos, unit) from None
            rejected.append(RejectedRecord(index=index, line=bad.pos, reason=bad.reason, raw=bad.raw))
    return good, rejected, resolved


def _records_with_ids(path: Path, good: list, rejected: list[RejectedRecord], on_bad_record: str,
                      unit: str) -> tuple[list[Record], list[IdChange]]:
    """Records with their ids (data.ids); with skip, the records whose id is unusable join `rejected`."""
    ids, changes = assign_ids([row for _, _, row, _ in good], [pos for _, pos, _, _ in good],
                              [index for index, _, _, _ in good], unit)
    skip = on_bad_record == "skip"
    if skip:
        changes = [IdChange(c.index, c.line, c.original, None, c.reason) for c in changes]
    if changes:
        log.warning("%s: %s", path, describe(changes, unit, rejected=skip))
    dropped = {c.index: c.reason for c in changes} if skip else {}
    records = []
    for rid, (index, pos, row, n) in zip(ids, good, strict=True):
        if index in dropped:
            rejected.append(RejectedRecord(index=index, line=pos, reason=dropped[index], raw=row))
            continue
        records.append(Record(id=rid, index=index, line=pos, instruction=n[0], input=n[1], output=n[2],
                              messages=n[3], raw=row))
    rejected.sort(key=lambda r: r.index)
    return records, changes


def load_records(path: str | Path, schema: str = "auto", fmt: str = "auto",
                 on_bad_record: str = "error") -> LoadResult:
    """Read a pool file (optionally gzip / bzip2 / zstd compressed) into records.

    on_bad_record="error" stops at the first bad row with an InputError naming file and line;
    "skip" sets bad rows aside in `LoadResult.rejected` (write them with `write_rejects`). Records
    with a duplicate or unusable id get a new id (error) or are rejected (skip): see data.ids.
    """
    path = Path(path)
    if on_bad_record not in ("error", "skip"):
        raise ValueError("on_bad_record must be 'error' or 'skip'")
    if schema != "auto" and schema not in SCHEMAS:
        raise InputError(path, f"unknown schema '{schema}'", f"Use one of: auto, {', '.join(SCHEMAS)}")
    if not path.exists():
        raise InputError(path, "file not found", "Check the path given to --data")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in _READERS:
        raise InputError(path, f"unknown format '{fmt}'", f"Use one of: {', '.join(FORMATS)}")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(path, "file is empty (no records)", "Give a pool with at least one record")
    if fmt == "hf" and not path.is_dir():
        raise InputError(path, "is a file, but --format hf reads a datasets.save_to_disk folder",
                         "Point --data at that folder, or give the file's own --format")
    unit = "line" if fmt == "jsonl" else "record"
    good, rejected, resolved = _read_rows(path, fmt, schema, on_bad_record, unit)
    if not good and not rejected:
        raise InputError(path, "file holds no records", "Give a pool with at least one record")
    records, changes = _records_with_ids(path, good, rejected, on_bad_record, unit)
    if not records:
        raise InputError(path, f"all {len(rejected)} records were rejected (first: {unit} {rejected[0].line}: "
                               f"{rejected[0].reason})", "Check the file's schema (see --schema) and its ids")
    return LoadResult(path=str(path), format=fmt, schema=resolved or "auto", records=records,
                      rejected=rejected, unit=unit, id_changes=changes)
