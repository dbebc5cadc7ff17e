"""`daar compare`: several selection methods on one pool, one budget, one set of shared resources.

All methods run over one pool and one Resources, so features, DaaR's fitted model, the scorer
model and the judgement cache are computed once; DaaR's stages come from the shared stage store,
so a `daar select` before it on the same pool and settings is reused. DaaR's pseudo-domain columns
(and so its stages) are computed only when `daar` is among the methods or `--diagnostics
pseudo-domains` asks for them. Shared work runs first and is timed apart; each method's wall time
is its own work on top of it. Each method writes the same outputs as
`daar select` into OUT/<method>/, and the comparison goes to OUT/comparison.{md,csv,html,json}
(+ comparison_overlap.csv). --label-field feeds only the diagnostics: the methods run with no label
field (random-balanced and the inter-/intra-diversity bins group by pseudo-domain) unless
`--extra selectors_use_labels=true`. A method that fails with a user-facing error (e.g. the judge time limit)
is reported in the table and the others still run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from daar.errors import ConfigError, DaarError
from daar.selectors import diversity as dv
from daar.selectors.base import SelectionResult, get_selector
from daar.selectors.baselines.common import geometry_features
from daar.selectors.context import SelectionContext

log = logging.getLogger(__name__)


@dataclass
class MethodRun:
    method: str
    status: str = "ok"  # ok | failed
    seconds: float = 0.0
    error: str = ""
    result: SelectionResult | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def parse_methods(text: str | None) -> list[str]:
    if not text:
        raise ConfigError("--methods is required: comma-separated selector names, e.g. daar,random,ifd "
                          "(see daar list-selectors)")
    names = list(dict.fromkeys(m.strip() for m in str(text).split(",") if m.strip()))
    for name in names:
        get_selector(name)  # unknown names fail here, before anything expensive runs
    return names


def wants_pseudo_domains(cfg, methods: list[str]) -> bool:
    """DaaR's pseudo-domain columns cost its whole pipeline: only when DaaR runs anyway or they are asked for."""
    return "daar" in methods or "pseudo-domains" in _diagnostics(cfg)


def _diagnostics(cfg) -> set[str]:
    return {d.strip() for d in str(cfg.selection.diagnostics or "").split(",") if d.strip()}


