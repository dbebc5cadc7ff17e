"""Issue 11, inputs: every bad input is a clear error (exit 2) before any model loads or any output is
written, and the inputs people have (BOM, compressed files, own ids) are read as they are."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from daar.cli import main
from daar.data import load_records
from data_helpers import ALPACA_ROWS, write_jsonl

ROWS = [{"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}."} for i in range(12)]


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if any model is loaded (every load goes through daar.models.loading.load_model)."""
    import daar.features.extract
    import daar.models.loading

    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a model was loaded before the bad input was reported")

    monkeypatch.setattr(daar.models.loading, "load_model", forbidden)
    monkeypatch.setattr(daar.features.extract, "load_model", forbidden)
    return calls


@pytest.fixture
def pool(tmp_path) -> Path:
    return write_jsonl(tmp_path / "pool.jsonl", ROWS)


def _fails(capsys, argv: list[str], *expected: str) -> str:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse rejects a badly typed flag itself, also with exit code 2
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    return err


def _select(pool: Path, out: Path, *extra: str) -> list[str]:
    return ["select", "--data", str(pool), "--out", str(out), "-q", *extra]


# -- the reported cases: exit 2, the flag/file, the value, what to do; no model, no output --------------

CASES = {
    "tau-abc-flag": (["--tau", "abc"], ["--tau", "'abc'", "a number"]),
    "budget-inf-percent": (["--budget", "inf%"], ["--budget", "inf%", "finite"]),
    "budget-huge": (["--budget", "1e400"], ["--budget", "1e400"]),
    "layer-abc": (["--layer", "abc"], ["--layer", "abc", "embedding"]),
    "template-unknown-field": (["--template", "{foo}"], ["--template", "{foo}", "{instruction}"]),
    "template-unclosed": (["--template", "{instruction"], ["--template", "{instruction", "{{"]),
    "max-length-negative": (["--max-length", "-5"], ["--max-length", "-5", ">= 1"]),
    "probe-size-negative": (["--probe-size", "-3"], ["--probe-size", "-3", ">= 1"]),
    "seed-too-large": (["--seed", str(2**40)], ["--seed", str(2**40), "4294967295"]),
    "probe-lr-nan": (["--probe-lr", "nan"], ["--probe-lr", "finite"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_flag_is_exit_2_before_any_work(case, pool, tmp_path, capsys, no_model):
    flags, expected = CASES[case]
    out = tmp_path / "out"
    argv = _select(pool, out, "--budget", "5", *flags) if "--budget" not in flags else _select(pool, out, *flags)
    _fails(capsys, argv, *expected)
    assert not out.exists() and not no_model


def test_malformed_domains_yaml_names_file_and_line(pool, tmp_path, capsys, no_model):
    domains = tmp_path / "domains.yaml"
    domains.write_text("- name: a\n  description: x\n - name: b\n")
    _fails(capsys, _select(pool, tmp_path / "out", "--budget", "5", "--domains", str(domains)),
           f"{domains}, line 3", "not valid YAML")
    assert "<unicode string>" not in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_domains_tau_abc(pool, tmp_path, capsys, no_model):
    domains = tmp_path / "domains.yaml"
    domains.write_text("- {name: a, description: x, tau: abc}\n- {name: b, description: y}\n")
    _fails(capsys, _select(pool, tmp_path / "out", "--budget", "5", "--domains", str(domains)),
           str(domains), "tau of domain 'a'", "'abc'", "(0, 1]")


def test_config_yaml_errors(pool, tmp_path, capsys, no_model):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("layer: 3\nbudget: [1\n")
    _fails(capsys, _select(pool, tmp_path / "out", "--config", str(cfg)), f"{cfg}, line 3", "not valid YAML")
    cfg.write_text("tau: abc\n")
    _fails(capsys, _select(pool, tmp_path / "out", "--budget", "5", "--config", str(cfg)), str(cfg), "'tau'", "'abc'")


@pytest.mark.parametrize("variable,value,expected", [
    ("DAAR_SHARD_SIZE", "abc", ["DAAR_SHARD_SIZE", "'abc'", "integer"]),
    ("DAAR_SHARD_SIZE", "0", ["DAAR_SHARD_SIZE", "'0'"]),
    ("DAAR_CACHE", "FILE", ["DAAR_CACHE", "existing file", "folder"]),
])
def test_bad_environment_variable(variable, value, expected, pool, tmp_path, capsys, monkeypatch, no_model):
    if value == "FILE":
        value = str(write_jsonl(tmp_path / "a-file", []))
    monkeypatch.setenv(variable, value)
    out = tmp_path / "out"
    _fails(capsys, ["embed", "--data", str(pool), "--out", str(out), "-q"], *expected)
    assert not out.exists()


@pytest.mark.parametrize("command", ["select", "embed"])
def test_out_that_is_an_existing_file(command, pool, tmp_path, capsys, no_model):
    out = tmp_path / "results"
    out.write_text("keep me")
    argv = [command, "--data", str(pool), "--out", str(out), "-q"] + (["--budget", "5"] if command == "select" else [])
    _fails(capsys, argv, "--out", str(out), "existing file")
    assert out.read_text() == "keep me"


def test_missing_probe_data_is_reported_before_work(pool, tmp_path, capsys, no_model):
    _fails(capsys, _select(pool, tmp_path / "out", "--budget", "5", "--probe-data", str(tmp_path / "nope.jsonl")),
           "--probe-data", "not found")


# -- inputs people have -----------------------------------------------------------------------------------


def _bom(path: Path) -> Path:
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return path


def _write_pool(path, fmt: str):
    """ALPACA_ROWS written as `fmt` (jsonl, json or csv)."""
    if fmt == "jsonl":
        write_jsonl(path, ALPACA_ROWS)
    elif fmt == "json":
        path.write_text(json.dumps(ALPACA_ROWS))
    else:
        pd.DataFrame(ALPACA_ROWS).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_utf8_bom_is_accepted(fmt, tmp_path):
    path = _write_pool(tmp_path / f"pool.{fmt}", fmt)
    plain = [r.instruction for r in load_records(path).records]
    assert [r.instruction for r in load_records(_bom(path)).records] == plain == [r["instruction"] for r in ALPACA_ROWS]


def test_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_bytes(json.dumps(ALPACA_ROWS[0]).encode("utf-16"))
    with pytest.raises(Exception, match="UTF-16"):
        load_records(path)


def _compress(kind: str, data: bytes) -> bytes:
    if kind == "gz":
        return gzip.compress(data)
    if kind == "bz2":
        return bz2.compress(data)
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("kind", ["gz", "bz2", "zst"])
@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_compressed_files_read_transparently(kind, fmt, tmp_path):
    plain = _write_pool(tmp_path / f"pool.{fmt}", fmt)
    packed = tmp_path / f"pool.{fmt}.{kind}"
    packed.write_bytes(_compress(kind, plain.read_bytes()))
    a, b = load_records(plain), load_records(packed)
    assert b.format == fmt and [r.id for r in b.records] == [r.id for r in a.records]


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "pool.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in ROWS))[:-20])
    with pytest.raises(Exception, match="cannot be decompressed as gzip"):
        load_records(path)


def test_json_list_in_jsonl_suggests_format_json(tmp_path, capsys):
    path = tmp_path / "pool.jsonl"
    path.write_text(json.dumps(ROWS, indent=1))
    _fails(capsys, _select(path, tmp_path / "out", "--budget", "5", "--method", "random"), "--format json", "line 1")
    assert len(load_records(path, fmt="json").records) == len(ROWS)


def test_budget_1e3_is_a_count(tmp_path, tiny_llama):
    pool = write_jsonl(tmp_path / "pool.jsonl", [dict(r, id=f"r{i}") for i, r in enumerate(ROWS * 100)])
    out = tmp_path / "out"
    assert main(_select(pool, out, "--budget", "1e3", "--method", "random", "--model", tiny_llama)) == 0
    assert json.loads((out / "manifest.json").read_text())["counts"]["selected"] == 1000


# -- ids: only the affected records change, the mapping is in the manifest, counts add up -------------------


def _id_pool(tmp_path: Path) -> Path:
    rows = [dict(r, id=f"r{i}") for i, r in enumerate(ROWS)]
    rows[4]["id"] = "r1"  # duplicate
    rows[6]["id"] = None
    rows[7]["id"] = ["a", "list"]
    rows[9]["id"] = 3.5
    return write_jsonl(tmp_path / "pool.jsonl", rows)


def test_bad_ids_are_fixed_only_where_bad_with_a_warning_and_a_mapping(tmp_path, tiny_llama, caplog):
    out = tmp_path / "out"
    argv = _select(_id_pool(tmp_path), out, "--budget", "12", "--method", "random", "--model", tiny_llama)
    assert main(argv) == 0
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "unusable id" in r.getMessage()]
    assert warning and "lines 5, 7, 8, 10" in warning[0]
    m = json.loads((out / "manifest.json").read_text())
    changes = {c["line"]: c for c in m["id_changes"]}
    assert sorted(changes) == [5, 7, 8, 10]
    assert changes[5]["original"] == "r1" and changes[5]["new"] == "r1-dup1" and "duplicate" in changes[5]["reason"]
    assert changes[7]["original"] is None and changes[8]["original"] == ["a", "list"]
    ids = pd.read_parquet(out / "scores.parquet")["id"].tolist()
    assert len(set(ids)) == len(ids) == 12
    assert [i for i in ids if i.startswith("r")][:4] == ["r0", "r1", "r2", "r3"]  # own ids kept
    assert m["counts"]["read"] == 12 == m["counts"]["selected"] + m["counts"]["not_selected"] + m["counts"]["rejected"]


def test_skip_rejects_records_with_bad_ids(tmp_path, tiny_llama):
    out = tmp_path / "out"
    argv = _select(_id_pool(tmp_path), out, "--budget", "3", "--method", "random", "--model", tiny_llama,
                   "--on-bad-record", "skip")
    assert main(argv) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"] == {"read": 12, "selected": 3, "not_selected": 5, "rejected": 4}
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [5, 7, 8, 10]
    assert "duplicate id 'r1' (first at line 2)" in rejects[0]["reason"]
    assert all(c["new"] is None for c in m["id_changes"])
