"""The pool as shards: contiguous runs of records that one worker reads, scores and commits alone.

Planning a JSONL pool is one pass over its bytes (no JSON parsing): every `shard_size` non-blank
lines start a new shard at that byte offset, and each shard is keyed by a hash of its own bytes, so
editing one line redoes that shard only. A Parquet pool is cut by rows and keyed by the file's hash.

Reading a shard gives the same records the in-memory reader (daar.data.readers) gives for those
rows: the same 0-based `index` among the file's rows, the same 1-based line (record number for
Parquet), the same schema checks and reject reasons. One difference: a record's id is its own `id`
field when it has one, else its content hash; the in-memory reader also checks ids for uniqueness
across the whole pool (and adds -dupN suffixes), which a single shard cannot know. `index` is the
key every streamed artifact uses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Container, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from daar.data.readers import _FIX_JSON, detect_format
from daar.data.records import Record, RejectedRecord, SchemaMismatch, content_id, detect_schema, normalise
from daar.errors import InputError
from daar.io import file_hash, fingerprint

STREAM_FORMATS = ("jsonl", "parquet")


@dataclass(frozen=True)
class ShardSpec:
    """One shard: where its rows are and what they are (key = content hash + position)."""

    shard: int
    path: str
    format: str  # jsonl | parquet
    start: int  # jsonl: byte offset; parquet: first row
    end: int  # jsonl: byte offset (exclusive); parquet: row (exclusive)
    first_index: int  # 0-based index among the file's rows of the shard's first row
    first_line: int  # 1-based line (jsonl) or record number (parquet) of the shard's first row
    n_rows: int  # rows in the shard (records and rejects)
    key: str  # hash of the shard's content and position: a done marker is valid only for this key

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardSpec:
        return cls(**d)

    @property
    def name(self) -> str:
        return f"shard-{self.shard:06d}"


@dataclass(frozen=True)
class ShardPlan:
    path: str
    format: str
    schema: str  # resolved once for the whole pool, as the in-memory reader does
    schema_from: int  # index of the first row with a detectable schema (rows before it have none)
    shards: tuple[ShardSpec, ...]

    @property
    def n_rows(self) -> int:
        """Rows of the pool (records and rejects): an upper bound of its usable records."""
        return sum(s.n_rows for s in self.shards)

    @property
    def fingerprint(self) -> str:
        return fingerprint("pool-shards", self.schema, [s.key for s in self.shards])


def _key(*parts: Any) -> str:
    return fingerprint("shard", *parts, length=20)


def stream_format(path: Path, fmt: str) -> str:
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in STREAM_FORMATS or str(path).endswith(".gz"):
        raise InputError(path, f"format '{fmt}' cannot be streamed",
                         "Streaming (--stream / --backend ray) reads .jsonl and .parquet files; convert the pool "
                         "(e.g. with pandas or datasets) or drop --stream to load it in memory")
    return fmt


def _plan_jsonl(path: Path, shard_size: int) -> list[ShardSpec]:
    shards: list[ShardSpec] = []
    offset = start = first_line = n = index = 0
    digest = hashlib.sha1()

    def close(end: int) -> None:
        shards.append(ShardSpec(len(shards), str(path), "jsonl", start, end, index - n, first_line, n,
                                _key(digest.hexdigest(), index - n, first_line)))

    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                if n == 0:
                    start, first_line, digest = offset, lineno, hashlib.sha1()
                digest.update(raw)
                n += 1
                index += 1
                if n == shard_size:
                    close(offset + len(raw))
                    n = 0
            offset += len(raw)
    if n:
        close(offset)
    return shards


def _plan_parquet(path: Path, shard_size: int) -> list[ShardSpec]:
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(path, f"cannot be read as Parquet ({exc})", "Check the file is a complete Parquet file") from None
    whole = file_hash(path)
    return [ShardSpec(i, str(path), "parquet", a, min(a + shard_size, rows), a, a + 1, min(shard_size, rows - a),
                      _key(whole, a, shard_size)) for i, a in enumerate(range(0, rows, shard_size))]


def plan_shards(path: str | Path, fmt: str = "auto", shard_size: int = 10000, schema: str = "auto") -> ShardPlan:
    """Cut the pool into shards of `shard_size` rows (one cheap pass; no record is kept)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found", "Check the path given to --data")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(path, "file is empty (no records)", "Give a pool with at least one record")
    fmt = stream_format(path, fmt)
    shards = _plan_jsonl(path, shard_size) if fmt == "jsonl" else _plan_parquet(path, shard_size)
    if not shards:
        raise InputError(path, "file holds no records", "Give a pool with at least one record")
    return ShardPlan(str(path), fmt, *_resolve_schema(shards, schema), tuple(shards))


