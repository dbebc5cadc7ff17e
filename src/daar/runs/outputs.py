"""The outputs every selector writes: selected.jsonl, scores.parquet, rejects.jsonl and manifest.json,
plus DaaR's synthesized domains (domains/) when DaaR was fitted.

Nothing is lost silently: scores has one row per pool record read, each selected, not selected or
rejected-with-reason, and the manifest's counts satisfy read = selected + not selected + rejected.
Every selector's scores.parquet has the same base columns (id, index, line, score, selected,
rejected, reason) plus the selector's own extras; `--with-scores` adds `<method>_score` (and, for
DaaR, `daar_domain`) to selected.jsonl, named by the selector that produced them.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from daar.io import atomic_write, json_default
from daar.provenance import package_versions
from daar.selectors.base import SelectionResult
from daar.selectors.context import SelectionContext


def score_column(method: str) -> str:
    return f"{method.replace('-', '_')}_score"


def scores_table(ctx: SelectionContext, result: SelectionResult):
    import pandas as pd

    n = ctx.n
    selected = np.zeros(n, dtype=bool)
    selected[result.selected] = True
    data: dict[str, Any] = {"id": [r.id for r in ctx.records], "index": [r.index for r in ctx.records],
                            "line": [r.line for r in ctx.records],
                            "score": result.scores if result.scores is not None else np.full(n, np.nan)}
    data.update(result.extra_columns)
    data.update({"selected": selected, "rejected": False, "reason": ""})
    frame = pd.DataFrame(data)
    if ctx.rejected:
        rej = pd.DataFrame({"id": [None] * len(ctx.rejected), "index": [r.index for r in ctx.rejected],
                            "line": [r.line for r in ctx.rejected], "selected": False, "rejected": True,
                            "reason": [r.reason for r in ctx.rejected]})
        frame = pd.concat([frame, rej], ignore_index=True).sort_values("index", kind="stable").reset_index(drop=True)
    return frame


def _rejects_jsonl(rejected) -> str:
    return "".join(json.dumps({"line": r.line, "index": r.index, "reason": r.reason, "record": r.raw},
                              ensure_ascii=False, default=str) + "\n" for r in rejected)


def write_domains(ctx: SelectionContext, out: Path) -> None:
    """DaaR's synthesized samples per domain, the summary and the attempt log, into out/domains/."""
    model = ctx.daar_model
    d = out / "domains"
    for name in model.domain_names:
        samples = model.samples[name]
        n_seeds = next((s["seeds"] for s in model.synthesis if s["domain"] == name), len(samples))
        atomic_write(d / f"{name}.jsonl", "".join(
            json.dumps({"phase": 1 if i < n_seeds else 2, **x}, ensure_ascii=False) + "\n"
            for i, x in enumerate(samples)))
    atomic_write(d / "summary.json", json.dumps(model.synthesis, indent=1))
    log_path = ctx.resources.attempt_log(ctx.pool)
    if log_path is not None and log_path.exists():
        atomic_write(d / "attempts.jsonl", log_path.read_bytes())
    probe = ctx.resources.probes.get(ctx.pool.fingerprint)
    if probe is not None and probe.rejected:
        atomic_write(out / "probe_rejects.jsonl", _rejects_jsonl(probe.rejected))


def write_outputs(ctx: SelectionContext, result: SelectionResult, method: str, out: str | Path,
                  extra_manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the outputs into `out` and return the manifest."""
    out = Path(out)
    cfg = ctx.cfg
    with_scores = cfg.selection.with_scores
    domains = result.extra_columns.get("pseudo_domain")
    col = score_column(method)
    lines = []
    for i in result.selected:
        row = dict(ctx.records[i].raw)
        if with_scores:
            value = float(result.scores[i]) if result.scores is not None else float("nan")
            row[col] = value if np.isfinite(value) else None  # a method without scores writes null
            if domains is not None:
                row[f"{method.replace('-', '_')}_domain"] = str(domains[i])
        lines.append(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    atomic_write(out / "selected.jsonl", "".join(lines))
    buf = io.BytesIO()
    scores_table(ctx, result).to_parquet(buf, index=False)
    atomic_write(out / "scores.parquet", buf.getvalue())
    if ctx.rejected:
        atomic_write(out / "rejects.jsonl", _rejects_jsonl(ctx.rejected))
    else:
        (out / "rejects.jsonl").unlink(missing_ok=True)  # stale from an earlier run on other data
    if ctx.resources.daar_fitted:
        write_domains(ctx, out)
    n_sel = len(result.selected)
    counts = {"read": ctx.n + len(ctx.rejected), "selected": n_sel, "not_selected": ctx.n - n_sel,
              "rejected": len(ctx.rejected)}
    if counts["read"] != counts["selected"] + counts["not_selected"] + counts["rejected"]:
        raise RuntimeError(f"record counts do not add up: {counts}")
    from daar.models.loading import model_identity

    manifest = {
        "method": method, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "counts": counts,
        "config": cfg.to_dict(nested=True), "versions": package_versions(), "model": model_identity(cfg.lm.model),
        "seed": cfg.run.seed, "pool_fingerprint": ctx.pool.fingerprint, "score_column": col,
        "stage_store": str(ctx.resources.stages.store.root),
        "stages": [s.as_dict() for s in ctx.resources.stages.records],
        "timings_seconds": {k: round(v, 3) for k, v in ctx.resources.timings.items()},
        "metadata": result.metadata,
        **(extra_manifest or {}),
    }
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2, default=json_default))
    return manifest
