"""`daar compare`, `daar list-selectors`, budget exactness for every selector, and clear errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from selector_helpers import FakeJudge, fake_domain_model, make_rows

from daar.cli import main
from daar.errors import ConfigError
from daar.runs.compare import compare, parse_methods
from daar.selectors.base import available, get_selector

N = 12


def judge_answer(prompt: str) -> str:
    if "JSON" in prompt:  # the InsTag tagger
        return f'[{{"tag": "topic {len(prompt) % 3}"}}, {{"tag": "shared"}}]'
    return f"Score: {len(prompt) % 6}"


def full_ctx(make_ctx, model: str, **settings):
    rng = np.random.default_rng(3)
    return make_ctx(make_rows(N), features=rng.normal(size=(N, 8)), embedding=rng.normal(size=(N, 8)),
                    domain_model=fake_domain_model(N), generator=FakeJudge(judge_answer), model=model, **settings)


def test_every_selector_returns_exactly_the_budget(make_ctx, tiny_llama):
    ctx = full_ctx(make_ctx, tiny_llama)
    assert {"random", "ifd", "deita", "alpagasus", "instag-diversity", "facility-location", "inter-diversity",
            "intra-diversity", "daar"} <= set(available())
    for name in available():
        for budget in (1, 5, N):
            r = get_selector(name).select(ctx, budget)
            assert len(r.selected) == budget, (name, budget)
            assert len(np.unique(r.selected)) == budget and r.selected.min() >= 0 and r.selected.max() < N
            if r.scores is not None:
                assert r.scores.shape == (N,), name
            for col in r.extra_columns.values():
                assert len(col) == N, name


def test_compare_writes_outputs_and_comparison(make_ctx, tiny_llama, tmp_path):
    ctx = full_ctx(make_ctx, tiny_llama, label_field="source", seed=42)
    methods = ["daar", "random", "instruction-length", "kcenter", "random-balanced", "alpagasus"]
    out = tmp_path / "cmp"
    summary = compare(ctx, methods, 4, out)
    assert [r["method"] for r in summary["runs"]] == methods
    assert all(r["status"] == "ok" for r in summary["runs"])
    for m in methods:
        lines = (out / m / "selected.jsonl").read_text().splitlines()
        assert len(lines) == 4
        manifest = json.loads((out / m / "manifest.json").read_text())
        assert manifest["method"] == m
    rows = list(csv.DictReader(open(out / "comparison.csv")))
    assert [r["method"] for r in rows] == ["(pool)", *methods]
    report = (out / "report.html").read_text()
    assert "Comparison of methods" in report and summary["report"] == str(out / "report.html")
    for key in ("vendi", "mean_cos_distance", "cluster_coverage", "mean_entropy", "label_tv", "domain:d0",
                "label:a", "seconds"):
        assert key in rows[0]
    assert float(rows[0]["label_tv"]) == 0.0  # the pool against itself
    shares = [float(rows[2][f"label:{x}"]) for x in "abc"]
    assert sum(shares) == pytest.approx(1.0)
    md = (out / "comparison.md").read_text()
    assert "| random |" in md and "Overlap" in md and "Label mix (--label-field source" in md
    html = (out / "comparison.html").read_text()
    assert html.startswith('<section class="daar-comparison"') and "<table" in html
    ov = np.array(summary["overlap"]["shared_fraction"])
    assert np.allclose(np.diag(ov), 1.0) and np.allclose(ov, ov.T)
    balanced = json.loads((out / "random-balanced" / "manifest.json").read_text())["metadata"]
    assert balanced["groups"] == "pseudo-domains"  # --label-field is a diagnostic only
    assert ctx.cfg.selection.label_field == "source"
    scores = ctx.daar_scores
    for r in summary["runs"]:
        sel = _selected(out, r["method"])
        assert r["mean_entropy"] == pytest.approx(float(scores.entropy[sel].mean()))


def _selected(out, method):
    import pandas as pd

    table = pd.read_parquet(out / method / "scores.parquet")
    return np.flatnonzero(table["selected"].to_numpy())


def test_compare_can_let_selectors_use_the_labels(make_ctx, tiny_llama, tmp_path):
    ctx = full_ctx(make_ctx, tiny_llama, label_field="source", extra={"selectors_use_labels": True})
    compare(ctx, ["random-balanced"], 6, tmp_path / "cmp")
    meta = json.loads((tmp_path / "cmp" / "random-balanced" / "manifest.json").read_text())["metadata"]
    assert meta["groups"] == "label field source" and meta["quotas"] == [2, 2, 2]


def test_compare_reports_a_failing_method_and_runs_the_rest(make_ctx, tiny_llama, tmp_path):
    ctx = full_ctx(make_ctx, tiny_llama, extra={"judge_time_limit": 0, "judge_batch": 2})
    summary = compare(ctx, ["alpagasus", "random"], 3, tmp_path / "cmp")
    status = {r["method"]: r["status"] for r in summary["runs"]}
    assert status == {"alpagasus": "failed", "random": "ok"}
    assert "time limit" in summary["runs"][0]["error"]
    assert "alpagasus failed" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_compare_label_field_missing_fails_before_any_method(make_ctx, tiny_llama, tmp_path):
    ctx = full_ctx(make_ctx, tiny_llama, label_field="nope")
    with pytest.raises(ConfigError, match="--label-field 'nope' is missing"):
        compare(ctx, ["random"], 3, tmp_path / "cmp")
    assert not (tmp_path / "cmp" / "random").exists()


def test_parse_methods():
    assert parse_methods("random, kcenter,random") == ["random", "kcenter"]
    with pytest.raises(ConfigError, match="unknown method 'bogus'"):
        parse_methods("random,bogus")
    with pytest.raises(ConfigError, match="--methods is required"):
        parse_methods(None)


# -- command line ----------------------------------------------------------------------------------
def test_list_selectors_prints_every_name(capsys):
    assert main(["list-selectors"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == len(available())
    for name in ("daar", "random", "random-balanced", "instruction-length", "output-length", "ifd",
                 "deita-complexity", "deita-quality", "deita", "alpagasus", "instag-complexity",
                 "instag-diversity", "kcenter", "facility-location", "inter-diversity", "intra-diversity"):
        assert any(line.split()[0] == name for line in lines), name


@pytest.fixture
def pool_file(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_rows(N)), encoding="utf-8")
    return path


def test_cli_budget_larger_than_pool(pool_file, tmp_path, tiny_llama, capsys):
    code = main(["compare", "--data", str(pool_file), "--model", tiny_llama, "--methods", "random",
                 "--budget", "100", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "larger than the pool (12 usable records)" in capsys.readouterr().err


def test_cli_unknown_method(pool_file, tmp_path, tiny_llama, capsys):
    code = main(["compare", "--data", str(pool_file), "--model", tiny_llama, "--methods", "random,bogus",
                 "--budget", "3", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "unknown method 'bogus'" in capsys.readouterr().err


def test_cli_label_field_missing(pool_file, tmp_path, tiny_llama, capsys):
    code = main(["select", "--data", str(pool_file), "--model", tiny_llama, "--method", "random-balanced",
                 "--label-field", "nope", "--budget", "3", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "--label-field 'nope' is missing" in capsys.readouterr().err


def test_cli_select_runs_a_baseline(pool_file, tmp_path, tiny_llama):
    out = tmp_path / "o"
    assert main(["select", "--data", str(pool_file), "--model", tiny_llama, "--method", "output-length",
                 "--budget", "25%", "--out", str(out)]) == 0
    assert len((out / "selected.jsonl").read_text().splitlines()) == 3
    assert json.loads((out / "manifest.json").read_text())["method"] == "output-length"


def test_a_stopped_compare_keeps_the_methods_that_finished(make_ctx, tiny_llama, tmp_path):
    def stop(prompt: str) -> str:
        raise KeyboardInterrupt  # the user, or a time limit, stops the run while the judge works

    rng = np.random.default_rng(3)
    ctx = make_ctx(make_rows(N), features=rng.normal(size=(N, 8)), embedding=rng.normal(size=(N, 8)),
                   domain_model=fake_domain_model(N), generator=FakeJudge(stop), model=tiny_llama,
                   label_field="source")
    out = tmp_path / "cmp"
    with pytest.raises(KeyboardInterrupt):
        compare(ctx, ["random", "kcenter", "alpagasus"], 4, out)
    summary = json.loads((out / "comparison.json").read_text())
    assert [r["method"] for r in summary["runs"]] == ["random", "kcenter"]
    assert summary["pending"] == ["alpagasus"]
    assert all(r["status"] == "ok" and r["n"] == 4 for r in summary["runs"])
    md = (out / "comparison.md").read_text()
    assert "| kcenter |" in md and "Not run yet" in md and "alpagasus" in md
    assert (out / "random" / "selected.jsonl").exists()
