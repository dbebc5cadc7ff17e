"""Readers for JSONL, JSON, Parquet, CSV and `datasets.save_to_disk` folders.

Each reader yields (position, row) pairs, where position is the 1-based line number for JSONL and
the 1-based record number otherwise, so every error and every rejected record can say where it was.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daar.data.records import (
    SCHEMAS,
    Record,
    RejectedRecord,
    SchemaMismatch,
    content_id,
    detect_schema,
    normalise,
)
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
    if path.is_dir():
        return "hf"
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
            ".pq": "parquet", ".csv": "csv"}.get(suffix, "jsonl")


class _BadRow(Exception):
    def __init__(self, pos: int, reason: str, raw: Any = None):
        self.pos, self.reason, self.raw = pos, reason, raw


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, _BadRow(lineno, f"not valid UTF-8 (byte {exc.start}); re-encode the file as UTF-8",
                                      raw.decode("utf-8", errors="replace"))
                continue
            if not text.strip():
                continue
            try:
                yield lineno, json.loads(text)
            except json.JSONDecodeError as exc:
                yield lineno, _BadRow(lineno, f"malformed JSON ({exc.msg} at column {exc.colno})", text.rstrip("\n"))


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(path, f"not valid UTF-8 (byte {exc.start})", "Re-encode the file as UTF-8", line) from None


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
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
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


def _assign_ids(rows: list[dict[str, Any]]) -> list[str]:
    """Use each row's own `id` when every row has one and they are unique; else a content hash.

    Exact duplicate rows get the same hash, so the second and later copies get a `-dupN` suffix;
    the ids stay stable because rows are visited in file order.
    """
    own = [r.get("id") for r in rows]
    if own and all(isinstance(v, (str, int)) and str(v) != "" for v in own):
        as_str = [str(v) for v in own]
        if len(set(as_str)) == len(as_str):
            return as_str
        log.info("the 'id' field is not unique; using content hashes as record ids")
    seen: Counter[str] = Counter()
    ids = []
    for r in rows:
        h = content_id(r)
        seen[h] += 1
        ids.append(h if seen[h] == 1 else f"{h}-dup{seen[h] - 1}")
    return ids


def load_records(path: str | Path, schema: str = "auto", fmt: str = "auto",
                 on_bad_record: str = "error") -> LoadResult:
    """Read a pool file into records.

    on_bad_record="error" stops at the first bad row with an InputError naming file and line;
    "skip" sets bad rows aside in `LoadResult.rejected` (write them with `write_rejects`).
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
    unit = "line" if fmt == "jsonl" else "record"

    good: list[tuple[int, int, dict[str, Any], tuple]] = []  # (index, position, row, normalised)
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
    if not good and not rejected:
        raise InputError(path, "file holds no records", "Give a pool with at least one record")
    if not good:
        raise InputError(path, f"all {len(rejected)} records were rejected (first: {unit} {rejected[0].line}: "
                               f"{rejected[0].reason})", "Check the file's schema; see --schema")
    ids = _assign_ids([row for _, _, row, _ in good])
    records = [Record(id=rid, index=index, line=pos, instruction=n[0], input=n[1], output=n[2], messages=n[3],
                      raw=row) for rid, (index, pos, row, n) in zip(ids, good, strict=True)]
    return LoadResult(path=str(path), format=fmt, schema=resolved or "auto", records=records,
                      rejected=rejected, unit=unit)
