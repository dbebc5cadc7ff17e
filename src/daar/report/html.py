"""report.html: one self-contained page describing a selection run.

Counts, pseudo-domain mix of pool vs selection, the entropy histogram with the cut-off, probe
accuracy and confusion matrix, a 2-D PCA projection of the pool features coloured by pseudo-domain
with selected points marked, and the synthesized examples per domain. Plots are PNGs embedded as
data URIs, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from daar.selectors.base import SelectionResult
from daar.selectors.context import SelectionContext

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l{text-align:left;max-width:640px;white-space:pre-wrap}h2{margin-top:1.6em}
.grid{display:flex;flex-wrap:wrap;gap:1em}.grid img{max-width:520px}details{margin:.3em 0}"""


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


def _plots(ctx: SelectionContext, result: SelectionResult, names: list[str], dom: np.ndarray) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    sel = np.zeros(ctx.n, dtype=bool)
    sel[result.selected] = True
    k = len(names)
    pool_share = np.bincount(dom, minlength=k) / max(1, ctx.n)
    sel_share = np.bincount(dom[sel], minlength=k) / max(1, sel.sum())
    fig, ax = plt.subplots(figsize=(6, 3.2))
    x = np.arange(k)
    ax.bar(x - 0.2, pool_share, 0.4, label="pool")
    ax.bar(x + 0.2, sel_share, 0.4, label="selection")
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylabel("share")
    ax.set_title("pseudo-domain mix")
    ax.legend()
    out.append(_png(fig))
    if result.scores is not None:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        s = result.scores[np.isfinite(result.scores)]
        ax.hist(s, bins=50, color="#888")
        cutoff = float(np.min(result.scores[result.selected]))
        ax.axvline(cutoff, color="red", label=f"cut-off {cutoff:.3f}")
        ax.axvline(np.log(k), color="black", ls=":", label=f"ln K = {np.log(k):.3f}")
        ax.set_xlabel("predicted entropy")
        ax.set_title("score distribution")
        ax.legend()
        out.append(_png(fig))
    feats = ctx.features(ctx.cfg.layer)
    z = feats - feats.mean(0)
    _, _, vt = np.linalg.svd(z[: min(len(z), 5000)], full_matrices=False)
    xy = z @ vt[:2].T
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for g, n in enumerate(names):
        m = dom == g
        ax.scatter(xy[m & ~sel, 0], xy[m & ~sel, 1], s=6, alpha=0.35, label=n)
    ax.scatter(xy[sel, 0], xy[sel, 1], s=14, facecolors="none", edgecolors="black", linewidths=0.6, label="selected")
    ax.set_title(f"pool features (layer {ctx.cfg.layer}), PCA")
    ax.legend(markerscale=2, fontsize=8)
    out.append(_png(fig))
    return out


def write_report(ctx: SelectionContext, result: SelectionResult, manifest: dict[str, Any],
                 extra_sections: list[str] | None = None) -> Path:
    dm = ctx.domain_model
    names = dm.domain_names
    dom = dm.pool_domain
    c = manifest["counts"]
    parts = [f"<h1>daar selection report</h1><p>method <b>{html.escape(manifest['method'])}</b>, model "
             f"<code>{html.escape(str(manifest['model']))}</code>, data <code>{html.escape(str(ctx.cfg.data))}</code>, "
             f"budget {c['selected']}</p>",
             "<h2>Counts</h2>" + _table(["read", "selected", "not selected", "rejected"],
                                        [[c["read"], c["selected"], c["not_selected"], c["rejected"]]], left=0)]
    sel = np.zeros(ctx.n, dtype=bool)
    sel[result.selected] = True
    rows = [[n, int((dom == g).sum()), int((dom[sel] == g).sum()), float((dom[sel] == g).mean()) if sel.any() else 0.0]
            for g, n in enumerate(names)]
    parts.append("<h2>Pseudo-domains</h2>" + _table(["domain", "pool", "selected", "share of selection"], rows))
    parts.append('<div class="grid">' + "".join(_plots(ctx, result, names, dom)) + "</div>")
    pm = dm.probe_metrics
    if pm.get("confusion") is not None:
        conf = pm["confusion"]
        parts.append(f"<h2>Domain probe psi_dom</h2><p>validation accuracy {pm.get('val_accuracy', float('nan')):.3f} "
                     f"on {pm.get('val_n')} held-out probe samples (rows: pseudo-label, columns: prediction); "
                     f"pseudo-label counts on the probe set: {pm.get('label_counts')}</p>"
                     + _table(["", *names], [[names[i], *row] for i, row in enumerate(conf)]))
    dv = dm.div_metrics
    if dv:
        parts.append(f"<p>Diversity predictor psi_div: validation MSE {dv.get('val_mse', float('nan')):.4g}, "
                     f"Pearson r {dv.get('val_pearson', float('nan')):.3f}</p>")
    parts.append("<h2>Synthesized domain samples</h2>" + _table(
        ["domain", "seeds", "accepted (phase 2)", "attempts", "stopped by cap", "given in domains file", "fallback"],
        [[s["domain"], s["seeds"], s["augmented"], s["attempts"], s["capped"], s["given"], s.get("fallback") or ""]
         for s in dm.synthesis]))
    for n in names:
        items = "".join(f"<tr><td class='l'>{html.escape(x['instruction'])}</td><td class='l'>"
                        f"{html.escape(x.get('input', ''))}</td><td class='l'>{html.escape(x['output'][:600])}</td></tr>"
                        for x in dm.samples[n])
        parts.append(f"<details><summary>{html.escape(n)} ({len(dm.samples[n])} samples)</summary><table><tr>"
                     f"<th>instruction</th><th>input</th><th>output</th></tr>{items}</table></details>")
    stages = manifest.get("stages", [])
    if stages:
        parts.append("<h2>Stages</h2>" + _table(["stage", "seconds", "skipped (cached)", "fingerprint"],
                                                [[s["name"], s["seconds"], s["skipped_on_rerun"], s["fingerprint"]]
                                                 for s in stages]))
    parts.extend(extra_sections or [])
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>daar report</title><style>{_CSS}</style>" \
           f"</head><body>{''.join(parts)}</body></html>"
    path = ctx.run_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
