"""The outputs every selector writes: selected.jsonl, scores.parquet, rejects.jsonl and manifest.json,
plus DaaR's synthesized domains (domains/) when DaaR was fitted.

Nothing is lost silently: scores has one row per pool record read, each selected, not selected or
rejected-with-reason, and the manifest's counts satisfy read = selected + not selected + rejected.
Every selector's scores.parquet has the same base columns (id, index, line, score, selected,
rejected, reason) plus the selector's own extras; `--with-scores` adds `<method>_score` (and, for
DaaR, `daar_domain`) to selected.jsonl, named by the selector that produced them.

No stale output: `RunFiles` writes every artifact atomically and records its name; the manifest,
written last, lists them (`files`), and then every file an earlier run wrote into the folder that
this run did not (a rejects.jsonl when nothing was rejected now, domains/ after a run without DaaR,
a report of a method that did not run) is removed, with atomic_write's temporary files left by a
killed run. Only files the previous manifest lists, or daar's own artifact names, are ever removed.
Records whose own id was replaced or rejected are listed in the manifest (`id_changes`).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from daar.io import TMP_GLOB, atomic_write, json_default
from daar.provenance import package_versions
from daar.selectors.base import SelectionResult
from daar.selectors.context import SelectionContext

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# What daar writes into a run folder: removable when a run did not write it this time, even when the
# previous manifest predates the `files` list (or a killed run never wrote its manifest).
OWN_PATTERNS = ("selected.jsonl", "scores.parquet", "rejects.jsonl", "probe_rejects.jsonl", "report.html",
                "domains/*.jsonl", "domains/summary.json")


class RunFiles:
    """The files one run writes into its folder, each atomically; `finish` writes the index last and
    removes what an earlier run left there that this run did not write."""

    def __init__(self, root: str | Path, index: str = MANIFEST):
        self.root, self.index = Path(root), index
        self.written: list[str] = []

    def write(self, rel: str, data: str | bytes | Callable[[IO[Any]], Any], **kwargs: Any) -> Path:
        path = atomic_write(self.root / rel, data, **kwargs)
        if rel not in self.written:
            self.written.append(rel)
        return path

    def _previous(self) -> set[str]:
        """What the folder's earlier run wrote: its index's `files`, plus daar's own artifact names."""
        owned: set[str] = set()
        index = self.root / self.index
        if index.is_file():
            try:
                owned |= {str(f) for f in json.loads(index.read_text()).get("files", [])}
            except (OSError, ValueError, AttributeError):
                pass  # a damaged or foreign index: fall back to the names daar always uses
        for pattern in OWN_PATTERNS:
            owned |= {str(p.relative_to(self.root)) for p in self.root.glob(pattern) if p.is_file()}
        return owned

    def finish(self, index_doc: dict[str, Any]) -> list[str]:
        """Write the index (listing every file written, itself included) and remove stale files; returns them."""
        stale = self._previous() - set(self.written) - {self.index}
        index_doc["files"] = sorted({*self.written, self.index})
        atomic_write(self.root / self.index, json.dumps(index_doc, indent=2, default=json_default))
        removed = self._remove(stale)
        if removed:
            log.info("%s: removed %d file(s) of an earlier run that this run did not write: %s", self.root,
                     len(removed), ", ".join(removed))
        return removed

    def remove_all(self) -> list[str]:
        """Remove everything an earlier run wrote here (a compare method that did not run or failed now)."""
        removed = self._remove(self._previous() | {self.index})
        if self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()
        return removed

    def _remove(self, rels: set[str]) -> list[str]:
        root = self.root.resolve()
        removed = []
        for rel in sorted(rels):
            path = (self.root / rel).resolve()
            if root not in path.parents or not path.is_file():
                continue  # never outside the folder, never a folder: the list could be hand-edited
            path.unlink(missing_ok=True)
            removed.append(rel)
            parent = path.parent
            while parent != root and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        if self.root.is_dir():
            for tmp in self.root.rglob(TMP_GLOB):  # left by a killed writer (this run holds the folder lock)
                tmp.unlink(missing_ok=True)
        return removed


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


def write_domains(ctx: SelectionContext, files: RunFiles) -> None:
    """DaaR's synthesized samples per domain, the summary and the attempt log, into out/domains/."""
    probe = ctx.resources.probes.get(ctx.pool.fingerprint)
    write_domain_files(files, ctx.daar_model, ctx.resources.attempt_log(ctx.pool),
                       probe.rejected if probe is not None else ())


