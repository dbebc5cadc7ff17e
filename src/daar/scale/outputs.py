"""A streamed run's outputs, written in passes over the shards (memory: one shard plus the budget).

The files and their columns are those of daar.runs.outputs (selected.jsonl with the original rows
in pool order, scores.parquet with one row per record read, rejects.jsonl), plus `shard` and `row`
in scores.parquet, so a score can be traced to its shard file. Each is written through the run's
`RunFiles`, so the manifest lists it and a rerun's stale-file cleanup works as in memory. What
report.html shows is gathered here too (`stream_report_data`): the selection's pseudo-domain counts
from the pass that writes selected.jsonl, the pool's from the shard markers, the score histogram
from two passes over one score column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daar.runs.outputs import RunFiles
from daar.scale.resume import ShardDir
from daar.scale.shards import ShardPlan, ShardSpec, iter_rows


def _by_shard(specs: Sequence[ShardSpec], selected: np.ndarray) -> dict[int, np.ndarray]:
    firsts = np.array([s.first_index for s in specs], dtype=np.int64)
    where = np.searchsorted(firsts, selected, side="right") - 1
    return {j: selected[where == j] for j in np.unique(where)}


def _lookup(sdir: ShardDir, spec: ShardSpec, column: str | None, wanted: np.ndarray) -> dict[int, tuple]:
    """index -> (score, domain) of the wanted rows of one shard."""
    import pyarrow.parquet as pq

    cols = ["index"] + ([column] if column else []) + (["domain"] if column == "entropy" else [])
    t = pq.read_table(sdir.scores(spec), columns=cols)
    index = t.column("index").to_numpy()
    pos = np.flatnonzero(np.isin(index, wanted))
    score = t.column(column).to_numpy()[pos] if column else np.full(len(pos), np.nan)
    dom = t.column("domain").to_numpy()[pos] if column == "entropy" else np.full(len(pos), -1)
    return {int(index[p]): (float(s), int(d)) for p, s, d in zip(pos, score, dom, strict=True)}


@dataclass
class Picked:
    """What the selected.jsonl pass saw of the selection: its lowest score and its pseudo-domains."""

    lowest: float = np.inf  # the lowest finite selected score (inf: none)
    domain_counts: np.ndarray | None = None  # selected records per pseudo-domain (DaaR)

    @property
    def cutoff(self) -> float:
        return float(self.lowest) if np.isfinite(self.lowest) else float("nan")


def write_selected(files: RunFiles, plan: ShardPlan, sdir: ShardDir, selected: np.ndarray, method: str,
                   score_column: str | None, domain_names: Sequence[str] | None, with_scores: bool) -> Picked:
    """selected.jsonl, the original rows in pool order; returns what it saw of the selection."""
    col = f"{method.replace('-', '_')}_score"
    picked = Picked(domain_counts=None if domain_names is None else np.zeros(len(domain_names), np.int64))

    def write(fh) -> None:
        for j, wanted in _by_shard(plan.shards, selected).items():
            spec = plan.shards[j]
            found = _lookup(sdir, spec, score_column, wanted)
            finite = [s for s, _ in found.values() if np.isfinite(s)]
            picked.lowest = min([picked.lowest, *finite])
            if picked.domain_counts is not None:
                doms = np.array([d for _, d in found.values()], dtype=np.int64)
                picked.domain_counts += np.bincount(doms, minlength=len(picked.domain_counts))
            for index, _, row in iter_rows(spec, set(wanted.tolist())):
                row = dict(row)
                if with_scores:
                    score, dom = found[index]
                    row[col] = score if np.isfinite(score) else None  # a method without scores writes null
                    if domain_names is not None:
                        row[f"{method.replace('-', '_')}_domain"] = str(domain_names[dom])
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    files.write("selected.jsonl", write, binary=False)
    return picked


def _read_rejects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _schema(domain_names: Sequence[str] | None):
    import pyarrow as pa

    fields = [("id", pa.string()), ("index", pa.int64()), ("line", pa.int64()), ("score", pa.float64())]
    if domain_names is not None:
        fields += [(f"p_{n}", pa.float32()) for n in domain_names] + [("pseudo_domain", pa.string())]
    fields += [("selected", pa.bool_()), ("rejected", pa.bool_()), ("reason", pa.string()),
               ("shard", pa.int32()), ("row", pa.int32())]
    return pa.schema(fields)


def _shard_frame(sdir: ShardDir, spec: ShardSpec, selected: np.ndarray, score_column: str | None,
                 domain_names: Sequence[str] | None, schema):
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(sdir.scores(spec))
    rej = _read_rejects(sdir.rejects(spec))
    n, m = t.num_rows, len(rej)
    index = np.concatenate([t.column("index").to_numpy(), np.array([r["index"] for r in rej], dtype=np.int64)])
    score = t.column(score_column).to_numpy().astype(np.float64) if score_column else np.full(n, np.nan)
    cols: dict[str, Any] = {
        "id": t.column("id").to_pylist() + [None] * m, "index": index,
        "line": np.concatenate([t.column("line").to_numpy(), np.array([r["line"] for r in rej], dtype=np.int64)]),
        "score": np.concatenate([score, np.full(m, np.nan)])}
    if domain_names is not None:
        for name in domain_names:
            cols[f"p_{name}"] = np.concatenate([t.column(f"p_{name}").to_numpy(), np.full(m, np.nan, np.float32)])
        names = np.array(domain_names, dtype=object)[t.column("domain").to_numpy()]
        cols["pseudo_domain"] = list(names) + [None] * m
    cols.update({"selected": np.isin(index, selected), "rejected": np.r_[np.zeros(n, bool), np.ones(m, bool)],
                 "reason": [""] * n + [r["reason"] for r in rej],
                 "shard": np.full(n + m, spec.shard, np.int32),
                 "row": np.concatenate([t.column("row").to_numpy(), np.full(m, -1, np.int32)])})
    table = pa.table(cols, schema=schema)
    return table.take(np.argsort(index, kind="stable"))


def write_scores(files: RunFiles, plan: ShardPlan, sdir: ShardDir, selected: np.ndarray, score_column: str | None,
                 domain_names: Sequence[str] | None) -> None:
    """scores.parquet: one row per record read (rejects included), in pool order, one shard at a time."""
    import pyarrow.parquet as pq

    schema = _schema(domain_names)

    def write(fh) -> None:
        with pq.ParquetWriter(fh, schema) as w:
            for spec in plan.shards:
                w.write_table(_shard_frame(sdir, spec, selected, score_column, domain_names, schema))

    files.write("scores.parquet", write, binary=True)


def write_rejects(files: RunFiles, plan: ShardPlan, sdir: ShardDir, n_rejected: int) -> None:
    """rejects.jsonl, the shards' rejects in pool order; none written when nothing was rejected (an
    earlier run's is then stale, and RunFiles.finish removes it)."""
    if not n_rejected:
        return

    def write(fh) -> None:
        for spec in plan.shards:
            fh.write(sdir.rejects(spec).read_text(encoding="utf-8"))

    files.write("rejects.jsonl", write, binary=False)


