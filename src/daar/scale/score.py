"""The streaming map: records -> scores, and the shard task both backends run.

`RecordScorer` loads the truncated model and the fitted heads once and turns a batch of records
into what selection and the report need per record (predicted entropy, domain probabilities and
argmax, token length, the word counts of the length baselines); pool features are dropped unless
`keep_features`. `ShardTask` reads one shard, scores it and commits it (daar.scale.resume). The
local backend calls one `ShardTask` in-process; the Ray backend makes it the callable class of a
Ray Data `map_batches`, so both run exactly this code.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daar.data.records import Record

log = logging.getLogger(__name__)

SCORES_VERSION = 1  # bump when the columns or their meaning change: old shards are then redone


@dataclass(frozen=True)
class TaskSettings:
    """Everything a shard task needs, as plain values (it travels to Ray actors)."""

    shard_dir: str
    scorer: str  # ShardDir's scorer identity
    schema: str
    schema_from: int
    on_bad_record: str
    template: str
    model_path: str | None = None  # a saved DaaRModel (.npz); None: no model (random, length baselines)
    device: str | None = None
    feature_cache: str | None = None
    # rows per forward pass; None: batches are cut by the token budget alone, as the in-memory extractor
    # (features.job.extractor_for) cuts them. --batch-size is the ifd / deita scorers' setting, not this one.
    batch_size: int | None = None
    batch_tokens: int | None = None  # --feature-batch-tokens; None: the device's default (features.extract)
    keep_features: bool = False
    threads: int | None = None  # torch threads of a CPU worker

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RecordScorer:
    """Records -> score columns; the model and heads are loaded once, at construction."""

    def __init__(self, model_path: str, device: str | None = None, feature_cache: str | None = None,
                 batch_size: int | None = None, batch_tokens: int | None = None, keep_features: bool = False):
        from daar.method.model import DaaRModel

        self.model = DaaRModel.load(model_path, feature_cache=feature_cache, device=device)
        self.model.features.show_progress = False
        self.loaded = self.model.features.loaded  # load the truncated model now, not on the first batch
        self.batch_size, self.batch_tokens, self.keep_features = batch_size, batch_tokens, keep_features

    @property
    def renderer(self):
        return self.model.features.renderer

    def features(self, records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features and token lengths of `records` (batched longest first by token budget)."""
        from daar.features.extract import embed_token_ids

        ex = self.model.features
        texts = [ex.renderer.render(r) for r in records]
        ids = self.loaded.tokenizer(texts, truncation=True, max_length=ex.max_length,
                                    add_special_tokens=True)["input_ids"]
        lengths = np.array([len(x) for x in ids], dtype=np.int32)
        if self.keep_features:  # through the feature store, which keeps them (and reuses earlier ones)
            return ex(list(records)), lengths
        return embed_token_ids(self.loaded, ids, ex.layer, ex.pooling, ex.max_length, self.batch_size,
                               self.batch_tokens), lengths

    def __call__(self, records: Sequence[Record]) -> dict[str, np.ndarray]:
        if not records:
            return {"entropy": np.zeros(0), "domain": np.zeros(0, np.int16), "tokens": np.zeros(0, np.int32),
                    **{f"p_{n}": np.zeros(0, np.float32) for n in self.model.domain_names}}
        feats, lengths = self.features(records)
        s = self.model.predict(feats)
        return {"entropy": s.entropy.astype(np.float64), "domain": s.domain.astype(np.int16), "tokens": lengths,
                **{f"p_{n}": s.probs[:, i].astype(np.float32) for i, n in enumerate(s.names)}}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    Linux: VmHWM, the high-water mark of this address space. Not ru_maxrss: a process started by
    fork + exec inherits its parent's ru_maxrss, so a small worker of a big parent would report the
    parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 1024), 1)  # bytes on macOS, KiB on Linux


def base_columns(records: Sequence[Record], shard: int) -> dict[str, Any]:
    """The columns every streamed selector reads (no model needed)."""
    from daar.selectors.baselines.common import query_text, word_count

    return {"index": np.array([r.index for r in records], dtype=np.int64),
            "line": np.array([r.line for r in records], dtype=np.int64),
            "id": [r.id for r in records],
            "shard": np.full(len(records), shard, dtype=np.int32),
            "row": np.arange(len(records), dtype=np.int32),
            "instruction_words": np.array([word_count(query_text(r)) for r in records], dtype=np.int32),
            "output_words": np.array([word_count(r.output) for r in records], dtype=np.int32)}


