"""report.html: one self-contained page describing a selection run.

Counts and the score histogram with the cut-off for every selector; when DaaR was fitted in the
run, the pseudo-domain mix of pool vs selection, probe accuracy and confusion matrix, the
synthesized examples per domain and the naming margins of the pseudo-domains; when the pool's
features were computed, a 2-D PCA projection (coloured by pseudo-domain when known) with selected
points marked. It reads what the run already has and computes nothing: the page is drawn from a
`ReportData` (what the run knows) and the manifest. In memory `report_data` takes it from the
selection context; a streamed run builds it from its score shards and markers
(daar.scale.outputs), and a section that needs the pool in memory is replaced by a line saying
why. Plots are PNGs embedded as data URIs, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daar.io import atomic_write
from daar.selectors.base import SelectionResult
from daar.selectors.context import SelectionContext

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l{text-align:left;max-width:640px;white-space:pre-wrap}h2{margin-top:1.6em}
.grid{display:flex;flex-wrap:wrap;gap:1em}.grid img{max-width:520px}details{margin:.3em 0}
p.note{color:#666}"""
HIST_BINS = 50  # bins of the score histogram, in memory and streamed alike (so both draw the same bars)


@dataclass(frozen=True, eq=False)
class ReportData:
    """What one run knows that the page shows; a field left None leaves its section out.

    Per-domain figures are counts (records per pseudo-domain in the pool and in the selection), the
    score distribution is a histogram, so a streamed run can give them without holding the pool.
    """

    source: str  # the pool file
    layer: str  # the probe layer (the PCA's title)
    min_naming_margin: float
    histogram: tuple[np.ndarray, np.ndarray] | None = None  # counts, edges of the finite scores (score_histogram)
    cutoff: float = float("nan")  # the lowest selected score (NaN: none)
    model: Any = None  # the fitted DaaRModel when DaaR ran
    pool_domains: np.ndarray | None = None  # records per pseudo-domain, pool
    selected_domains: np.ndarray | None = None  # records per pseudo-domain, selection
    pca: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None  # features, selected mask, groups
    notes: tuple[str, ...] = ()  # sections left out, each with the reason


