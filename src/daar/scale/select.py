"""Selection over score shards in O(budget) memory: the same picks as the in-memory selectors.

Top-k keeps a bounded set of at most k (score, index) pairs and merges each shard into it, ranking
as `daar.selectors.base.top_k` does (highest first, ties by pool order, NaN last). The quota
strategies (customized, balanced) split the budget with the same `allocate` over the pseudo-domain
counts the shard markers carry, then keep one bounded set per domain. Random draws the same
positions as the in-memory random selector (same generator, same n) and maps them to shards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from daar.scale.resume import ShardDir
from daar.scale.shards import ShardSpec

STREAMING_METHODS = ("daar", "random", "instruction-length", "output-length")
# the score column of each streamed method in the score shards (random has none)
SCORE_COLUMN = {"daar": "entropy", "instruction-length": "instruction_words", "output-length": "output_words",
                "random": None}


class BoundedTopK:
    """The k highest (score, index) pairs seen so far; memory O(k + one shard)."""

    def __init__(self, k: int):
        self.k = k
        self.scores = np.zeros(0, dtype=np.float64)
        self.index = np.zeros(0, dtype=np.int64)

    def add(self, scores: np.ndarray, index: np.ndarray) -> None:
        if self.k <= 0 or not len(scores):
            return
        s = np.where(np.isnan(scores), -np.inf, np.asarray(scores, dtype=np.float64))
        cs, ci = np.concatenate([self.scores, s]), np.concatenate([self.index, np.asarray(index, np.int64)])
        if len(cs) > self.k:
            keep = np.lexsort((ci, -cs))[: self.k]  # by score descending, then pool order
            cs, ci = cs[keep], ci[keep]
        self.scores, self.index = cs, ci

    def cutoff(self) -> float:
        return float(self.scores.min()) if len(self.scores) else float("nan")


@dataclass
class Selection:
    selected: np.ndarray  # pool indices, ascending
    metadata: dict[str, Any] = field(default_factory=dict)


def shard_columns(sdir: ShardDir, specs: Sequence[ShardSpec], columns: Sequence[str]) -> Iterator[dict[str, np.ndarray]]:
    """`columns` of each score shard in order, one shard in memory at a time."""
    import pyarrow.parquet as pq

    for spec in specs:
        table = pq.read_table(sdir.scores(spec), columns=list(columns))
        yield {c: table.column(c).to_numpy(zero_copy_only=False) for c in columns}


def top_k_streaming(sdir: ShardDir, specs: Sequence[ShardSpec], column: str, k: int) -> tuple[np.ndarray, dict]:
    best = BoundedTopK(k)
    total, n = 0.0, 0
    for cols in shard_columns(sdir, specs, [column, "index"]):
        best.add(cols[column], cols["index"])
        total, n = total + float(np.sum(cols[column], dtype=np.float64)), n + len(cols[column])
    return np.sort(best.index), {"cutoff": best.cutoff(), "mean_pool": total / max(n, 1),
                                 "mean_selected": float(best.scores.mean()) if len(best.scores) else float("nan")}


def quota_streaming(sdir: ShardDir, specs: Sequence[ShardSpec], quotas: np.ndarray) -> np.ndarray:
    groups = [BoundedTopK(int(q)) for q in quotas]
    for cols in shard_columns(sdir, specs, ["entropy", "domain", "index"]):
        for g, best in enumerate(groups):
            if best.k > 0:
                m = cols["domain"] == g
                best.add(cols["entropy"][m], cols["index"][m])
    chosen = [b.index for b in groups if len(b.index)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def random_streaming(sdir: ShardDir, specs: Sequence[ShardSpec], counts: Sequence[int], budget: int,
                     seed: int) -> np.ndarray:
    """The positions the in-memory random selector draws (same generator), as pool indices."""
    from daar.selectors.baselines.common import rng_for

    n = int(sum(counts))
    picked = np.sort(rng_for(SimpleNamespace(cfg=SimpleNamespace(run=SimpleNamespace(seed=seed))), "random")
                     .choice(n, size=budget, replace=False))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for j, spec in enumerate(specs):
        local = picked[(picked >= offsets[j]) & (picked < offsets[j + 1])] - offsets[j]
        if len(local):
            index = next(shard_columns(sdir, [spec], ["index"]))["index"]
            out.append(index[local])
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def select_daar(sdir: ShardDir, specs: Sequence[ShardSpec], summaries: Sequence[dict], model, sel_cfg,
                budget: int) -> Selection:
    """DaaR's three strategies over the shards (the rules of daar.selectors.daar_selector)."""
    from daar.errors import ConfigError
    from daar.selectors.daar_selector import check_naming
    from daar.selectors.quotas import allocate

    names = list(model.domain_names)
    sizes = np.sum([s["domain_counts"] for s in summaries], axis=0).astype(np.int64)
    strategy = sel_cfg.strategy
    if strategy == "customized" and sel_cfg.major not in names:
        raise ConfigError(f"--major '{sel_cfg.major}' is not a domain; choose one of {', '.join(names)}")
    naming = check_naming(model, sel_cfg)
    if strategy == "top":
        selected, stats = top_k_streaming(sdir, specs, "entropy", budget)
        cutoff = stats["cutoff"]
    else:
        weights = (np.array([0.5 if n == sel_cfg.major else 0.1 for n in names]) * sizes
                   if strategy == "customized" else np.ones(len(names)))
        selected = quota_streaming(sdir, specs, allocate(sizes, weights, budget))
        cutoff = float("nan")  # filled in by the output pass, which reads the selected scores
    return Selection(selected, {"strategy": strategy, "major": sel_cfg.major, "entropy_cutoff": cutoff,
                                "domain_names": names, "pool_domain_counts": sizes.tolist(),
                                "probe_val_accuracy": model.probe_metrics.get("val_accuracy"),
                                "model_fingerprint": model.fingerprint, "synthesis": model.synthesis,
                                "naming": naming})


def select_streaming(method: str, sdir: ShardDir, specs: Sequence[ShardSpec], summaries: Sequence[dict],
                     cfg, budget: int, model=None) -> Selection:
    """Run streamed `method` over committed score shards."""
    if method == "daar":
        return select_daar(sdir, specs, summaries, model, cfg.selection, budget)
    if method == "random":
        counts = [s["records"] for s in summaries]
        return Selection(random_streaming(sdir, specs, counts, budget, cfg.run.seed), {"seed": cfg.run.seed})
    selected, stats = top_k_streaming(sdir, specs, SCORE_COLUMN[method], budget)
    return Selection(selected, {"mean_words_pool": stats["mean_pool"], "mean_words_selected": stats["mean_selected"],
                                "min_words_selected": stats["cutoff"]})