def _rejects_jsonl(path: str, rejected) -> str:
    return "".join(json.dumps({"line": r.line, "index": r.index, "reason": r.reason, "record": r.raw},
                              ensure_ascii=False, default=str) + "\n" for r in rejected)


class ShardTask:
    """Read, score and commit shards: `task(spec)` -> the shard's summary (also a Ray callable class)."""

    def __init__(self, settings: dict[str, Any] | TaskSettings):
        from daar.scale.resume import ShardDir

        self.s = settings if isinstance(settings, TaskSettings) else TaskSettings(**settings)
        if self.s.threads:
            import torch

            torch.set_num_threads(self.s.threads)
        self.dir = ShardDir(self.s.shard_dir, self.s.scorer)
        self.scorer = None
        if self.s.model_path:
            self.scorer = RecordScorer(self.s.model_path, self.s.device, self.s.feature_cache, self.s.batch_size,
                                       self.s.batch_tokens, self.s.keep_features)
        # The model, the heads and every imported module live as long as the task: move them out of the
        # cyclic collector's sight, so the collections that a shard's many small objects (records, rows,
        # token lists) trigger do not rescan them each time (measured: 0.9 s -> 0.25 s of GC per 20k records).
        gc.collect()
        gc.freeze()

    def run(self, spec) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from daar.io import atomic_write
        from daar.scale.shards import read_shard

        t0 = time.perf_counter()
        records, rejected = read_shard(spec, self.s.schema, self.s.on_bad_record, self.s.schema_from)
        cols = base_columns(records, spec.shard)
        if self.scorer is not None:
            cols.update(self.scorer(records))
        table = pa.table(cols)
        atomic_write(self.dir.scores(spec), lambda fh: pq.write_table(table, fh), binary=True)
        atomic_write(self.dir.rejects(spec), _rejects_jsonl(spec.path, rejected))
        domain_counts = None
        if self.scorer is not None:
            k = len(self.scorer.model.domain_names)
            domain_counts = np.bincount(cols["domain"], minlength=k).tolist()
        summary = {"records": len(records), "rejected": len(rejected), "rows": spec.n_rows,
                   "domain_counts": domain_counts, "seconds": round(time.perf_counter() - t0, 3),
                   "worker": f"{os.uname().nodename}:{os.getpid()}",
                   "worker_peak_rss_mb": peak_rss_mb()}  # so a run shows what a worker needs
        if summary["records"] + summary["rejected"] != spec.n_rows:
            raise RuntimeError(f"{spec.name}: read {summary['records']} + {summary['rejected']} of {spec.n_rows} rows")
        return self.dir.commit(spec, summary)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ray Data's entry point: a batch of shard specs (JSON text) -> their summaries."""
        from daar.errors import DaarError
        from daar.scale.shards import ShardSpec

        done = []
        for text in batch["spec"]:
            spec = ShardSpec.from_dict(json.loads(text))
            try:
                done.append(self.run(spec))
            except DaarError as exc:  # the user's error, as a row: Ray's wrappers would bury its message
                done.append({"shard": spec.shard, "error": str(exc)})
        return {"summary": np.array([json.dumps(d) for d in done], dtype=object)}


def task_settings(shard_dir: str | Path, scorer: str, plan, cfg, model_path: str | None,
                  threads: int | None = None) -> TaskSettings:
    """The one place a Config and a plan become a shard task's settings (local and Ray alike)."""
    from daar.models.loading import cache_dir

    i, f = cfg.input, cfg.features
    return TaskSettings(shard_dir=str(shard_dir), scorer=scorer, schema=plan.schema, schema_from=plan.schema_from,
                        on_bad_record=i.on_bad_record, template=i.template, model_path=model_path,
                        device=cfg.lm.device, feature_cache=str(f.feature_cache or cache_dir() / "features"),
                        batch_tokens=f.feature_batch_tokens,
                        keep_features=cfg.scale.keep_features, threads=threads)