def compare(ctx: SelectionContext, methods: list[str], budget: int, out: str | Path) -> dict[str, Any]:
    """Run `methods` on `ctx`, write each into out/<method>/ and the comparison files into out/."""
    from daar.runs.tables import comparison_html, write_comparison

    out = Path(out)
    cfg = ctx.cfg
    earlier = _earlier_methods(out)
    label_field = cfg.selection.label_field
    labels = ctx.labels(label_field) if label_field else None  # a missing field fails before any method runs
    shared: dict[str, float] = {}
    t0 = time.perf_counter()
    x = geometry_features(ctx)  # the pool-centred cosine geometry the selectors use
    shared["features"] = time.perf_counter() - t0
    daar = None
    if wants_pseudo_domains(cfg, methods):
        t0 = time.perf_counter()
        daar = ctx.daar_scores
        shared["daar_stages"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    k = int((cfg.baselines.extra or {}).get("coverage_clusters") or dv.default_clusters(ctx.n))
    clusters = dv.PoolClusters(x, k, seed=cfg.run.seed)
    shared["pool_clusters"] = time.perf_counter() - t0

    use_labels = bool((cfg.baselines.extra or {}).get("selectors_use_labels"))
    method_ctx = ctx if use_labels else ctx.with_settings(cfg.replace(label_field=None))
    pool_metrics = _metrics(np.arange(ctx.n), x, clusters, daar, labels)
    info = {"budget": budget, "pool_size": ctx.n, "methods": methods, "label_field": label_field,
            "selectors_use_labels": use_labels, "domain_names": list(daar.names) if daar else None,
            "label_names": labels[1] if labels else None, "layer": str(cfg.features.layer),
            "coverage_clusters": clusters.k, "shared_seconds": shared, "pool": pool_metrics}
    runs: list[MethodRun] = []
    for method in methods:
        run = _run_one(method_ctx, method, budget, out, {"compare": {"out": str(out), "methods": methods}})
        if run.result is not None:
            run.metrics = _metrics(run.result.selected, x, clusters, daar, labels)
        runs.append(run)
        log.info("compare: %s %s in %.1f s", method, run.status, run.seconds)
        # after every method, so a run stopped early (a time limit, a lost machine) keeps its finished part
        write_comparison(_summary(info, runs), out)
    summary = _summary(info, runs)
    ok = [r for r in runs if r.result is not None]
    _remove_stale_methods(out, earlier, {r.method for r in ok})
    if ok:  # report.html for DaaR's selection (or the first method's), with the comparison as a section
        from daar.report.html import write_report

        main = next((r for r in ok if r.method == "daar"), ok[0])
        summary["report"] = str(write_report(method_ctx, main.result, main.manifest, out, extra_sections=[
            "<h2>Comparison of methods</h2>" + comparison_html(summary)]))
    else:
        (out / "report.html").unlink(missing_ok=True)  # an earlier compare's: no method ran this time
    return summary


def _earlier_methods(out: Path) -> set[str]:
    """The methods an earlier compare into `out` wrote (from its comparison.json)."""
    import json

    try:
        return {str(m) for m in json.loads((out / "comparison.json").read_text()).get("methods", [])}
    except (OSError, ValueError, AttributeError):
        return set()


def _remove_stale_methods(out: Path, earlier: set[str], written: set[str]) -> None:
    """An earlier compare's method folder that this one did not write (dropped or failed now) would sit
    beside the new table as if current: remove what that run wrote there."""
    from daar.runs.outputs import RunFiles

    for method in sorted(earlier - written):
        folder = out / method
        if "/" not in method and folder.is_dir() and (folder / "manifest.json").is_file():
            removed = RunFiles(folder).remove_all()
            log.info("compare: removed %s/ of an earlier compare (%d files): %s did not run or failed now",
                     folder, len(removed), method)


def _run_one(ctx: SelectionContext, method: str, budget: int, out: Path, extra: dict[str, Any]) -> MethodRun:
    """One method through the shared run_method; a user-facing failure is recorded, not raised."""
    from daar.runs.select import run_method

    run = MethodRun(method)
    t0 = time.perf_counter()
    try:
        run.result, run.manifest = run_method(ctx, method, budget, out / method, extra)
        run.seconds = run.manifest["select_seconds"]
    except DaarError as exc:
        run.status, run.error, run.seconds = "failed", str(exc), time.perf_counter() - t0
        log.error("compare: %s failed: %s", method, exc)
    return run


def _summary(info: dict[str, Any], runs: list[MethodRun]) -> dict[str, Any]:
    ok = [r for r in runs if r.result is not None]
    return {**info, "shared_seconds": {k: round(v, 3) for k, v in info["shared_seconds"].items()},
            "runs": [{"method": r.method, "status": r.status, "seconds": round(r.seconds, 3), "error": r.error,
                      **r.metrics} for r in runs],
            "pending": info["methods"][len(runs):],
            "overlap": {"methods": [r.method for r in ok],
                        "shared_fraction": dv.overlap_matrix([r.result.selected for r in ok]).round(4).tolist(),
                        "jaccard": dv.overlap_matrix([r.result.selected for r in ok], "jaccard").round(4).tolist()}}


def _metrics(selected: np.ndarray, x: np.ndarray, clusters: dv.PoolClusters, daar,
             labels: tuple[np.ndarray, list[str]] | None) -> dict[str, Any]:
    m: dict[str, Any] = {"n": int(len(selected)), **dv.diversity_metrics(x, selected, clusters)}
    if daar is not None:
        k = len(daar.names)
        pool_dom = dv.distribution(daar.domain, k)
        dom = dv.distribution(daar.domain, k, selected)
        m.update({"mean_entropy": float(np.mean(np.asarray(daar.entropy)[selected])),
                  "domain_share": dict(zip(daar.names, dom.round(4).tolist(), strict=True)),
                  "domain_tv": dv.total_variation(dom, pool_dom)})
    if labels is not None:
        groups, label_names = labels
        lab = dv.distribution(groups, len(label_names), selected)
        m["label_share"] = dict(zip(label_names, lab.round(4).tolist(), strict=True))
        m["label_tv"] = dv.total_variation(lab, dv.distribution(groups, len(label_names)))
    return m


def run_compare(cfg) -> dict[str, Any]:
    """`daar compare` as a function: cheap checks first, then load the pool once and run every method."""
    from daar.io import folder_lock

    methods = parse_methods(cfg.selection.methods)
    out = Path(cfg.run.out or "runs/compare")
    with folder_lock(out):  # a second compare into the same --out fails at once
        return _run_compare(cfg, methods, out)


def _run_compare(cfg, methods: list[str], out: Path) -> dict[str, Any]:
    from daar.runs.select import load_context
    from daar.settings import parse_budget

    ctx = load_context(cfg.replace(until=None))
    budget = parse_budget(cfg.selection.budget, ctx.n)
    if cfg.selection.label_field:
        ctx.labels(cfg.selection.label_field)  # a missing label field fails here, before any method runs
    return compare(ctx, methods, budget, out)
