"""`daar compare`: several selection methods on one pool, one budget, one set of shared caches.

All methods run over ONE SelectionContext, so features, the DaaR domain model, the scorer model
and the judgement cache are computed once. Shared stages run first and are timed apart; each
method's wall time is its own work on top of them. Each method writes the same outputs as
`daar select` into OUT/<method>/, and the comparison goes to OUT/comparison.{md,csv,html,json}
(+ comparison_overlap.csv). --label-field feeds only the diagnostics: the methods run with no label
field (random-balanced and the inter-/intra-diversity bins group by pseudo-domain) unless
`--extra selectors_use_labels=true`. A method that fails with a user-facing error (e.g. the judge time limit)
is reported in the table and the others still run.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from daar.config import Config, parse_budget
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
    metrics: dict[str, Any] = field(default_factory=dict)


def parse_methods(text: str | None) -> list[str]:
    if not text:
        raise ConfigError("--methods is required: comma-separated selector names, e.g. daar,random,ifd "
                          "(see daar list-selectors)")
    names = list(dict.fromkeys(m.strip() for m in str(text).split(",") if m.strip()))
    for name in names:
        get_selector(name)  # unknown names fail here, before anything expensive runs
    return names


def compare(ctx: SelectionContext, methods: list[str], budget: int, out: str | Path) -> dict[str, Any]:
    """Run `methods` on `ctx`, write each into out/<method>/ and the comparison files into out/."""
    from daar.selectors.output import write_outputs

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = ctx.cfg
    label_field = cfg.label_field
    labels = ctx.labels(label_field) if label_field else None  # a missing field fails before any method runs
    ctx.run_dir = out
    shared: dict[str, float] = {}
    t0 = time.perf_counter()
    x = geometry_features(ctx)  # the pool-centred cosine geometry the selectors use
    shared["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dm = ctx.domain_model
    shared["domain_model"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    k = int((cfg.extra or {}).get("coverage_clusters") or dv.default_clusters(ctx.n))
    clusters = dv.PoolClusters(x, k, seed=cfg.seed)
    shared["pool_clusters"] = time.perf_counter() - t0

    use_labels = bool((cfg.extra or {}).get("selectors_use_labels"))
    method_cfg = cfg if use_labels else replace(cfg, label_field=None)
    pool_metrics = _metrics(ctx, np.arange(ctx.n), x, clusters, dm, labels)

    def summarize(runs: list[MethodRun]) -> dict[str, Any]:
        ok = [r for r in runs if r.result is not None]
        return {
            "budget": budget, "pool_size": ctx.n, "methods": methods, "label_field": label_field,
            "selectors_use_labels": use_labels,
            "domain_names": list(dm.domain_names), "label_names": labels[1] if labels else None,
            "layer": str(cfg.layer), "coverage_clusters": clusters.k,
            "shared_seconds": {k: round(v, 3) for k, v in shared.items()},
            "pool": pool_metrics,
            "runs": [{"method": r.method, "status": r.status, "seconds": round(r.seconds, 3), "error": r.error,
                      **r.metrics} for r in runs],
            "pending": methods[len(runs):],
            "overlap": {"methods": [r.method for r in ok],
                        "shared_fraction": dv.overlap_matrix([r.result.selected for r in ok]).round(4).tolist(),
                        "jaccard": dv.overlap_matrix([r.result.selected for r in ok], "jaccard").round(4).tolist()},
        }

    runs: list[MethodRun] = []
    for method in methods:
        run = MethodRun(method)
        ctx.run_dir, ctx.cfg = out / method, method_cfg
        t0 = time.perf_counter()
        try:
            result = get_selector(method).select(ctx, budget)
            run.seconds = time.perf_counter() - t0
            if len(result.selected) != budget:
                raise RuntimeError(f"selector '{method}' returned {len(result.selected)} records for a budget of "
                                   f"{budget}")
            ctx.timings[f"select:{method}"] = run.seconds
            write_outputs(ctx, result, method, extra_manifest={"compare": {"out": str(out), "methods": methods}})
            run.result = result
        except DaarError as exc:
            run.status, run.error, run.seconds = "failed", str(exc), time.perf_counter() - t0
            log.error("compare: %s failed: %s", method, exc)
        finally:
            ctx.run_dir, ctx.cfg = out, cfg
        if run.result is not None:
            run.metrics = _metrics(ctx, run.result.selected, x, clusters, dm, labels)
        runs.append(run)
        log.info("compare: %s %s in %.1f s", method, run.status, run.seconds)
        # after every method, so a run stopped early (a time limit, a lost machine) keeps its finished part
        write_comparison(summarize(runs), out)

    summary = summarize(runs)
    ok = [r for r in runs if r.result is not None]
    write_comparison(summary, out)
    if ok:  # report.html for DaaR's selection (or the first method's), with the comparison as a section
        import json

        from daar.report.html import write_report

        main = next((r for r in ok if r.method == "daar"), ok[0])
        manifest = json.loads((out / main.method / "manifest.json").read_text())
        summary["report"] = str(write_report(ctx, main.result, manifest,
                                             extra_sections=["<h2>Comparison of methods</h2>" + comparison_html(summary)]))
    return summary


def _metrics(ctx: SelectionContext, selected: np.ndarray, x: np.ndarray, clusters: dv.PoolClusters, dm,
             labels: tuple[np.ndarray, list[str]] | None) -> dict[str, Any]:
    names = list(dm.domain_names)
    pool_dom = dv.distribution(dm.pool_domain, len(names))
    dom = dv.distribution(dm.pool_domain, len(names), selected)
    m: dict[str, Any] = {"n": int(len(selected)), **dv.diversity_metrics(x, selected, clusters),
                         "mean_entropy": float(np.mean(np.asarray(dm.pool_entropy)[selected])),
                         "domain_share": dict(zip(names, dom.round(4).tolist(), strict=True)),
                         "domain_tv": dv.total_variation(dom, pool_dom)}
    if labels is not None:
        groups, label_names = labels
        lab = dv.distribution(groups, len(label_names), selected)
        m["label_share"] = dict(zip(label_names, lab.round(4).tolist(), strict=True))
        m["label_tv"] = dv.total_variation(lab, dv.distribution(groups, len(label_names)))
    return m


# -- writers ---------------------------------------------------------------------------------------
_COLUMNS = [("vendi", "Vendi", 2), ("log_det", "log det(I+K)", 1), ("mean_cos_distance", "mean cos dist", 4),
            ("cluster_coverage", "cluster cover", 3), ("mean_entropy", "mean pred. entropy", 4),
            ("domain_tv", "domain TV", 3)]


def _rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per method (plus the pool itself as the reference row)."""
    rows = []
    for r in [{"method": "(pool)", "status": "reference", "seconds": None, "error": "", **summary["pool"]},
              *summary["runs"]]:
        row = {"method": r["method"], "status": r["status"], "seconds": r.get("seconds"), "n": r.get("n")}
        for key, _, _ in _COLUMNS:
            row[key] = r.get(key)
        if summary["label_field"]:
            row["label_tv"] = r.get("label_tv")
        for name in summary["domain_names"]:
            row[f"domain:{name}"] = (r.get("domain_share") or {}).get(name)
        for name in summary["label_names"] or []:
            row[f"label:{name}"] = (r.get("label_share") or {}).get(name)
        row["error"] = r.get("error", "")
        rows.append(row)
    return rows


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _tables(summary: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by the Markdown and HTML writers."""
    rows = _rows(summary)
    lf = summary["label_field"]
    head = ["method", "status", "wall s"] + [t for _, t, _ in _COLUMNS] + (["label TV"] if lf else [])
    body = [[r["method"], r["status"], _fmt(r["seconds"], 1)] + [_fmt(r[k], d) for k, _, d in _COLUMNS]
            + ([_fmt(r["label_tv"])] if lf else []) for r in rows]
    tables = [("Diversity and composition", head, body)]
    dn = summary["domain_names"]
    tables.append(("Pseudo-domain mix of each selection (share of the selection)", ["method", *dn],
                   [[r["method"], *(_fmt(r[f"domain:{n}"]) for n in dn)] for r in rows]))
    if lf:
        ln = summary["label_names"]
        tables.append((f"Label mix (--label-field {lf}, diagnostic only)", ["method", *ln],
                       [[r["method"], *(_fmt(r[f"label:{n}"]) for n in ln)] for r in rows]))
    ov = summary["overlap"]
    tables.append(("Overlap |A ∩ B| / budget", ["", *ov["methods"]],
                   [[m, *(_fmt(v, 2) for v in row)] for m, row in zip(ov["methods"], ov["shared_fraction"],
                                                                       strict=True)]))
    return tables


def _notes(summary: dict[str, Any]) -> list[str]:
    shared = ", ".join(f"{k} {v:.1f} s" for k, v in summary["shared_seconds"].items())
    notes = [f"Pool {summary['pool_size']} records, budget {summary['budget']}; diversity on layer "
             f"{summary['layer']} features centred on the pool mean (cosine geometry); cluster coverage over {summary['coverage_clusters']} k-means clusters of the pool.",
             f"Shared stages (computed once, not in the per-method wall time): {shared}.",
             ("--label-field is a diagnostic only: the methods did not see it." if summary["label_field"] and
              not summary["selectors_use_labels"] else "Methods that group records used the label field."
              if summary["label_field"] else "No --label-field: the label mix is not shown."),
             "TV = total-variation distance of the selection's mix from the pool's (0 = same mix); mean pred. "
             "entropy = DaaR's predicted domain entropy averaged over the selection."]
    notes += [f"{r['method']} failed: {r['error']}" for r in summary["runs"] if r["status"] != "ok"]
    if summary.get("pending"):
        notes.append("Not run yet (the comparison is still running or was stopped): " + ", ".join(summary["pending"]))
    return notes


def write_comparison(summary: dict[str, Any], out: Path) -> dict[str, Path]:
    out = Path(out)
    paths = {"json": out / "comparison.json", "csv": out / "comparison.csv", "md": out / "comparison.md",
             "html": out / "comparison.html", "overlap": out / "comparison_overlap.csv"}
    paths["json"].write_text(json.dumps(summary, indent=2, default=float), encoding="utf-8")
    rows = _rows(summary)
    with open(paths["csv"], "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ov = summary["overlap"]
    with open(paths["overlap"], "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", *ov["methods"]])
        writer.writerows([m, *row] for m, row in zip(ov["methods"], ov["shared_fraction"], strict=True))
    md = ["# Selection methods compared", ""] + [f"- {n}" for n in _notes(summary)]
    for title, head, body in _tables(summary):
        md += ["", f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(row) + " |" for row in body]
    paths["md"].write_text("\n".join(md) + "\n", encoding="utf-8")
    paths["html"].write_text(comparison_html(summary), encoding="utf-8")
    return paths


def comparison_html(summary: dict[str, Any]) -> str:
    """A self-contained <section> (no page wrapper) for embedding in report.html."""
    e = html.escape
    parts = ['<section class="daar-comparison" id="comparison">', "<h2>Selection methods compared</h2>", "<ul>"]
    parts += [f"<li>{e(n)}</li>" for n in _notes(summary)] + ["</ul>"]
    for title, head, body in _tables(summary):
        parts.append(f"<h3>{e(title)}</h3>")
        parts.append('<table class="daar-table"><thead><tr>' + "".join(f"<th>{e(h)}</th>" for h in head)
                     + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</tbody></table>")
    parts.append("</section>")
    return "\n".join(parts) + "\n"


# -- command ---------------------------------------------------------------------------------------
def run_compare(cfg: Config) -> dict[str, Any]:
    """`daar compare` as a function: load the pool once, run every method, write the comparison."""
    from daar.selectors.job import load_context

    methods = parse_methods(cfg.methods)
    out = Path(cfg.out or "runs/compare")
    ctx = load_context(cfg, run_dir=out)
    budget = parse_budget(cfg.budget, ctx.n)
    return compare(ctx, methods, budget, out)


def build(sub) -> None:
    from daar.cli_args import S
    from daar.selectors.commands import selector_parser_args

    p = sub.add_parser("compare", help="run several selection methods at one budget and compare their selections")
    selector_parser_args(p)
    p.add_argument("--methods", default=S, help="comma-separated selector names, e.g. daar,random,ifd,kcenter")


def run(cfg: Config) -> int:
    summary = run_compare(cfg)
    out = Path(cfg.out or "runs/compare")
    for r in summary["runs"]:
        print(f"{r['method']:<20} {r['status']:<7} {r['seconds']:>8.1f} s" + (f"  {r['error']}" if r["error"] else ""))
    print(f"comparison: {out}/comparison.md  {out}/comparison.csv  {out}/comparison.html")
    if summary.get("report"):
        print(f"report: {summary['report']}")
    return 0 if all(r["status"] == "ok" for r in summary["runs"]) else 1
