"""The shards read through the in-memory loader's own reader (daar.data.rows): a BOM, blank lines of any
whitespace, bad lines and a JSON list read the same either way; a compressed pool says how to stream it."""

from __future__ import annotations

import gzip
import json

import pytest

from daar.data.readers import load_records
from daar.errors import InputError
from daar.scale.ids import assign_stream_ids
from daar.scale.shards import plan_shards, read_shard

ROWS = [{"id": f"r{i}", "instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(9)]


def _lines() -> list[bytes]:
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in ROWS]
    lines[0] = b"\xef\xbb\xbf" + lines[0]  # a UTF-8 BOM
    lines.insert(3, "\u00a0 ".encode())  # a line of a no-break space: blank, as str.strip sees it
    lines.insert(5, b"\x1c")  # str.strip strips the ASCII separators too
    lines.insert(6, b'{"instruction": "broken')
    lines.insert(8, b"\xff\xfe not UTF-8")
    return lines


@pytest.mark.parametrize("shard_size", [1, 4, 100])
def test_bom_blank_and_bad_lines_read_as_in_memory(tmp_path, shard_size):
    path = tmp_path / "pool.jsonl"
    path.write_bytes(b"\n".join(_lines()) + b"\n")
    ref = load_records(path, on_bad_record="skip")
    ids = assign_stream_ids(plan_shards(path, shard_size=shard_size), "skip")
    records, rejected = [], []
    for spec in ids.plan.shards:
        r, j = read_shard(spec, ids.plan.schema, "skip", ids.plan.schema_from)
        records += r
        rejected += j
    assert ids.plan.n_rows == ref.n_read == 11
    assert [(r.id, r.index, r.line, r.raw) for r in records] == [(r.id, r.index, r.line, r.raw) for r in ref.records]
    assert [(r.index, r.line, r.reason) for r in rejected] == [(r.index, r.line, r.reason) for r in ref.rejected]
    assert [r.line for r in rejected] == [7, 9] and records[0].id == "r0"


def test_a_json_list_in_a_jsonl_pool_says_use_format_json_when_streamed_too(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_text(json.dumps(ROWS, indent=1))
    for read in (lambda: load_records(path), lambda: assign_stream_ids(plan_shards(path, shard_size=2))):
        with pytest.raises(InputError, match=r"pool.jsonl, line 1: holds a JSON list.*--format json"):
            read()


def test_a_compressed_pool_cannot_be_sharded_and_says_what_to_do(tmp_path):
    path = tmp_path / "pool.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(json.dumps(r).encode() for r in ROWS)))
    assert len(load_records(path).records) == 9  # in memory it reads
    with pytest.raises(InputError, match=r"is gzip-compressed.*Decompress it first.*drop --stream"):
        plan_shards(path)
