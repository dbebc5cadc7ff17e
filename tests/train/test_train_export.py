"""`daar export`: every format round-trips through daar's own loader."""

from __future__ import annotations

import json

import pytest

from daar.cli import main
from daar.data import load_records
from daar.errors import ConfigError
from daar.train.export import EXPORT_FORMATS, export_file, export_records
from data_helpers import ALPACA_ROWS, write_jsonl

CHATS = [
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                  {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"},
                  {"role": "assistant", "content": "6"}]},
    {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]},
]


def _fields(records):
    return [(r.instruction, r.input, r.output) for r in records]


def _messages(records):
    return [list(r.messages) for r in records]


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_alpaca_pool_round_trips(tmp_path, fmt):
    src = write_jsonl(tmp_path / "selected.jsonl", [{"id": f"r{i}", **row} for i, row in enumerate(ALPACA_ROWS)])
    original = load_records(src).records
    res = export_file(src, fmt, tmp_path / "out")
    back = load_records(res.path).records
    assert res.count == len(original) == len(back)
    assert [r.id for r in back] == [r.id for r in original]  # the rows' own ids are kept
    assert _messages(back) == _messages(original)
    if fmt == "llama-factory":
        assert res.path.name == "selected.json" and res.layout == "alpaca"
        assert _fields(back) == _fields(original)
        assert isinstance(json.loads(res.path.read_text()), list)
        info = json.loads(res.dataset_info.read_text())
        assert info["selected"] == {"file_name": "selected.json", "columns": {
            "prompt": "instruction", "query": "input", "response": "output"}}
    else:
        assert res.path.suffix == ".jsonl"
        key = "messages" if fmt == "ms-swift" else "conversations"
        first = json.loads(res.path.read_text().splitlines()[0])
        assert set(first) == {"id", key}
        if fmt == "sharegpt":
            assert [t["from"] for t in first["conversations"]] == ["human", "gpt"]


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_chat_pool_round_trips(tmp_path, fmt):
    src = write_jsonl(tmp_path / "chats.jsonl", CHATS)
    original = load_records(src).records
    res = export_records(original, fmt, tmp_path / ("chats.json" if fmt == "llama-factory" else "chats.jsonl"))
    back = load_records(res.path).records
    assert _messages(back) == _messages(original)
    assert _fields(back) == _fields(original)
    if fmt == "llama-factory":
        entry = json.loads(res.dataset_info.read_text())["chats"]
        assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "conversations"}
        assert entry["tags"]["system_tag"] == "system"


def test_llama_factory_keeps_other_dataset_info_entries(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"alpaca_en": {"file_name": "alpaca_en.json"}}))
    src = write_jsonl(tmp_path / "sel.jsonl", ALPACA_ROWS)
    export_file(src, "llama-factory", tmp_path / "daar_sel.json")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info) == {"alpaca_en", "daar_sel"}


def test_export_cli(tmp_path, capsys):
    src = write_jsonl(tmp_path / "selected.jsonl", ALPACA_ROWS)
    out = tmp_path / "swift.jsonl"
    assert main(["export", "--data", str(src), "--export-format", "ms-swift", "--out", str(out)]) == 0
    assert "wrote 6 records" in capsys.readouterr().out
    assert len(load_records(out).records) == 6
    assert main(["export", "--data", str(src), "--out", str(out)]) == 2  # --export-format missing
    assert "--export-format is required" in capsys.readouterr().err
    # --format is the input file format, as in every command
    assert main(["export", "--data", str(src), "--format", "jsonl", "--export-format", "sharegpt",
                 "--out", str(tmp_path / "gpt.jsonl")]) == 0
    with pytest.raises(ConfigError):
        export_records(load_records(src).records, "alpaca", tmp_path)
