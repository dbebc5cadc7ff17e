"""Every selector writes the same outputs: report.html for any method, the same base columns in
scores.parquet, and `--with-scores` columns named by the selector that produced them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from daar.cli import main

BASE_COLUMNS = ["id", "index", "line", "score", "selected", "rejected", "reason"]


@pytest.mark.parametrize("method", ["random", "instruction-length", "daar"])
def test_every_method_writes_report_and_the_same_base_columns(pool_file, select_kwargs, tmp_path, method):
    out = tmp_path / method
    args = ["select", "--data", str(pool_file), "--out", str(out), "--method", method, "--with-scores",
            "-q"] + [x for k, v in select_kwargs.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    assert main(args) == 0
    html = (out / "report.html").read_text()
    assert f"method <b>{method}</b>" in html and "Counts" in html
    assert ("Pseudo-domains" in html) == (method == "daar")  # DaaR's sections only where DaaR ran
    scores = pd.read_parquet(out / "scores.parquet")
    assert [c for c in scores.columns if c in BASE_COLUMNS] == BASE_COLUMNS
    col = method.replace("-", "_") + "_score"
    rows = [json.loads(line) for line in open(out / "selected.jsonl")]
    assert all(col in r for r in rows) and not any("daar_entropy" in r for r in rows)
    assert json.loads((out / "manifest.json").read_text())["score_column"] == col
    assert ("daar_domain" in rows[0]) == (method == "daar")
