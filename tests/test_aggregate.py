"""Mean ± std over seeds, the DaaR-vs-random verdict and the error-bar plot, on fixed numbers."""

from __future__ import annotations

import csv
import io
import math

import pytest
from matplotlib.container import ErrorbarContainer

from daar.runs import aggregate as ag
from daar.runs.experiment import figure, table_csv, table_markdown, write_table


def _result(hellaswag: float, losses: dict[str, float]) -> dict:
    return {"tasks": {"hellaswag": {"value": hellaswag},
                      "heldout-loss": {"value": sum(losses.values()) / len(losses),
                                       "domains": {d: {"loss": v} for d, v in losses.items()}}}}


def _results() -> dict:
    return {
        "raw-model": {0: _result(30.0, {"coding": 1.0, "mathematics": 2.0})},
        "daar": {1: _result(31.0, {"coding": 0.80, "mathematics": 1.50}),
                 2: _result(33.0, {"coding": 0.82, "mathematics": 1.52}),
                 3: _result(35.0, {"coding": 0.84, "mathematics": 1.54})},
        "random": {1: _result(30.0, {"coding": 0.90, "mathematics": 1.50}),
                   2: _result(31.0, {"coding": 0.91, "mathematics": 1.60}),
                   3: _result(32.0, {"coding": 0.92, "mathematics": 1.70})},
    }


def test_spread_is_the_mean_and_the_sample_std():
    s = ag.spread([31.0, 33.0, 35.0])
    assert s.mean == 33.0 and s.n == 3
    assert s.std == pytest.approx(2.0)  # ddof=1: sqrt((4 + 0 + 4) / 2); ddof=0 would give 1.633
    assert ag.spread([1.0, 2.0]).std == pytest.approx(math.sqrt(0.5))
    assert ag.spread([1.0, None, float("nan"), 3.0]).n == 2


def test_one_seed_has_no_spread_and_says_so():
    s = ag.spread([1.5])
    assert s.mean == 1.5 and s.n == 1 and math.isnan(s.std)
    assert s.text(2) == "1.50 ± n/a (1 seed)"
    assert ag.spread([]).n == 0 and ag.spread([]).text() == ""
    assert ag.spread([2.0, 4.0]).text(1) == "3.0 ± 1.4"


def test_aggregate_per_domain_and_average_columns():
    agg = ag.aggregate(_results())
    assert agg.columns == ["hellaswag", "average", "heldout-loss", "heldout-loss:coding", "heldout-loss:mathematics"]
    assert len(agg.per_seed) == 7 and agg.seeds["daar"] == [1, 2, 3]
    d = agg.summary["daar"]
    assert d["hellaswag"].mean == 33.0 and d["hellaswag"].std == pytest.approx(2.0)
    assert d["average"].mean == 33.0  # one benchmark: the average is that benchmark
    assert d["heldout-loss:coding"].mean == pytest.approx(0.82)
    assert d["heldout-loss:coding"].std == pytest.approx(0.02)
    assert d["heldout-loss"].mean == pytest.approx((0.82 + 1.52) / 2)
    assert math.isnan(agg.summary["raw-model"]["hellaswag"].std)


def test_difference_beyond_the_spread_is_direction_aware():
    agg = ag.aggregate(_results())
    coding = ag.difference(agg, "daar", "random", "heldout-loss:coding")
    assert coding.diff == pytest.approx(-0.09) and coding.better  # lower loss is better
    assert coding.spread_sum == pytest.approx(0.03) and coding.exceeds is True
    assert coding.p_welch is not None and coding.p_welch < 0.01
    math_ = ag.difference(agg, "daar", "random", "heldout-loss:mathematics")
    assert math_.diff == pytest.approx(-0.08) and math_.spread_sum == pytest.approx(0.12) and math_.exceeds is False
    hs = ag.difference(agg, "daar", "random", "hellaswag")
    assert hs.diff == pytest.approx(2.0) and hs.better and hs.exceeds is False  # 2.0 < 2.0 + 1.0
    raw = ag.difference(agg, "raw-model", "random", "hellaswag")
    assert raw.exceeds is None and raw.p_welch is None
    lines = ag.verdict(agg, "daar", "random")
    assert lines[0].startswith("daar - random on average: +2.0000 (daar better; within the spread (3.0000)")
    assert any("heldout-loss:coding: -0.0900 (daar better; exceeds the spread (0.0300), Welch p = " in x for x in lines)
    assert ag.verdict(agg, "daar", "ifd") == []


def test_csv_has_seed_rows_then_mean_and_std_with_blank_std_for_one_seed():
    agg = ag.aggregate(_results())
    rows = list(csv.DictReader(io.StringIO(table_csv(agg))))
    assert [(r["method"], r["stat"]) for r in rows[:2]] == [("raw-model", "seed"), ("daar", "seed")]
    by = {(r["method"], r["stat"]): r for r in rows if r["stat"] != "seed"}
    assert float(by["daar", "mean"]["hellaswag"]) == 33.0 and float(by["daar", "std"]["hellaswag"]) == 2.0
    assert by["daar", "std"]["n"] == "3"
    assert by["raw-model", "std"]["hellaswag"] == "" and by["raw-model", "std"]["n"] == "1"
    md = table_markdown(agg, ("daar", "random"), ["a note"])
    assert "| daar | 3 | 33.00 ± 2.00 | 33.00 ± 2.00 | 1.1700 ± 0.0200 | 0.8200 ± 0.0200 |" in md
    assert "| raw-model | 1 | 30.00 ± n/a (1 seed) |" in md
    assert ag.RULE in md and "## Per seed" in md and "| random | 3 | 32.00 |" in md and "- a note" in md


def test_the_plot_has_one_error_bar_per_panel_and_is_written(tmp_path):
    agg = ag.aggregate(_results())
    fig = figure(agg)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(agg.columns)
    bars = [c for ax in panels for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == len(agg.columns)
    # the bars' half-widths are the stds (daar's hellaswag: 2.0; raw-model's single seed: 0)
    segments = bars[0].lines[2][0].get_segments()
    assert [round(float(s[1][1] - s[0][1]) / 2, 6) for s in segments] == [0.0, 2.0, 1.0]
    write_table(_results(), tmp_path)
    png = (tmp_path / "experiment.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert (tmp_path / "experiment.md").is_file() and (tmp_path / "experiment.csv").is_file()