def score_histogram(values: np.ndarray, value_range: tuple[float, float] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """HIST_BINS-bin histogram of the finite `values` (None: none); a streamed run passes the pool's
    finite (min, max) as `value_range` and sums the shards' counts, which gives the same bins."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v) and value_range is None:
        return None
    return np.histogram(v, bins=HIST_BINS, range=value_range)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(header: list[str], rows: list[list[Any]], left: int = 1) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="{"l" if j < left else ""}">{html.escape(_fmt(v))}</td>'
                                    for j, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _bar(names: list[str], pool_share: np.ndarray, sel_share: np.ndarray, title: str) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    x = np.arange(len(names))
    ax.bar(x - 0.2, pool_share, 0.4, label="pool")
    ax.bar(x + 0.2, sel_share, 0.4, label="selection")
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylabel("share")
    ax.set_title(title)
    ax.legend()
    return _png(fig)


def _score_hist(hist: tuple[np.ndarray, np.ndarray], cutoff: float, method: str, k: int | None) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    counts, edges = hist
    ax.hist(edges[:-1], bins=edges, weights=counts, color="#888")  # the bars of ax.hist(scores, edges)
    if np.isfinite(cutoff):
        ax.axvline(cutoff, color="red", label=f"cut-off {cutoff:.3f}")
    if k:
        ax.axvline(np.log(k), color="black", ls=":", label=f"ln K = {np.log(k):.3f}")
    ax.set_xlabel("predicted entropy" if method == "daar" else f"{method} score")
    ax.set_title("score distribution")
    ax.legend()
    return _png(fig)


def _pca(feats: np.ndarray, sel: np.ndarray, groups: np.ndarray | None, names: list[str], layer: str) -> str:
    import matplotlib.pyplot as plt

    z = feats - feats.mean(0)
    _, _, vt = np.linalg.svd(z[: min(len(z), 5000)], full_matrices=False)
    xy = z @ vt[:2].T
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if groups is None:
        ax.scatter(xy[~sel, 0], xy[~sel, 1], s=6, alpha=0.35, label="pool")
    else:
        for g, n in enumerate(names):
            m = groups == g
            ax.scatter(xy[m & ~sel, 0], xy[m & ~sel, 1], s=6, alpha=0.35, label=n)
    ax.scatter(xy[sel, 0], xy[sel, 1], s=14, facecolors="none", edgecolors="black", linewidths=0.6, label="selected")
    ax.set_title(f"pool features (layer {layer}), PCA")
    ax.legend(markerscale=2, fontsize=8)
    return _png(fig)


def _daar_sections(model, pool_counts: np.ndarray, sel_counts: np.ndarray) -> list[str]:
    names, total = model.domain_names, int(np.sum(sel_counts))
    rows = [[n, int(pool_counts[g]), int(sel_counts[g]), float(sel_counts[g]) / total if total else 0.0]
            for g, n in enumerate(names)]
    parts = ["<h2>Pseudo-domains</h2>" + _table(["domain", "pool", "selected", "share of selection"], rows)]
    pm = model.probe_metrics
    if pm.get("confusion") is not None:
        parts.append(f"<h2>Domain probe psi_dom</h2><p>validation accuracy {pm.get('val_accuracy', float('nan')):.3f} "
                     f"on {pm.get('val_n')} held-out probe samples (rows: pseudo-label, columns: prediction); "
                     f"pseudo-label counts on the probe set: {pm.get('label_counts')}</p>"
                     + _table(["", *names], [[names[i], *row] for i, row in enumerate(pm["confusion"])]))
    dv = model.div_metrics
    if dv:
        parts.append(f"<p>Diversity predictor psi_div: validation MSE {dv.get('val_mse', float('nan')):.4g}, "
                     f"Pearson r {dv.get('val_pearson', float('nan')):.3f}</p>")
    parts.append("<h2>Synthesized domain samples</h2>" + _table(
        ["domain", "seeds", "accepted (phase 2)", "attempts", "stopped by cap", "given in domains file", "fallback"],
        [[s["domain"], s["seeds"], s["augmented"], s["attempts"], s["capped"], s["given"], s.get("fallback") or ""]
         for s in model.synthesis]))
    for n in names:
        items = "".join(f"<tr><td class='l'>{html.escape(x['instruction'])}</td><td class='l'>"
                        f"{html.escape(x.get('input', ''))}</td><td class='l'>{html.escape(x['output'][:600])}</td></tr>"
                        for x in model.samples[n])
        parts.append(f"<details><summary>{html.escape(n)} ({len(model.samples[n])} samples)</summary><table><tr>"
                     f"<th>instruction</th><th>input</th><th>output</th></tr>{items}</table></details>")
    return parts


def _naming_section(model, min_margin: float) -> str:
    """How each pseudo-domain got its name and how sure that is (daar.method.naming)."""
    nm = model.naming
    if not nm.get("margins"):
        return ""
    names = model.domain_names
    order = nm.get("domain_of_cluster") or list(range(len(names)))
    cluster_of = {d: j for j, d in enumerate(order)}
    sim = nm.get("similarity") or [[float("nan")] * len(names)] * len(names)
    rows = [[n, cluster_of.get(d, d), sim[d][d], nm["margins"].get(n, float("nan")),
             "yes" if nm["margins"].get(n, float("nan")) >= min_margin else "NO"] for d, n in enumerate(names)]
    close = "".join(f"<p><b>warning</b>: {html.escape(a)} and {html.escape(b)} have centroids {sep:.2f} probe "
                    f"standard deviations apart (below {nm.get('close_separation')}): too close to tell apart; "
                    "give them more distinct descriptions or examples in domains.yaml</p>"
                    for a, b, sep in nm.get("close_pairs", []))
    return (f"<h2>Naming of the pseudo-domains</h2><p>calibration {html.escape(str(nm.get('calibration')))}, "
            f"assignment {html.escape(str(nm.get('assignment')))}, names {html.escape(str(nm.get('order')))} "
            f"({html.escape(str(nm.get('metric')))}). Margin: how much the summed similarity drops under the best "
            f"naming that gives this cluster another domain; confident at >= {min_margin:g} "
            "(--min-naming-margin; customized / balanced refuse to run otherwise).</p>"
            + _table(["domain", "cluster (initialisation order)", "similarity to its centroid", "margin",
                      "confident"], rows) + close)


def write_report(ctx: SelectionContext, result: SelectionResult, manifest: dict[str, Any], out: str | Path,
                 extra_sections: list[str] | None = None) -> Path:
    """out/report.html for any selector's run, written atomically (see report_html)."""
    return atomic_write(Path(out) / "report.html", report_html(ctx, result, manifest, extra_sections))


def report_data(ctx: SelectionContext, result: SelectionResult) -> ReportData:
    """What an in-memory run knows: DaaR's figures when DaaR was fitted in this run, the PCA when the
    pool's probe-layer features were computed (nothing is computed for the page)."""
    sel = np.zeros(ctx.n, dtype=bool)
    sel[result.selected] = True
    model = groups = pool_domains = selected_domains = None
    if ctx.resources.daar_fitted:
        model, scores = ctx.resources.daar(ctx.pool)
        groups, k = scores.domain, len(model.domain_names)
        pool_domains, selected_domains = np.bincount(groups, minlength=k), np.bincount(groups[sel], minlength=k)
    cutoff = float("nan")
    if result.scores is not None and np.isfinite(result.scores[result.selected]).any():
        cutoff = float(np.nanmin(result.scores[result.selected]))
    layer = str(ctx.cfg.features.layer)
    feats = ctx.resources.computed_features(ctx.pool, layer)
    return ReportData(source=str(ctx.pool.source), layer=layer, min_naming_margin=ctx.cfg.selection.min_naming_margin,
                      histogram=None if result.scores is None else score_histogram(result.scores), cutoff=cutoff,
                      model=model, pool_domains=pool_domains, selected_domains=selected_domains,
                      pca=None if feats is None else (feats, sel, groups))


def report_html(ctx: SelectionContext, result: SelectionResult, manifest: dict[str, Any],
                extra_sections: list[str] | None = None) -> str:
    """The page for any selector's in-memory run (see report_data and render_report)."""
    return render_report(report_data(ctx, result), manifest, extra_sections)


def _scale_section(sc: dict[str, Any]) -> str:
    """A streamed run's shards, from the manifest's `scale`."""
    return ("<h2>Shards</h2>" + _table(
        ["backend", "workers", "shard size", "shards", "scored", "reused", "records / s", "worker peak RSS (MB)"],
        [[sc.get("backend"), sc.get("workers"), sc.get("shard_size"), sc.get("shards"), sc.get("shards_scored"),
          sc.get("shards_reused"), sc.get("records_per_second"), sc.get("worker_peak_rss_mb")]], left=1))


def render_report(data: ReportData, manifest: dict[str, Any], extra_sections: list[str] | None = None) -> str:
    """The page from what the run knows (`data`) and its manifest. Runs nothing."""
    import matplotlib

    matplotlib.use("Agg")
    method, c = manifest["method"], manifest["counts"]
    parts = [f"<h1>daar selection report</h1><p>method <b>{html.escape(method)}</b>, model "
             f"<code>{html.escape(str(manifest['model']))}</code>, data "
             f"<code>{html.escape(data.source)}</code>, budget {c['selected']}</p>",
             "<h2>Counts</h2>" + _table(["read", "selected", "not selected", "rejected"],
                                        [[c["read"], c["selected"], c["not_selected"], c["rejected"]]], left=0)]
    model, plots = data.model, []
    names = list(model.domain_names) if model is not None else []
    if model is not None and data.pool_domains is not None and data.selected_domains is not None:
        pool, picked = np.asarray(data.pool_domains), np.asarray(data.selected_domains)
        plots.append(_bar(names, pool / max(1, pool.sum()), picked / max(1, picked.sum()), "pseudo-domain mix"))
    if data.histogram is not None:
        plots.append(_score_hist(data.histogram, data.cutoff, method, len(names) if method == "daar" else None))
    if data.pca is not None:
        plots.append(_pca(*data.pca, names, data.layer))
    if plots:
        parts.append('<div class="grid">' + "".join(plots) + "</div>")
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in data.notes]
    if model is not None and data.pool_domains is not None and data.selected_domains is not None:
        parts += _daar_sections(model, np.asarray(data.pool_domains), np.asarray(data.selected_domains))
        parts.append(_naming_section(model, data.min_naming_margin))
    stages = manifest.get("stages", [])
    if stages:
        parts.append("<h2>Stages</h2>" + _table(["stage", "seconds", "skipped (cached)", "fingerprint"],
                                                [[s["name"], s["seconds"], s["skipped_on_rerun"], s["fingerprint"]]
                                                 for s in stages]))
    if manifest.get("scale"):
        parts.append(_scale_section(manifest["scale"]))
    parts.extend(extra_sections or [])
    changed = manifest.get("id_changes") or []
    if changed:
        parts.append(f"<h2>Record ids</h2><p>{len(changed)} record(s) had a duplicate or unusable id and were "
                     "given a new one or rejected (all other ids are the file's own; full list: manifest.json, "
                     "id_changes)</p>" + _table(["line", "original id", "new id", "reason"],
                                                [[c["line"], c["original"], c["new"], c["reason"]]
                                                 for c in changed[:50]]))
    return f"<!doctype html><html><head><meta charset='utf-8'><title>daar report</title><style>{_CSS}</style>" \
           f"</head><body>{''.join(parts)}</body></html>"