def write_domain_files(files: RunFiles, model, attempt_log: Path | None, probe_rejected=()) -> None:
    """domains/<domain>.jsonl (phase 1 seeds, then phase 2), domains/summary.json and
    domains/attempts.jsonl from a fitted DaaRModel, and probe_rejects.jsonl; in memory and streamed."""
    for name in model.domain_names:
        samples = model.samples[name]
        n_seeds = next((s["seeds"] for s in model.synthesis if s["domain"] == name), len(samples))
        files.write(f"domains/{name}.jsonl", "".join(
            json.dumps({"phase": 1 if i < n_seeds else 2, **x}, ensure_ascii=False) + "\n"
            for i, x in enumerate(samples)))
    files.write("domains/summary.json", json.dumps(model.synthesis, indent=1))
    if attempt_log is not None and attempt_log.exists():
        # every chain's log beside it (attempts.jsonl, attempts-chain1.jsonl, ...: method/synthesis.py)
        for log_file in sorted(attempt_log.parent.glob("attempts*.jsonl")):
            files.write(f"domains/{log_file.name}", log_file.read_bytes())
    if probe_rejected:
        files.write("probe_rejects.jsonl", _rejects_jsonl(probe_rejected))


def _selected_jsonl(ctx: SelectionContext, result: SelectionResult, method: str) -> str:
    """The chosen records' original rows, in pool order (plus the scores with --with-scores)."""
    domains = result.extra_columns.get("pseudo_domain")
    col = score_column(method)
    lines = []
    for i in result.selected:
        row = dict(ctx.records[i].raw)
        if ctx.cfg.selection.with_scores:
            value = float(result.scores[i]) if result.scores is not None else float("nan")
            row[col] = value if np.isfinite(value) else None  # a method without scores writes null
            if domains is not None:
                row[f"{method.replace('-', '_')}_domain"] = str(domains[i])
        lines.append(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return "".join(lines)


def _counts(ctx: SelectionContext, result: SelectionResult) -> dict[str, int]:
    n_sel = len(result.selected)
    return check_counts({"read": ctx.n + len(ctx.rejected), "selected": n_sel, "not_selected": ctx.n - n_sel,
                         "rejected": len(ctx.rejected)})


def check_counts(counts: dict[str, int], rows: int | None = None) -> dict[str, int]:
    """`counts` when read = selected + not selected + rejected (and = `rows`, the rows a plan found)."""
    if counts["read"] != counts["selected"] + counts["not_selected"] + counts["rejected"] or \
            (rows is not None and counts["read"] != rows):
        raise RuntimeError(f"record counts do not add up: {counts}" + (f" for {rows} rows" if rows is not None else ""))
    return counts


def manifest_head(cfg, method: str, counts: dict[str, int], pool_fingerprint: str,
                  metadata: dict[str, Any]) -> dict[str, Any]:
    """The manifest keys every `daar select` run writes, in memory or streamed."""
    from daar.models.loading import model_identity

    return {"method": method, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "counts": counts,
            "config": cfg.to_dict(nested=True), "versions": package_versions(), "model": model_identity(cfg.lm.model),
            "seed": cfg.run.seed, "pool_fingerprint": pool_fingerprint, "score_column": score_column(method),
            "metadata": metadata}


def write_report_file(files: RunFiles, manifest: dict[str, Any], page: Callable[[], str]) -> float:
    """report.html from `page()`, its path and seconds in the manifest; returns the seconds."""
    t0 = time.perf_counter()
    manifest["report"] = str(files.write("report.html", page()))
    seconds = time.perf_counter() - t0
    manifest.setdefault("timings_seconds", {})["report"] = round(seconds, 3)
    return seconds


def write_outputs(ctx: SelectionContext, result: SelectionResult, method: str, out: str | Path,
                  extra_manifest: dict[str, Any] | None = None, report: bool = False) -> dict[str, Any]:
    """Write the outputs (and report.html when `report`) into `out`, the manifest last; return the manifest."""
    out = Path(out)
    cfg = ctx.cfg
    files = RunFiles(out)
    files.write("selected.jsonl", _selected_jsonl(ctx, result, method))
    buf = io.BytesIO()
    scores_table(ctx, result).to_parquet(buf, index=False)
    files.write("scores.parquet", buf.getvalue())
    if ctx.rejected:
        files.write("rejects.jsonl", _rejects_jsonl(ctx.rejected))
    if ctx.resources.daar_fitted:
        write_domains(ctx, files)
    manifest = {
        **manifest_head(cfg, method, _counts(ctx, result), ctx.pool.fingerprint, result.metadata),
        "stage_store": str(ctx.resources.stages.store.root),
        "stages": [s.as_dict() for s in ctx.resources.stages.records],
        "timings_seconds": {k: round(v, 3) for k, v in ctx.resources.timings.items()},
        "id_changes": [c.as_dict() for c in getattr(ctx.pool, "id_changes", ())],
        **(extra_manifest or {}),
    }
    if report:
        from daar.report.html import report_html

        ctx.resources.timings["report"] = write_report_file(files, manifest,
                                                            lambda: report_html(ctx, result, manifest))
    files.finish(manifest)
    return manifest
