"""End-to-end `daar select` on a tiny random model with fixed domain examples."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from daar.cli import main
from daar.errors import ConfigError
from daar.runs.select import DaaR
from daar.settings import Config, parse_budget


def _selected_ids(run_dir) -> list[str]:
    return [json.loads(line)["id"] for line in open(run_dir / "selected.jsonl")]


def test_select_writes_every_output_and_counts_add_up(pool_file, select_kwargs, tmp_path):
    out = tmp_path / "run"
    m = DaaR(**select_kwargs, with_scores=True).select(pool_file, out)
    for name in ("selected.jsonl", "scores.parquet", "manifest.json", "report.html"):
        assert (out / name).exists(), name
    assert sorted((out / "domains").glob("*.jsonl"))
    sel = [json.loads(line) for line in open(out / "selected.jsonl")]
    assert len(sel) == 10
    assert all("daar_score" in r and r["daar_domain"] in {"common_sense", "reasoning", "mathematics", "coding"}
               for r in sel)
    # unchanged records in pool order
    pool = [json.loads(line) for line in open(pool_file)]
    order = [r["id"] for r in pool]
    ids = [r["id"] for r in sel]
    assert ids == sorted(ids, key=order.index)
    first = next(p for p in pool if p["id"] == ids[0])
    assert {k: sel[0][k] for k in first} == first
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(scores) == 48 and scores["selected"].sum() == 10
    assert {"p_common_sense", "p_coding", "pseudo_domain", "score", "rejected", "reason"} <= set(scores.columns)
    assert np.allclose(scores[[c for c in scores.columns if c.startswith("p_")]].sum(axis=1), 1.0, atol=1e-5)
    # selected = top 10 by predicted entropy
    top = scores.sort_values("score", ascending=False, kind="stable").head(10)
    assert set(top["id"]) == set(ids)
    c = m["counts"]
    assert c["read"] == c["selected"] + c["not_selected"] + c["rejected"] == 48
    manifest = json.loads((out / "manifest.json").read_text())
    assert {s["name"] for s in manifest["stages"]} >= {"synthesis", "centroids", "pseudo-labels", "psi_dom",
                                                          "psi_div", "scores"}
    assert manifest["versions"]["torch"] and manifest["config"]["run"]["seed"] == 42
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "validation accuracy" in html and "Synthesized domain samples" in html


def test_rerun_skips_every_stage_and_gives_the_same_selection(pool_file, select_kwargs, tmp_path):
    out = tmp_path / "run"
    DaaR(**select_kwargs).select(pool_file, out)
    first = _selected_ids(out)
    m2 = DaaR(**select_kwargs).select(pool_file, out)
    assert all(s["skipped_on_rerun"] for s in m2["stages"])
    assert _selected_ids(out) == first
    # a changed downstream setting recomputes only from that stage on
    m3 = DaaR(**{**select_kwargs, "probe_epochs": 3}).select(pool_file, out)
    skipped = {s["name"]: s["skipped_on_rerun"] for s in m3["stages"]}
    assert skipped["synthesis"] and skipped["centroids"] and skipped["pseudo-labels"]
    assert not skipped["psi_dom"] and not skipped["psi_div"]


def test_interrupted_run_resumes_to_the_same_result(pool_file, select_kwargs, tmp_path, isolated_cache):
    ref = tmp_path / "ref"
    DaaR(**select_kwargs).select(pool_file, ref)
    out = tmp_path / "run"
    # simulate a kill after psi_dom: the scores artifact is gone, psi_div's is half-written
    store = isolated_cache / "stages"
    (psi_div,) = (store / "psi_div").glob("*.npz")
    psi_div.write_bytes(psi_div.read_bytes()[:100])
    for f in (store / "scores").glob("*.npz"):
        f.unlink()
    m = DaaR(**select_kwargs).select(pool_file, out)
    skipped = {s["name"]: s["skipped_on_rerun"] for s in m["stages"]}
    assert skipped["psi_dom"] and not skipped["psi_div"]
    assert _selected_ids(out) == _selected_ids(ref)


def test_same_seed_is_deterministic_and_budget_fraction_is_exact(pool_file, select_kwargs, tmp_path):
    a = DaaR(**{**select_kwargs, "budget": "25%"}).select(pool_file, tmp_path / "a")
    b = DaaR(**{**select_kwargs, "budget": "0.25"}).select(pool_file, tmp_path / "b")
    assert a["counts"]["selected"] == b["counts"]["selected"] == 12
    assert _selected_ids(tmp_path / "a") == _selected_ids(tmp_path / "b")


@pytest.mark.parametrize("strategy,major", [("balanced", None), ("customized", "coding")])
def test_quota_strategies(pool_file, select_kwargs, tmp_path, strategy, major):
    out = tmp_path / strategy
    DaaR(**{**select_kwargs, "budget": "12", "strategy": strategy, "major": major}).select(pool_file, out)
    scores = pd.read_parquet(out / "scores.parquet")
    sel = scores[scores.selected]
    assert len(sel) == 12
    sizes = scores["pseudo_domain"].value_counts()
    got = sel["pseudo_domain"].value_counts()
    from daar.selectors.quotas import allocate

    names = sorted(sizes.index)
    if strategy == "balanced":
        weights = [1.0] * len(names)
    else:
        weights = [(0.5 if n == major else 0.1) * sizes[n] for n in names]
    want = allocate([sizes[n] for n in names], weights, 12)
    assert [int(got.get(n, 0)) for n in names] == want.tolist()
    # within each pseudo-domain the chosen ones are its highest-entropy records
    for n in names:
        grp = scores[scores.pseudo_domain == n].sort_values("score", ascending=False, kind="stable")
        assert set(grp.head(int(got.get(n, 0)))["id"]) == set(sel[sel.pseudo_domain == n]["id"])


def test_rejected_records_are_counted_and_reported(tmp_path, select_kwargs):
    from tests.selection.conftest import pool_rows

    path = tmp_path / "pool.jsonl"
    lines = [json.dumps(r) for r in pool_rows()] + ["{not json", json.dumps({"foo": 1})]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    m = DaaR(**select_kwargs, on_bad_record="skip").select(path, out)
    assert m["counts"] == {"read": 50, "selected": 10, "not_selected": 38, "rejected": 2}
    rej = [json.loads(line) for line in open(out / "rejects.jsonl")]
    assert [r["line"] for r in rej] == [49, 50]
    scores = pd.read_parquet(out / "scores.parquet")
    assert scores["rejected"].sum() == 2 and len(scores) == 50


def test_clear_errors_for_impossible_requests(pool_file, select_kwargs, tmp_path, capsys):
    with pytest.raises(ConfigError, match="larger than the pool"):
        parse_budget("100", 48)
    with pytest.raises(ConfigError, match="--major 'poetry' is not a domain"):
        DaaR(**{**select_kwargs, "strategy": "customized", "major": "poetry"}).select(pool_file, tmp_path / "x")
    with pytest.raises(ConfigError, match="customized needs --major"):
        Config(strategy="customized").validate()
    one = tmp_path / "one.yaml"
    one.write_text("- {name: only, description: just one}\n")
    with pytest.raises(ConfigError, match="at least 2 domains"):
        DaaR(**{**select_kwargs, "domains": str(one)}).select(pool_file, tmp_path / "y")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    rc = main(["select", "--data", str(empty), "--budget", "1", "--out", str(tmp_path / "z")])
    assert rc == 2 and "empty" in capsys.readouterr().err
    rc = main(["select", "--data", str(pool_file), "--budget", "1000", "--out", str(tmp_path / "w"),
               "--model", select_kwargs["model"], "--domains", select_kwargs["domains"]])
    err = capsys.readouterr().err
    assert rc == 2 and "larger than the pool" in err


def test_each_stage_runs_alone_and_the_next_run_reuses_it(pool_file, select_kwargs, tmp_path, capsys,
                                                          isolated_cache):
    out = tmp_path / "run"
    args = ["select", "--data", str(pool_file), "--out", str(out), "--model", select_kwargs["model"],
            "--domains", select_kwargs["domains"], "--dtype", "float32", "--max-length", "64", "--probe-size", "24",
            "--layer", "2", "--budget", "10"]
    assert main(args + ["--until", "centroids"]) == 0
    assert "stopped after stage 'centroids'" in capsys.readouterr().out
    store = isolated_cache / "stages"
    assert list((store / "centroids").glob("*.npz")) and not (store / "psi_dom").exists()
    assert main(args + ["--until", "psi_dom"]) == 0
    text = capsys.readouterr().out
    assert "centroids      cached" in text and "psi_dom        ran" in text
    assert main(args) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert [s["skipped_on_rerun"] for s in m["stages"]] == [True, True, True, True, False, False]
