"""The outputs every selector writes: selected.jsonl, scores.parquet and manifest.json.

Nothing is lost silently: scores has one row per pool record read, each selected, not selected or
rejected-with-reason, and the manifest's counts satisfy read = selected + not selected + rejected.
"""

from __future__ import annotations

import json
import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from daar.selectors.base import SelectionResult
from daar.selectors.context import SelectionContext

_PACKAGES = ("daar", "torch", "transformers", "numpy", "scikit-learn", "peft", "trl", "lm-eval")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in _PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            pass
    return out


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def scores_table(ctx: SelectionContext, result: SelectionResult):
    import pandas as pd

    n = ctx.n
    selected = np.zeros(n, dtype=bool)
    selected[result.selected] = True
    data: dict[str, Any] = {"id": [r.id for r in ctx.records], "index": [r.index for r in ctx.records],
                            "line": [r.line for r in ctx.records],
                            "score": result.scores if result.scores is not None else np.full(n, np.nan)}
    data.update({k: v for k, v in result.extra_columns.items()})
    data.update({"selected": selected, "rejected": False, "reason": ""})
    frame = pd.DataFrame(data)
    if ctx.rejected:
        rej = pd.DataFrame({"id": [None] * len(ctx.rejected), "index": [r.index for r in ctx.rejected],
                            "line": [r.line for r in ctx.rejected], "selected": False, "rejected": True,
                            "reason": [r.reason for r in ctx.rejected]})
        frame = pd.concat([frame, rej], ignore_index=True).sort_values("index", kind="stable").reset_index(drop=True)
    return frame


def write_outputs(ctx: SelectionContext, result: SelectionResult, method: str,
                  extra_manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the three outputs into ctx.run_dir and return the manifest."""
    out = ctx.run_dir
    out.mkdir(parents=True, exist_ok=True)
    with_scores = ctx.cfg.with_scores and result.scores is not None
    domains = result.extra_columns.get("pseudo_domain")
    lines = []
    for i in result.selected:
        row = dict(ctx.records[i].raw)
        if with_scores:
            row["daar_entropy"] = float(result.scores[i])
            if domains is not None:
                row["daar_domain"] = str(domains[i])
        lines.append(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    _atomic_text(out / "selected.jsonl", "".join(lines))
    table = scores_table(ctx, result)
    tmp = out / ".scores.parquet.tmp"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, out / "scores.parquet")
    if ctx.rejected:
        _atomic_text(out / "rejects.jsonl", "".join(
            json.dumps({"line": r.line, "index": r.index, "reason": r.reason, "record": r.raw}, ensure_ascii=False,
                       default=str) + "\n" for r in ctx.rejected))
    n_sel = len(result.selected)
    counts = {"read": ctx.n + len(ctx.rejected), "selected": n_sel, "not_selected": ctx.n - n_sel,
              "rejected": len(ctx.rejected)}
    assert counts["read"] == counts["selected"] + counts["not_selected"] + counts["rejected"]
    from daar.models.loading import model_identity

    stages = ctx.stage_runner.records if ctx.stage_runner is not None else []
    manifest = {
        "method": method, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "counts": counts,
        "config": ctx.cfg.to_dict(), "versions": package_versions(), "model": model_identity(ctx.cfg.model),
        "seed": ctx.cfg.seed,
        "stages": [{"name": s.name, "fingerprint": s.fingerprint, "seconds": round(s.seconds, 3),
                    "skipped_on_rerun": s.skipped} for s in stages],
        "timings_seconds": {k: round(v, 3) for k, v in ctx.timings.items()},
        "metadata": result.metadata,
        **(extra_manifest or {}),
    }
    _atomic_text(out / "manifest.json", json.dumps(manifest, indent=2, default=_json_default))
    return manifest


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
