"""The pool as shards: contiguous runs of records that one worker reads, scores and commits alone.

Planning a JSONL pool is one pass over its bytes (no JSON parsing): every `shard_size` non-blank
lines start a new shard at that byte offset, and each shard is keyed by a hash of its own bytes, so
editing one line redoes that shard only. A Parquet pool is cut by rows and keyed by the file's hash.

Reading a shard gives the same records the in-memory reader (daar.data.readers) gives for those
rows, because both read and parse through daar.data.rows: the same 0-based `index` among the file's
rows, the same 1-based line (record number for Parquet), the same schema checks and reject reasons.
Ids follow the same policy (daar.data.ids) too: a shard cannot see the rest of the pool, so the id
pass (daar.scale.ids) decides, for the whole pool, which records get a new id or are rejected, and
puts those decisions in each shard's spec (`ids`), which `read_shard` applies. `index` is the key
every streamed artifact uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from daar.data.compression import compression_of
from daar.data.ids import _problem as id_problem
from daar.data.readers import detect_format
from daar.data.records import Record, RejectedRecord, content_id, detect_schema
from daar.data.rows import (
    BadRow,
    Row,
    RowParser,
    first_line_bytes,
    is_blank,
    iter_jsonl,
    iter_parquet,
    parquet_rows,
    parse_rows,
)
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
    key: str  # hash of the shard's content and position (and `ids`): a done marker is valid only for this key
    # the id pass's decisions for this shard's records: (index, new id, reason); new id None = rejected
    ids: tuple[tuple[int, str | None, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardSpec:
        return cls(**{**d, "ids": tuple(tuple(x) for x in d.get("ids", ()))})  # JSON gives lists

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
    if fmt not in STREAM_FORMATS:
        raise InputError(path, f"format '{fmt}' cannot be streamed",
                         "Streaming (--stream / --backend ray) reads .jsonl and .parquet files; convert the pool "
                         "(e.g. with pandas or datasets) or drop --stream to load it in memory")
    kind = compression_of(path)
    if kind is not None:  # shards start at byte offsets / row groups, which a compressed stream has not
        raise InputError(path, f"is {kind}-compressed, and a compressed pool cannot be cut into shards",
                         "Decompress it first (e.g. gunzip -k / zstd -d / bunzip2 -k), or drop --stream to load "
                         "it in memory")
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
            if not is_blank(first_line_bytes(raw, path) if lineno == 1 else raw):  # the reader's own rule
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
    rows = parquet_rows(path)
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
            found = detect_schema(row) if not isinstance(row, BadRow) else None
            if found:
                return found, index
    return "auto", shards[-1].first_index + shards[-1].n_rows


def iter_rows(spec: ShardSpec, only: Container[int] | None = None) -> Iterator[Row]:
    """(index, line, row) for every row of the shard (or only the indices in `only`); unparsable rows
    come as `BadRow`."""
    if spec.format == "jsonl":
        return iter_jsonl(spec.path, spec.start, spec.end, spec.first_line, spec.first_index, only)
    return iter_parquet(spec.path, spec.start, spec.end, only)


def parsed_rows(spec: ShardSpec, schema: str, on_bad_record: str = "error",
                schema_from: int = 0) -> Iterator[tuple[int, int, Any, tuple] | RejectedRecord]:
    """The shard's rows through the shared parser: (index, line, row, normalised) or a RejectedRecord."""
    unit = "line" if spec.format == "jsonl" else "record"
    return parse_rows(spec.path, iter_rows(spec), RowParser(schema, schema_from), on_bad_record, unit)


def record_id(row: dict[str, Any]) -> str:
    """A record's id when the id pass left it alone: its own id when usable (data.ids' rule), else its content id."""
    return str(row["id"]) if "id" in row and id_problem(row["id"]) is None else content_id(row)


def read_shard(spec: ShardSpec, schema: str, on_bad_record: str = "error",
               schema_from: int = 0) -> tuple[list[Record], list[RejectedRecord]]:
    """The shard's records and rejects, exactly as load_records words them for these rows.

    The ids are the id pass's (spec.ids) where it decided one, else the record's own; a record the id
    pass rejected (--on-bad-record skip) is a reject with its reason.
    """
    records: list[Record] = []
    rejected: list[RejectedRecord] = []
    decided = {index: (new, reason) for index, new, reason in spec.ids}
    for item in parsed_rows(spec, schema, on_bad_record, schema_from):
        if isinstance(item, RejectedRecord):
            rejected.append(item)
            continue
        index, line, row, n = item
        new, reason = decided.get(index, ("", ""))
        if new is None:
            rejected.append(RejectedRecord(index=index, line=line, reason=reason, raw=row))
            continue
        records.append(Record(id=new or record_id(row), index=index, line=line, instruction=n[0], input=n[1],
                              output=n[2], messages=n[3], raw=row))
    return records, rejected