def _resolve_schema(shards: list[ShardSpec], schema: str) -> tuple[str, int]:
    """The schema of the first row that has one, and that row's index (load_records resolves it so)."""
    if schema != "auto":
        return schema, 0
    for spec in shards:
        for index, _, row in iter_rows(spec):
            found = detect_schema(row) if not isinstance(row, _Bad) else None
            if found:
                return found, index
    return "auto", shards[-1].first_index + shards[-1].n_rows


class _Bad:
    """A row that is not even JSON (reason as the in-memory reader words it)."""

    def __init__(self, reason: str, raw: Any):
        self.reason, self.raw = reason, raw


def _iter_jsonl(spec: ShardSpec, only: Container[int] | None = None) -> Iterator[tuple[int, int, Any]]:
    with open(spec.path, "rb") as fh:
        fh.seek(spec.start)
        lineno, index = spec.first_line - 1, spec.first_index
        while fh.tell() < spec.end:
            raw = fh.readline()
            lineno += 1
            if not raw.strip():
                continue
            if only is not None and index not in only:  # not wanted: counted, never parsed
                index += 1
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                row: Any = _Bad(f"not valid UTF-8 (byte {exc.start}); re-encode the file as UTF-8",
                                raw.decode("utf-8", errors="replace"))
            else:
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    row = _Bad(f"malformed JSON ({exc.msg} at column {exc.colno})", text.rstrip("\n"))
            yield index, lineno, row
            index += 1


def _iter_parquet(spec: ShardSpec, only: Container[int] | None = None) -> Iterator[tuple[int, int, Any]]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(spec.path)
    row = 0
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if row + n > spec.start and row < spec.end:
            table = pf.read_row_group(g)
            lo, hi = max(spec.start - row, 0), min(spec.end - row, n)
            for j, item in enumerate(table.slice(lo, hi - lo).to_pylist()):
                pos = row + lo + j
                if only is None or pos in only:
                    yield pos, pos + 1, item
        row += n


def iter_rows(spec: ShardSpec, only: Container[int] | None = None) -> Iterator[tuple[int, int, Any]]:
    """(index, line, row) for every row of the shard (or only the indices in `only`); unparsable rows
    come as `_Bad`."""
    return _iter_jsonl(spec, only) if spec.format == "jsonl" else _iter_parquet(spec, only)


def record_id(row: dict[str, Any]) -> str:
    own = row.get("id")
    return str(own) if isinstance(own, str | int) and str(own) != "" else content_id(row)


def read_shard(spec: ShardSpec, schema: str, on_bad_record: str = "error",
               schema_from: int = 0) -> tuple[list[Record], list[RejectedRecord]]:
    """The shard's records and rejects, exactly as load_records words them for these rows."""
    records: list[Record] = []
    rejected: list[RejectedRecord] = []
    unit = "line" if spec.format == "jsonl" else "record"
    for index, line, row in iter_rows(spec):
        reason, raw = None, row
        if isinstance(row, _Bad):
            reason, raw = row.reason, row.raw
        elif schema == "auto" or index < schema_from:  # before the first row with a schema: none has one
            keys = ", ".join(sorted(row)) if isinstance(row, dict) else type(row).__name__
            reason = (f"no known schema fields (found: {keys}); expected instruction/input/output, "
                      "conversations, messages or text")
        else:
            try:
                n = normalise(row, schema)
            except SchemaMismatch as exc:
                reason = f"{exc} (schema: {schema})"
            else:
                records.append(Record(id=record_id(row), index=index, line=line, instruction=n[0], input=n[1],
                                      output=n[2], messages=n[3], raw=row))
        if reason is not None:
            if on_bad_record == "error":
                raise InputError(Path(spec.path), reason, _FIX_JSON, line, unit)
            rejected.append(RejectedRecord(index=index, line=line, reason=reason, raw=raw))
    return records, rejected
