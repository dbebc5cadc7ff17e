"""Readers for JSONL, JSON, Parquet, CSV and `datasets.save_to_disk` folders.

Each reader yields (index, position, row), where position is the 1-based line number for JSONL and
the 1-based record number otherwise, so every error and every rejected record can say where it was.
JSONL and Parquet are read, and every row is parsed, by daar.data.rows, which the streamed shards
(daar.scale.shards) share.
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

from daar.data.compression import decode, read_bytes, strip_suffix
from daar.data.ids import IdChange, assign_ids, describe
from daar.data.records import SCHEMAS, Record, RejectedRecord
from daar.data.rows import Row, RowParser, iter_jsonl, iter_parquet, parse_rows
from daar.errors import InputError
from daar.io import atomic_write

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "json", "parquet", "csv", "hf")


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


def _read_text(path: Path) -> str:
    return decode(read_bytes(path), path)


def _numbered(rows: Iterator[Any]) -> Iterator[Row]:
    """(index, record number, row): the record number is the 1-based index."""
    for index, row in enumerate(rows):
        yield index, index + 1, row


def _iter_json(path: Path) -> Iterator[Row]:
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
    yield from _numbered(iter(doc))


def _iter_csv(path: Path) -> Iterator[Row]:
    import csv
    import io

    text = _read_text(path)
    # newline="" lets the csv module see quoted newlines itself (str.splitlines would also split on
    # \u2028, \x0c and friends inside fields)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    yield from _numbered({k: v for k, v in row.items() if k is not None} for row in reader)


def _iter_hf(path: Path) -> Iterator[Row]:
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
    yield from _numbered(iter(ds))


# each yields (index, position, row): the shared JSONL / Parquet readers (daar.data.rows) serve the
# streamed shards too, so both paths read a row the same way
_READERS = {"jsonl": iter_jsonl, "json": _iter_json, "parquet": iter_parquet, "csv": _iter_csv, "hf": _iter_hf}


def _read_rows(path: Path, fmt: str, schema: str, on_bad_record: str, unit: str):
    """(good rows as (index, position, row, normalised), rejected rows, resolved schema)."""
    good: list[tuple[int, int, dict[str, Any], tuple]] = []
    rejected: list[RejectedRecord] = []
    parser = RowParser(schema)
    for item in parse_rows(path, _READERS[fmt](path), parser, on_bad_record, unit):
        (rejected if isinstance(item, RejectedRecord) else good).append(item)
    return good, rejected, parser.schema


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
