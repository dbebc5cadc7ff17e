"""Mean and spread over seeds for `daar experiment`, and whether two methods differ beyond it.

The method's claim is about the fine-tuned model at equal budget, and random is hard to beat, so
a table of means alone proves nothing: every figure here carries its seed-to-seed spread. The
spread is the sample standard deviation (ddof=1) over the seeds; with one seed it is undefined
(NaN, shown as "n/a (1 seed)"), never a misleading 0.

Two methods are said to differ beyond the spread when |mean_a - mean_b| > std_a + std_b (a
deliberately plain, conservative rule that needs no distributional assumption); Welch's t-test
(scipy.stats.ttest_ind, equal_var=False) is reported beside it for readers who want a p-value.
With 3 seeds neither is strong evidence, which is why both the rule and n are printed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

HELDOUT = "heldout-loss"
AVERAGE = "average"
RULE = "|mean difference| > sum of the two sample stds (ddof=1); Welch's t-test p beside it"


@dataclass(frozen=True)
class Spread:
    """Mean, sample std (ddof=1; NaN below 2 values) and the number of values."""

    mean: float
    std: float
    n: int

    def text(self, digits: int = 4) -> str:
        if self.n == 0:
            return ""
        if math.isnan(self.std):
            return f"{self.mean:.{digits}f} ± n/a ({self.n} seed)"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def spread(values: Iterable[float | None]) -> Spread:
    """Mean and sample std of the finite values (None and NaN are left out)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(vals)
    if n == 0:
        return Spread(math.nan, math.nan, 0)
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else math.nan
    return Spread(mean, std, n)


def lower_is_better(column: str) -> bool:
    return column == HELDOUT or column.startswith(HELDOUT + ":")


def flatten(result: Mapping[str, Any]) -> dict[str, float]:
    """One evaluation (evaluate()'s results dict) as {column: value}.

    Columns: every benchmark (percent), `average` (mean of the benchmarks of this evaluation),
    `heldout-loss` (mean over domains) and `heldout-loss:<domain>` for each source domain.
    """
    tasks = result.get("tasks", {})
    row: dict[str, float] = {}
    bench = [name for name in tasks if name != HELDOUT]
    for name in bench:
        row[name] = float(tasks[name]["value"])
    if bench:
        row[AVERAGE] = sum(row[n] for n in bench) / len(bench)
    if HELDOUT in tasks:
        row[HELDOUT] = float(tasks[HELDOUT]["value"])
        for domain, d in (tasks[HELDOUT].get("domains") or {}).items():
            row[f"{HELDOUT}:{domain}"] = float(d["loss"])
    return row


@dataclass
class Aggregate:
    """Per-seed rows and per-method spreads over the same ordered columns."""

    columns: list[str]
    per_seed: list[dict[str, Any]]  # {"method", "seed", column: value}
    summary: dict[str, dict[str, Spread]]  # method -> column -> Spread
    seeds: dict[str, list[int]]  # method -> its seeds


def aggregate(results: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> Aggregate:
    """results[method][seed] = evaluate()'s dict -> per-seed rows and mean ± std per method and column."""
    per_seed: list[dict[str, Any]] = []
    columns: list[str] = []
    for method, by_seed in results.items():
        for seed, result in by_seed.items():
            flat = flatten(result)
            columns += [c for c in flat if c not in columns]
            per_seed.append({"method": method, "seed": seed, **flat})
    columns = _order(columns)
    summary = {m: {c: spread(r.get(c) for r in per_seed if r["method"] == m) for c in columns} for m in results}
    return Aggregate(columns, per_seed, summary, {m: list(s) for m, s in results.items()})


def _order(columns: list[str]) -> list[str]:
    """Benchmarks, their average, then the held-out loss and its domains (first-seen order within each)."""
    held = [c for c in columns if lower_is_better(c)]
    bench = [c for c in columns if c not in held and c != AVERAGE]
    return bench + ([AVERAGE] if AVERAGE in columns else []) + held


@dataclass(frozen=True)
class Difference:
    """method a - method b on one column."""

    column: str
    diff: float
    spread_sum: float  # std_a + std_b (NaN when either has one seed)
    exceeds: bool | None  # None when the spread is undefined
    p_welch: float | None
    better: bool  # a is better than b (direction-aware)


def difference(agg: Aggregate, a: str, b: str, column: str) -> Difference:
    sa, sb = agg.summary[a][column], agg.summary[b][column]
    diff = sa.mean - sb.mean
    total = sa.std + sb.std
    exceeds = None if math.isnan(total) else abs(diff) > total
    va = [r[column] for r in agg.per_seed if r["method"] == a and r.get(column) is not None]
    vb = [r[column] for r in agg.per_seed if r["method"] == b and r.get(column) is not None]
    better = diff < 0 if lower_is_better(column) else diff > 0
    return Difference(column, diff, total, exceeds, welch_p(va, vb), better)


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided Welch t-test p-value; None when either side has < 2 values or both are constant."""
    if len(a) < 2 or len(b) < 2:
        return None
    import warnings

    from scipy.stats import ttest_ind

    with warnings.catch_warnings():  # near-identical seeds: scipy warns, the p-value (or NaN) still stands
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def verdict(agg: Aggregate, a: str, b: str) -> list[str]:
    """Plain sentences: a vs b on the average, the held-out loss and each domain."""
    if a not in agg.summary or b not in agg.summary:
        return []
    cols = [c for c in (AVERAGE, HELDOUT) if c in agg.columns]
    cols += [c for c in agg.columns if c.startswith(HELDOUT + ":")]
    cols += [c for c in agg.columns if c not in cols]
    lines = []
    for c in cols:
        d = difference(agg, a, b, c)
        if math.isnan(d.diff):
            continue
        if d.exceeds is None:
            what = "spread undefined (fewer than 2 seeds)"
        else:
            what = ("exceeds" if d.exceeds else "within") + f" the spread ({d.spread_sum:.4f})"
        p = "" if d.p_welch is None else f", Welch p = {d.p_welch:.3f}"
        side = "equal" if d.diff == 0 else "better" if d.better else "worse"
        lines.append(f"{a} - {b} on {c}: {d.diff:+.4f} ({a} {side}; {what}{p})")
    return lines