def stream_histogram(sdir: ShardDir, specs: Sequence[ShardSpec], column: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The report's score histogram over every shard's `column`, one shard in memory at a time: the
    pool's finite range first, then each shard's counts in the same bins (so the bins are those of
    the in-memory histogram of all scores)."""
    from daar.report.html import score_histogram
    from daar.scale.select import shard_columns

    lo, hi = np.inf, -np.inf
    for cols in shard_columns(sdir, specs, [column]):
        v = cols[column].astype(np.float64)
        v = v[np.isfinite(v)]
        if len(v):
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    if not np.isfinite(lo):
        return None
    counts, edges = None, None
    for cols in shard_columns(sdir, specs, [column]):
        c, edges = score_histogram(cols[column], (lo, hi))
        counts = c if counts is None else counts + c
    return counts, edges


# the one report section a streamed run leaves out, and why
NO_PCA = ("PCA of the pool's features: not drawn. A streamed run never holds the pool's features in memory "
          "(only per-record scores are kept; --keep-features stores features in the feature store, not in "
          "this process); run without --stream on a pool that fits in memory to see it.")


def stream_report_data(cfg, plan: ShardPlan, sdir: ShardDir, summaries: Sequence[dict], model, picked: Picked,
                       score_column: str | None):
    """What report.html shows for a streamed run (daar.report.html.ReportData), from the score shards,
    the shard markers and the selected.jsonl pass; memory: one shard column at a time."""
    from daar.report.html import ReportData

    pool_domains = None
    if model is not None:
        pool_domains = np.sum([s["domain_counts"] for s in summaries], axis=0).astype(np.int64)
    return ReportData(source=str(plan.path), layer=str(cfg.features.layer),
                      min_naming_margin=cfg.selection.min_naming_margin,
                      histogram=stream_histogram(sdir, plan.shards, score_column) if score_column else None,
                      cutoff=picked.cutoff, model=model, pool_domains=pool_domains,
                      selected_domains=picked.domain_counts, notes=(NO_PCA,) if model is not None else ())
