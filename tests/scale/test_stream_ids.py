"""Streamed runs apply the in-memory id policy (daar.data.ids): the same ids, the same id_changes and,
with --on-bad-record skip, the same rejects, however the pool is cut into shards."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.selection.conftest import pool_rows

from daar.data.readers import load_records
from daar.errors import InputError
from daar.runs.select import DaaR
from daar.scale.ids import assign_stream_ids
from daar.scale.shards import ShardSpec, plan_shards, read_shard


def _rows_with_bad_ids() -> list[dict]:
    rows = pool_rows(10)  # 40 rows with ids "<domain>-<i>"
    rows[5]["id"] = rows[2]["id"]  # a duplicate: the later copy changes
    rows[9]["id"] = None  # null: the content id
    del rows[12]["id"]  # missing among rows that have ids
    rows[20]["id"] = 3.5
    rows[23]["id"] = "  "
    rows[27]["id"] = True
    rows[30]["id"] = rows[2]["id"] + "-dup1"  # a kept id that the duplicate's first suffix would take
    rows[33]["id"] = rows[2]["id"]  # a second duplicate, shards away from the first copy
    rows[36]["id"] = 7  # an integer id is usable
    return rows


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _streamed(path, shard_size, on_bad_record):
    ids = assign_stream_ids(plan_shards(path, shard_size=shard_size), on_bad_record)
    records, rejected = [], []
    for spec, count in zip(ids.plan.shards, ids.counts, strict=True):
        r, j = read_shard(ShardSpec.from_dict(json.loads(json.dumps(spec.to_dict()))),  # as it travels to Ray
                          ids.plan.schema, on_bad_record, ids.plan.schema_from)
        assert len(r) == count
        records += r
        rejected += j
    return ids, records, rejected


@pytest.mark.parametrize("on_bad_record", ["error", "skip"])
@pytest.mark.parametrize("shard_size", [1, 7, 1000])
def test_streamed_ids_are_the_in_memory_ids(tmp_path, shard_size, on_bad_record, caplog):
    path = _write(tmp_path / "pool.jsonl", _rows_with_bad_ids())
    ref = load_records(path, on_bad_record=on_bad_record)
    with caplog.at_level(logging.WARNING, logger="daar.scale.ids"):
        ids, records, rejected = _streamed(path, shard_size, on_bad_record)
    assert [(r.id, r.index, r.line) for r in records] == [(r.id, r.index, r.line) for r in ref.records]
    assert [(r.index, r.line, r.reason, r.raw) for r in rejected] == \
           [(r.index, r.line, r.reason, r.raw) for r in ref.rejected]
    assert [c.as_dict() for c in ids.changes] == [c.as_dict() for c in ref.id_changes]
    assert len(ids.changes) == 7 and len({r.id for r in records}) == len(records)
    if on_bad_record == "error":
        assert {c.line: c.new for c in ids.changes}[6] == "common_sense-002-dup2"  # -dup1 is someone's own id
    warned = [r.getMessage() for r in caplog.records if r.name == "daar.scale.ids" and r.levelno == logging.WARNING]
    assert len(warned) == 1 and "7 record(s) have a duplicate or unusable id (lines 6, 10, 13, 21, 24, 28, 34)" \
        in warned[0]


_ID = st.one_of(st.none(), st.integers(-2, 2), st.sampled_from(["a", "b", "", " ", "a-dup1", "a-dup2", "<no id>"]),
                st.floats(allow_nan=False, width=16), st.lists(st.integers(0, 1), max_size=1), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(_ID, min_size=1, max_size=14), shard_size=st.integers(1, 5), skip=st.booleans())
def test_any_ids_stream_as_they_load_in_memory(ids, shard_size, skip):
    # few distinct instructions, so rows with the same unusable id are exact copies (one content id)
    rows = [{"instruction": f"q{j % 4}", **({} if v == "<no id>" else {"id": v})} for j, v in enumerate(ids)]
    mode = "skip" if skip else "error"
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / "pool.jsonl", rows)
        try:
            ref = load_records(path, on_bad_record=mode)
        except InputError:  # every record rejected for its id (skip): the streamed run stops later, on the counts
            ref = None
        got, records, rejected = _streamed(path, shard_size, mode)
    if ref is None:
        assert records == [] and len(rejected) == len(rows)
        return
    assert [(r.id, r.index) for r in records] == [(r.id, r.index) for r in ref.records]
    assert [(r.index, r.reason) for r in rejected] == [(r.index, r.reason) for r in ref.rejected]
    assert [c.as_dict() for c in got.changes] == [c.as_dict() for c in ref.id_changes]


def test_an_id_less_pool_gets_content_ids_with_suffixes_for_exact_copies(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "id"} for r in pool_rows(5)]
    rows[11] = rows[3]  # an exact copy: the same content id, so -dup1
    path = _write(tmp_path / "pool.jsonl", rows)
    ids, records, _ = _streamed(path, 3, "error")
    ref = load_records(path)
    assert [r.id for r in records] == [r.id for r in ref.records]
    assert records[11].id == records[3].id + "-dup1" and ids.changes == ()


def test_parquet_pools_get_the_same_ids(tmp_path):
    rows = _rows_with_bad_ids()
    for r in rows:  # one column type for Parquet: text ids, with a null and a missing one
        r["id"] = None if r.get("id") is None else str(r["id"])
    path = tmp_path / "pool.parquet"
    pd.DataFrame(rows).to_parquet(path, row_group_size=6)
    ids, records, _ = _streamed(path, 8, "error")
    ref = load_records(path)
    assert [r.id for r in records] == [r.id for r in ref.records]
    assert [c.as_dict() for c in ids.changes] == [c.as_dict() for c in ref.id_changes]


def test_a_shard_whose_ids_change_elsewhere_is_redone(tmp_path):
    """The last shard's bytes stay the same, but its record stops being a duplicate when the first copy
    (in shard 0) is renamed: its key changes, so a resumed run scores it again under its own id."""
    rows = pool_rows(3)
    rows[10]["id"] = rows[1]["id"]
    path = _write(tmp_path / "pool.jsonl", rows)
    before = assign_stream_ids(plan_shards(path, shard_size=2)).plan.shards
    rows[1]["id"] = "renamed"
    _write(path, rows)
    after = assign_stream_ids(plan_shards(path, shard_size=2)).plan.shards
    assert [a.key == b.key for a, b in zip(before, after, strict=True)] == [False, True, True, True, True, False]
    assert before[5].ids == ((10, f"{rows[10]['id']}-dup1", f"duplicate id {rows[10]['id']!r} (first at line 2)"),)
    assert after[5].ids == ()


def test_stream_and_memory_give_the_same_ids_end_to_end(tmp_path, scale_kwargs):
    """A pool with a duplicate id and a null id: `--stream` writes the ids and id_changes in memory writes."""
    rows = pool_rows(10)
    rows[17]["id"] = rows[4]["id"]
    rows[25]["id"] = None
    path = _write(tmp_path / "pool.jsonl", rows)
    kw = {**scale_kwargs, "method": "random", "budget": "12", "shard_size": 9, "on_bad_record": "error"}
    mem = DaaR(**kw).select(path, tmp_path / "mem")
    stream = DaaR(**kw, stream=True).select(path, tmp_path / "stream")
    assert stream["scale"]["shards"] == 5
    assert stream["id_changes"] == mem["id_changes"] and [c["line"] for c in mem["id_changes"]] == [18, 26]
    ids = {d: pd.read_parquet(tmp_path / d / "scores.parquet")["id"].tolist() for d in ("mem", "stream")}
    assert ids["mem"] == ids["stream"] and len(set(ids["mem"])) == 40
    assert ids["stream"][17] == rows[4]["id"] + "-dup1"
    assert (tmp_path / "mem" / "selected.jsonl").read_text() == (tmp_path / "stream" / "selected.jsonl").read_text()
