"""A streamed run's outputs, written in passes over the shards (memory: one shard plus the budget).

The files and their columns are those of daar.runs.outputs (selected.jsonl with the original rows
in pool order, scores.parquet with one row per record read, rejects.jsonl), plus `shard` and `row`
in scores.parquet, so a score can be traced to its shard file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from daar.io import atomic_write
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


def write_selected(plan: ShardPlan, sdir: ShardDir, selected: np.ndarray, out: Path, method: str,
                   score_column: str | None, domain_names: Sequence[str] | None, with_scores: bool) -> float:
    """selected.jsonl, the original rows in pool order; returns the lowest selected score (NaN: none)."""
    col = f"{method.replace('-', '_')}_score"
    lowest = [np.inf]

    def write(fh) -> None:
        for j, wanted in _by_shard(plan.shards, selected).items():
            spec = plan.shards[j]
            found = _lookup(sdir, spec, score_column, wanted)
            lowest[0] = min([lowest[0], *(s for s, _ in found.values())])
            for index, _, row in iter_rows(spec, set(wanted.tolist())):
                row = dict(row)
                if with_scores:
                    score, dom = found[index]
                    row[col] = score if np.isfinite(score) else None  # a method without scores writes null
                    if domain_names is not None:
                        row[f"{method.replace('-', '_')}_domain"] = str(domain_names[dom])
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    atomic_write(out / "selected.jsonl", write, binary=False)
    return float(lowest[0]) if np.isfinite(lowest[0]) else float("nan")


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


def write_scores(plan: ShardPlan, sdir: ShardDir, selected: np.ndarray, out: Path, score_column: str | None,
                 domain_names: Sequence[str] | None) -> None:
    """scores.parquet: one row per record read (rejects included), in pool order, one shard at a time."""
    import pyarrow.parquet as pq

    schema = _schema(domain_names)

    def write(fh) -> None:
        with pq.ParquetWriter(fh, schema) as w:
            for spec in plan.shards:
                w.write_table(_shard_frame(sdir, spec, selected, score_column, domain_names, schema))

    atomic_write(out / "scores.parquet", write, binary=True)


def write_rejects(plan: ShardPlan, sdir: ShardDir, out: Path, n_rejected: int) -> None:
    if not n_rejected:
        (out / "rejects.jsonl").unlink(missing_ok=True)  # stale from an earlier run on other data
        return

    def write(fh) -> None:
        for spec in plan.shards:
            fh.write(sdir.rejects(spec).read_text(encoding="utf-8"))

    atomic_write(out / "rejects.jsonl", write, binary=False)
