"""The one row reader and record parser behind both the in-memory loader and the streamed shards.

`iter_jsonl` / `iter_parquet` yield `(index, position, row)` for a whole file or for a range of it
(a byte range of lines, a range of rows): `index` is the 0-based position among the file's rows
(blank lines are not rows), `position` the 1-based line (JSONL) or record number (Parquet). A JSONL
line that is not UTF-8 or not JSON comes as a `BadRow` with the reason. `RowParser` turns a row into
the normalised record fields or a `BadRow`; `parse_rows` applies it with the --on-bad-record rule.
daar.data.readers (whole file, in memory) and daar.scale.shards (one shard) both read through here,
so a record and a reject read the same, with the same words, either way.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterable, Iterator
from pathlib import Path
from typing import Any

from daar.data.compression import UTF8_BOM, check_not_utf16, compression_of, open_binary, read_bytes
from daar.data.records import RejectedRecord, SchemaMismatch, detect_schema, normalise
from daar.errors import InputError

FIX_BAD_RECORD = "Fix or remove that line, or rerun with --on-bad-record skip to set it aside in rejects.jsonl"

Row = tuple[int, int, Any]  # (index, position, row or BadRow)


class BadRow(Exception):
    """A row that cannot be a record: where it was, why, and what it held (for rejects.jsonl)."""

    def __init__(self, pos: int, reason: str, raw: Any = None):
        super().__init__(reason)
        self.pos, self.reason, self.raw = pos, reason, raw


def _not_one_per_line(path: Path, lineno: int, text: str) -> None:
    """A .jsonl whose first record line opens a JSON list or a pretty-printed object is a JSON document."""
    head = text.strip()
    if head.startswith("[") or head == "{":
        what = "a JSON list" if head.startswith("[") else "one JSON document spread over several lines"
        raise InputError(path, f"holds {what}, not one JSON record per line (JSONL)",
                         "Rerun with --format json, or convert it to one record per line", lineno)


def first_line_bytes(raw: bytes, path: Path) -> bytes:
    """Line 1 without its UTF-8 BOM; a UTF-16 file stops here with a message naming the encoding."""
    check_not_utf16(raw, path)
    return raw.removeprefix(UTF8_BOM)


def is_blank(raw: bytes) -> bool:
    """A line that holds no record: whitespace only, as str.strip sees it (a no-break space, \x1c, ... too)."""
    head = raw.lstrip()[:1]
    if not head:
        return True
    if head in b'{["':  # the usual record line: no need to decode it here
        return False
    return not raw.decode("utf-8", errors="replace").strip()


def parse_jsonl_line(raw: bytes, lineno: int) -> Any:
    """One JSONL line's value, or a BadRow saying why it has none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRow(lineno, f"not valid UTF-8 (byte {exc.start}); re-encode the file as UTF-8",
                      raw.decode("utf-8", errors="replace"))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return BadRow(lineno, f"malformed JSON ({exc.msg} at column {exc.colno})", text.rstrip("\n"))


def iter_jsonl(path: str | Path, start: int = 0, end: int | None = None, first_line: int = 1,
               first_index: int = 0, only: Container[int] | None = None) -> Iterator[Row]:
    """(index, line, row) of the non-blank lines in bytes [start, end) of a JSONL file.

    `first_line` / `first_index` are the line number and row index of the line at `start` (a shard
    knows them from its plan). Rows whose index is not in `only` are counted but never parsed. A
    compressed file is read from its start (a byte range of it is not seekable).
    """
    path = Path(path)
    with open_binary(path) as fh:
        if start:
            fh.seek(start)
        offset, lineno, index = start, first_line - 1, first_index
        for raw in fh:
            if end is not None and offset >= end:
                break
            offset += len(raw)
            lineno += 1
            if lineno == 1:
                raw = first_line_bytes(raw, path)
            if is_blank(raw):
                continue
            if index == 0:
                _not_one_per_line(path, lineno, raw.decode("utf-8", errors="replace"))
            if only is None or index in only:
                yield index, lineno, parse_jsonl_line(raw, lineno)
            index += 1


def _parquet_file(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # a compressed Parquet file is read into memory (Parquet compresses its own columns anyway)
        return pq.ParquetFile(path if compression_of(path) is None else pa.BufferReader(read_bytes(path)))
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(path, f"cannot be read as Parquet ({exc})", "Check the file is a complete Parquet file") from None


def parquet_rows(path: str | Path) -> int:
    """The number of rows of a Parquet file (from its footer, nothing else read)."""
    return _parquet_file(Path(path)).metadata.num_rows


def iter_parquet(path: str | Path, start: int = 0, end: int | None = None,
                 only: Container[int] | None = None) -> Iterator[Row]:
    """(index, record number, row) of rows [start, end) of a Parquet file, one row group in memory at a time."""
    path = Path(path)
    pf = _parquet_file(path)
    end = pf.metadata.num_rows if end is None else end
    first = 0
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if first + n > start and first < end:
            try:
                table = pf.read_row_group(g)
            except Exception as exc:  # a damaged row group
                raise InputError(path, f"cannot be read as Parquet ({exc})",
                                 "Check the file is a complete Parquet file") from None
            lo, hi = max(start - first, 0), min(end - first, n)
            for j, item in enumerate(table.slice(lo, hi - lo).to_pylist()):
                pos = first + lo + j
                if only is None or pos in only:
                    yield pos, pos + 1, item
        first += n


def no_schema_reason(row: Any) -> str:
    keys = ", ".join(sorted(row)) if isinstance(row, dict) else type(row).__name__
    return (f"no known schema fields (found: {keys}); expected instruction/input/output, "
            "conversations, messages or text")


class RowParser:
    """Rows -> normalised (instruction, input, output, messages), or a BadRow with the reason.

    With schema "auto" the schema is the one of the first row that has one (every row before it is
    rejected for having none). A shard, which does not see the rows before it, is given the pool's
    resolved schema and `schema_from`, the index of that first row.
    """

    def __init__(self, schema: str = "auto", schema_from: int = 0):
        self.schema: str | None = None if schema == "auto" else schema
        self.schema_from = schema_from

    def __call__(self, index: int, pos: int, row: Any) -> tuple:
        if isinstance(row, BadRow):
            raise row
        if self.schema is None:
            self.schema = detect_schema(row)
        if self.schema is None or index < self.schema_from:
            raise BadRow(pos, no_schema_reason(row), row)
        try:
            return normalise(row, self.schema)
        except SchemaMismatch as exc:
            raise BadRow(pos, f"{exc} (schema: {self.schema})", row) from None


def parse_rows(path: str | Path, rows: Iterable[Row], parser: RowParser, on_bad_record: str,
               unit: str) -> Iterator[tuple[int, int, Any, tuple] | RejectedRecord]:
    """(index, position, row, normalised) per good row, a RejectedRecord per bad one (in row order).

    on_bad_record="error" stops at the first bad row with an InputError naming the file and the line.
    """
    for index, pos, row in rows:
        try:
            yield index, pos, row, parser(index, pos, row)
        except BadRow as bad:
            if on_bad_record == "error":
                raise InputError(path, bad.reason, FIX_BAD_RECORD, bad.pos, unit) from None
            yield RejectedRecord(index=index, line=bad.pos, reason=bad.reason, raw=bad.raw)
