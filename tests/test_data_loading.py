"""Reading pools: every format and schema, stable record ids, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daar.data import load_records
from daar.data.records import content_id
from daar.errors import InputError
from data_helpers import ALPACA_ROWS, write_jsonl

# -- formats ------------------------------------------------------------------------------------------


def _write_json(path: Path, rows: list) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def _write_parquet(path: Path, rows: list) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_parquet(path)
    return path


def _write_csv(path: Path, rows: list) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _write_hf(path: Path, rows: list) -> Path:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


WRITERS = {
    "jsonl": ("pool.jsonl", write_jsonl),
    "json": ("pool.json", _write_json),
    "parquet": ("pool.parquet", _write_parquet),
    "csv": ("pool.csv", _write_csv),
    "hf": ("pool_hf", _write_hf),
}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_every_format_loads_alpaca(tmp_path, fmt):
    name, writer = WRITERS[fmt]
    path = writer(tmp_path / name, ALPACA_ROWS)
    res = load_records(path)
    assert res.format == fmt
    assert res.schema == "alpaca"
    assert res.unit == ("line" if fmt == "jsonl" else "record")
    assert len(res.records) == len(ALPACA_ROWS) and res.rejected == []
    for rec, row in zip(res.records, ALPACA_ROWS, strict=True):
        assert (rec.instruction, rec.input, rec.output) == (row["instruction"], row["input"], row["output"])
    assert [r.index for r in res.records] == list(range(len(ALPACA_ROWS)))
    # the content-hash ids do not depend on the container format
    assert [r.id for r in res.records] == [content_id(row) for row in ALPACA_ROWS]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "csv", "hf"])
def test_explicit_format_overrides_suffix(tmp_path, fmt):
    name, writer = WRITERS[fmt]
    path = writer(tmp_path / ("data.bin" if fmt != "hf" else "data_dir"), ALPACA_ROWS[:2])
    res = load_records(path, fmt=fmt)
    assert res.format == fmt and [r.instruction for r in res.records] == [r["instruction"] for r in ALPACA_ROWS[:2]]


def test_json_object_wrapping_one_list(tmp_path):
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"version": 1, "data": ALPACA_ROWS[:3]}))
    assert [r.output for r in load_records(path).records] == [r["output"] for r in ALPACA_ROWS[:3]]


def test_jsonl_skips_blank_lines_and_counts_lines(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [ALPACA_ROWS[0], "", ALPACA_ROWS[1]])
    res = load_records(path)
    assert [r.line for r in res.records] == [1, 3]


def test_csv_keeps_multiline_and_unicode_separators_inside_fields(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('instruction,input,output\n"two\nlines",,a\u2028b\nplain,x,y\n', encoding="utf-8")
    recs = load_records(path).records
    assert [(r.instruction, r.input, r.output) for r in recs] == [("two\nlines", "", "a\u2028b"), ("plain", "x", "y")]


# -- schemas ------------------------------------------------------------------------------------------

SHAREGPT = [{"conversations": [{"from": "system", "value": "Be brief."},
                               {"from": "human", "value": "What is 2+2?"},
                               {"from": "gpt", "value": "4"}]},
            {"conversations": [{"from": "human", "value": "Name a prime."}, {"from": "gpt", "value": "7"}]}]
MESSAGES = [{"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}]},
            {"messages": [{"role": "user", "content": "First"}, {"role": "assistant", "content": "A"},
                          {"role": "user", "content": "Second"}, {"role": "assistant", "content": "B"}]}]
TEXT = [{"text": "A plain document."}, {"text": "Another one."}]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "hf"])
def test_sharegpt_autodetected_in_every_nested_format(tmp_path, fmt):
    name, writer = WRITERS[fmt]
    res = load_records(writer(tmp_path / name, SHAREGPT))
    assert res.schema == "sharegpt"
    first = res.records[0]
    assert first.instruction == "Be brief.\nWhat is 2+2?" and first.output == "4"
    assert [m["role"] for m in first.messages] == ["system", "user", "assistant"]
    assert res.records[1].messages[0] == {"role": "user", "content": "Name a prime."}


def test_messages_schema(tmp_path):
    res = load_records(write_jsonl(tmp_path / "m.jsonl", MESSAGES))
    assert res.schema == "messages"
    assert (res.records[0].instruction, res.records[0].output) == ("Say hi.", "Hi!")
    # multi-turn: everything before the final assistant turn is the prompt
    assert (res.records[1].instruction, res.records[1].output) == ("First\nA\nSecond", "B")
    assert len(res.records[1].messages) == 4


def test_text_schema(tmp_path):
    res = load_records(write_jsonl(tmp_path / "t.jsonl", TEXT))
    assert res.schema == "text"
    assert [(r.instruction, r.input, r.output) for r in res.records] == [("A plain document.", "", ""),
                                                                          ("Another one.", "", "")]


def test_schema_override(tmp_path):
    rows = [{"instruction": "ins", "input": "", "output": "out", "text": "the text field"}]
    path = write_jsonl(tmp_path / "both.jsonl", rows)
    assert load_records(path).schema == "alpaca"  # auto prefers the instruction fields
    res = load_records(path, schema="text")
    assert res.schema == "text" and res.records[0].instruction == "the text field"


def test_schema_override_that_does_not_fit_names_the_line(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", TEXT)
    with pytest.raises(InputError, match=r"t\.jsonl, line 1: no 'instruction' field"):
        load_records(path, schema="alpaca")


def test_unknown_schema_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown schema 'nope'"):
        load_records(write_jsonl(tmp_path / "t.jsonl", TEXT), schema="nope")


# -- ids ----------------------------------------------------------------------------------------------


def test_own_unique_ids_are_used(tmp_path):
    rows = [dict(r, id=f"rec-{i}") for i, r in enumerate(ALPACA_ROWS)]
    res = load_records(write_jsonl(tmp_path / "p.jsonl", rows))
    assert [r.id for r in res.records] == [f"rec-{i}" for i in range(len(rows))]


def test_integer_ids_are_used_as_text(tmp_path):
    rows = [dict(r, id=100 + i) for i, r in enumerate(ALPACA_ROWS)]
    assert [r.id for r in load_records(write_jsonl(tmp_path / "p.jsonl", rows)).records] == [
        str(100 + i) for i in range(len(rows))]


def test_a_repeated_id_changes_only_its_later_copies(tmp_path):
    # issue 11: one duplicate used to replace every record's id with a content hash
    rows = [dict(r, id="same") for r in ALPACA_ROWS]
    res = load_records(write_jsonl(tmp_path / "p.jsonl", rows))
    ids = [r.id for r in res.records]
    assert ids == ["same"] + [f"same-dup{i}" for i in range(1, len(rows))]
    assert [(c.line, c.original, c.new) for c in res.id_changes] == [
        (i + 1, "same", f"same-dup{i}") for i in range(1, len(rows))]


def test_content_ids_are_stable_across_loads(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", ALPACA_ROWS)
    first = [r.id for r in load_records(path).records]
    second = [r.id for r in load_records(path).records]
    assert first == second and len(set(first)) == len(first)
    # a copy of the file elsewhere gives the same ids (they depend on content only)
    other = write_jsonl(tmp_path / "copy.jsonl", ALPACA_ROWS)
    assert [r.id for r in load_records(other).records] == first


def test_duplicate_rows_get_distinct_ids(tmp_path):
    rows = [ALPACA_ROWS[0], ALPACA_ROWS[1], ALPACA_ROWS[0], ALPACA_ROWS[0]]
    ids = [r.id for r in load_records(write_jsonl(tmp_path / "p.jsonl", rows)).records]
    assert len(set(ids)) == 4
    base = content_id(ALPACA_ROWS[0])
    assert ids[0] == base and ids[2] == f"{base}-dup1" and ids[3] == f"{base}-dup2"
    assert ids == [r.id for r in load_records(write_jsonl(tmp_path / "q.jsonl", rows)).records]


# -- bad input ----------------------------------------------------------------------------------------


def _bad_jsonl(tmp_path: Path, bad: bytes, name: str = "bad.jsonl") -> Path:
    good = [json.dumps(r).encode() for r in ALPACA_ROWS[:2]]
    path = tmp_path / name
    path.write_bytes(b"\n".join([good[0], good[1], bad, good[0]]) + b"\n")
    return path


BAD_LINES = {
    "malformed-json": (b'{"instruction": "x", "output": ', "malformed JSON"),
    "no-schema-fields": (b'{"question": "x", "answer": "y"}', "no 'instruction' field"),
    "non-utf8": (b'{"instruction": "caf\xe9", "output": "x"}', "not valid UTF-8"),
    "not-an-object": (b'[1, 2, 3]', "expected a JSON object"),
    "both-empty": (b'{"instruction": " ", "output": ""}', "both empty"),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_bad_line_error_names_file_and_line(tmp_path, case):
    bad, reason = BAD_LINES[case]
    path = _bad_jsonl(tmp_path, bad)
    with pytest.raises(InputError) as info:
        load_records(path)
    msg = str(info.value)
    assert str(path) in msg and "line 3" in msg and reason in msg
    assert "--on-bad-record skip" in msg  # says what to do
    assert info.value.line == 3


def test_first_row_without_any_known_fields(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"question": "q", "answer": "a"}, ALPACA_ROWS[0]])
    with pytest.raises(InputError, match=r"p\.jsonl, line 1: no known schema fields \(found: answer, question\)"):
        load_records(path)


def test_skip_sets_bad_rows_aside_with_line_and_reason(tmp_path):
    rows = [json.dumps(ALPACA_ROWS[0]).encode(), BAD_LINES["malformed-json"][0], json.dumps(ALPACA_ROWS[1]).encode(),
            BAD_LINES["non-utf8"][0], BAD_LINES["no-schema-fields"][0], json.dumps(ALPACA_ROWS[2]).encode()]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    res = load_records(path, on_bad_record="skip")
    assert [r.line for r in res.records] == [1, 3, 6]
    assert [(r.line, r.index) for r in res.rejected] == [(2, 1), (4, 3), (5, 4)]
    assert "malformed JSON" in res.rejected[0].reason
    assert "UTF-8" in res.rejected[1].reason
    assert "no 'instruction' field" in res.rejected[2].reason
    assert res.n_read == 6 == len(res.records) + len(res.rejected)
    out = res.write_rejects(tmp_path / "out" / "rejects.jsonl")
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["line"] for x in lines] == [2, 4, 5]
    assert all(x["reason"] and x["file"] == str(path) for x in lines)


def test_all_rows_rejected_is_an_error_even_with_skip(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"not json\n{also not\n")
    with pytest.raises(InputError, match="all 2 records were rejected"):
        load_records(path, on_bad_record="skip")


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_records(path)
    assert str(path) in str(info.value) and "no records" in str(info.value)


def test_empty_json_list_and_header_only_csv(tmp_path):
    (tmp_path / "e.json").write_text("[]")
    (tmp_path / "e.csv").write_text("instruction,input,output\n")
    for name in ("e.json", "e.csv"):
        with pytest.raises(InputError, match="holds no records"):
            load_records(tmp_path / name)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.jsonl"
    with pytest.raises(InputError) as info:
        load_records(path)
    assert str(path) in str(info.value) and "file not found" in str(info.value)


@pytest.mark.parametrize("suffix", ["json", "csv"])
def test_non_utf8_whole_file_formats_name_the_line(tmp_path, suffix):
    path = tmp_path / f"bad.{suffix}"
    body = ('[\n{"instruction": "a", "output": "b"},\n{"instruction": "caf\xe9", "output": "b"}\n]\n'
            if suffix == "json" else "instruction,input,output\na,,b\ncaf\xe9,,b\n")
    path.write_bytes(body.encode("latin-1"))
    with pytest.raises(InputError) as info:
        load_records(path)
    assert str(path) in str(info.value) and "line 3" in str(info.value) and "UTF-8" in str(info.value)


def test_malformed_json_file_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n{"instruction": "a", "output": "b"},\n{"instruction": \n]\n')
    with pytest.raises(InputError, match=r"bad\.json, line 4: malformed JSON"):
        load_records(path)


def test_record_numbers_for_table_formats(tmp_path):
    rows = [ALPACA_ROWS[0], {"instruction": "", "input": "", "output": ""}, ALPACA_ROWS[1]]
    path = _write_parquet(tmp_path / "p.parquet", rows)
    with pytest.raises(InputError, match=r"p\.parquet, record 2: .*both empty"):
        load_records(path)
    res = load_records(path, on_bad_record="skip")
    assert [r.line for r in res.rejected] == [2] and len(res.records) == 2


def test_folder_that_is_not_a_dataset(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="not a dataset saved with save_to_disk"):
        load_records(tmp_path / "folder")


# -- the shared real data -----------------------------------------------------------------------------


def test_shared_pool_first_rows(shared_data, tmp_path):
    source = shared_data / "pool" / "coding.jsonl"
    with open(source, encoding="utf-8") as fh:
        head = [next(fh) for _ in range(50)]
    path = tmp_path / "coding-50.jsonl"
    path.write_text("".join(head), encoding="utf-8")
    res = load_records(path)
    assert res.schema == "alpaca" and res.rejected == []
    assert [r.id for r in res.records] == [json.loads(x)["id"] for x in head]
    assert all(r.instruction.strip() for r in res.records)


# -- the bundled sample pool --------------------------------------------------------------------------


def test_bundled_sample_pool():
    from daar.resources import sample_pool_path

    res = load_records(sample_pool_path())
    assert res.schema == "alpaca" and res.rejected == [] and len(res.records) == 40
    domains = [r.id.split("-")[1] for r in res.records]
    assert domains == ["common_sense"] * 10 + ["reasoning"] * 10 + ["mathematics"] * 10 + ["coding"] * 10
    assert len({r.instruction for r in res.records}) == 40 and all(r.output.strip() for r in res.records)
