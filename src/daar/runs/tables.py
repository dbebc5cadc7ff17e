"""The comparison's tables as JSON, CSV, Markdown and an HTML section (for report.html), from one
summary dict, so every format shows the same rows.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from daar.io import atomic_write

_COLUMNS = [("vendi", "Vendi", 2), ("log_det", "log det(I+K)", 1), ("mean_cos_distance", "mean cos dist", 4),
            ("cluster_coverage", "cluster cover", 3)]
_DAAR_COLUMNS = [("mean_entropy", "mean pred. entropy", 4), ("domain_tv", "domain TV", 3)]


def _columns(summary: dict[str, Any]) -> list[tuple[str, str, int]]:
    """The diversity columns, plus DaaR's two when the pseudo-domain diagnostics were computed."""
    return _COLUMNS + (_DAAR_COLUMNS if summary["domain_names"] else [])


def _rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per method (plus the pool itself as the reference row)."""
    rows = []
    for r in [{"method": "(pool)", "status": "reference", "seconds": None, "error": "", **summary["pool"]},
              *summary["runs"]]:
        row = {"method": r["method"], "status": r["status"], "seconds": r.get("seconds"), "n": r.get("n")}
        for key, _, _ in _columns(summary):
            row[key] = r.get(key)
        if summary["label_field"]:
            row["label_tv"] = r.get("label_tv")
        for name in summary["domain_names"] or []:
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
    cols = _columns(summary)
    head = ["method", "status", "wall s"] + [t for _, t, _ in cols] + (["label TV"] if lf else [])
    body = [[r["method"], r["status"], _fmt(r["seconds"], 1)] + [_fmt(r[k], d) for k, _, d in cols]
            + ([_fmt(r["label_tv"])] if lf else []) for r in rows]
    tables = [("Diversity and composition", head, body)]
    dn = summary["domain_names"]
    if dn:
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
             "TV = total-variation distance of the selection's mix from the pool's (0 = same mix)."
             + (" Mean pred. entropy = DaaR's predicted domain entropy averaged over the selection."
                if summary["domain_names"] else
                " Left out: the pseudo-domain mix, domain TV and mean predicted entropy, which need DaaR's "
                "stages; add daar to --methods or pass --diagnostics pseudo-domains to get them.")]
    notes += [f"{r['method']} failed: {r['error']}" for r in summary["runs"] if r["status"] != "ok"]
    if summary.get("pending"):
        notes.append("Not run yet (the comparison is still running or was stopped): " + ", ".join(summary["pending"]))
    return notes


def write_comparison(summary: dict[str, Any], out: Path) -> dict[str, Path]:
    out = Path(out)
    paths = {"json": out / "comparison.json", "csv": out / "comparison.csv", "md": out / "comparison.md",
             "html": out / "comparison.html", "overlap": out / "comparison_overlap.csv"}
    atomic_write(paths["json"], json.dumps(summary, indent=2, default=float))
    rows = _rows(summary)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(paths["csv"], buf.getvalue())
    ov = summary["overlap"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["method", *ov["methods"]])
    writer.writerows([m, *row] for m, row in zip(ov["methods"], ov["shared_fraction"], strict=True))
    atomic_write(paths["overlap"], buf.getvalue())
    md = ["# Selection methods compared", ""] + [f"- {n}" for n in _notes(summary)]
    for title, head, body in _tables(summary):
        md += ["", f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(row) + " |" for row in body]
    atomic_write(paths["md"], "\n".join(md) + "\n")
    atomic_write(paths["html"], comparison_html(summary))
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


