"""Reading the pool in shards gives exactly the in-memory reader's records and rejects."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.scale.conftest import write_pool

from daar.data.readers import load_records
from daar.errors import InputError
from daar.scale.shards import plan_shards, read_shard


def _streamed(path, shard_size, on_bad_record="skip"):
    plan = plan_shards(path, shard_size=shard_size)
    records, rejected = [], []
    for spec in plan.shards:
        r, j = read_shard(spec, plan.schema, on_bad_record, plan.schema_from)
        records += r
        rejected += j
    return plan, records, rejected


@pytest.mark.parametrize("shard_size", [1, 97, 5000])
def test_shards_read_the_same_records_and_rejects_as_load_records(tmp_path, shard_size):
    path = write_pool(tmp_path / "pool.jsonl", per_domain=60)
    plan, records, rejected = _streamed(path, shard_size)
    ref = load_records(path, on_bad_record="skip")
    assert plan.n_rows == ref.n_read == len(records) + len(rejected)
    assert [(r.id, r.index, r.line, r.instruction, r.input, r.output, r.raw) for r in records] == \
           [(r.id, r.index, r.line, r.instruction, r.input, r.output, r.raw) for r in ref.records]
    assert [(r.index, r.line, r.reason, r.raw) for r in rejected] == \
           [(r.index, r.line, r.reason, r.raw) for r in ref.rejected]
    assert len(rejected) == 2 and len(plan.shards) == -(-plan.n_rows // shard_size)


def test_parquet_shards_match_load_records(tmp_path):
    rows = [json.loads(line) for line in write_pool(tmp_path / "p.jsonl", 30, bad=False).read_text().splitlines()]
    path = tmp_path / "pool.parquet"
    pd.DataFrame(rows).to_parquet(path, row_group_size=17)
    plan, records, _ = _streamed(path, 25)
    ref = load_records(path)
    assert [(r.id, r.index, r.line, r.raw) for r in records] == [(r.id, r.index, r.line, r.raw) for r in ref.records]


def test_a_bad_line_names_its_file_and_line(tmp_path):
    path = write_pool(tmp_path / "pool.jsonl", per_domain=10)
    plan = plan_shards(path, shard_size=4)
    spec = next(s for s in plan.shards if s.first_line <= 8 < s.first_line + s.n_rows)
    with pytest.raises(InputError, match=r"pool.jsonl, line 8: malformed JSON"):
        read_shard(spec, plan.schema, "error", plan.schema_from)


def test_editing_one_line_changes_only_its_shard_key(tmp_path):
    path = write_pool(tmp_path / "pool.jsonl", per_domain=25, bad=False)
    before = plan_shards(path, shard_size=10).shards
    lines = path.read_text().splitlines()
    lines[42] = lines[42].replace("variant", "VARIANT, longer now")
    path.write_text("\n".join(lines) + "\n")
    after = plan_shards(path, shard_size=10).shards
    assert [a.key == b.key for a, b in zip(before, after, strict=True)] == [i != 4 for i in range(10)]


def test_formats_that_cannot_stream_say_what_to_do(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("instruction,output\na,b\n")
    with pytest.raises(InputError, match="cannot be streamed.*convert the pool"):
        plan_shards(path)
