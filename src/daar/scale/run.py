"""A streamed `daar select`: plan shards, fit on the probe set (driver), score shards (local or Ray),
select in O(budget) memory, write the outputs.

    plan (one pass over the bytes) -> ids (one parsing pass: the in-memory id policy, daar.scale.ids)
    -> probe set (one more pass over the shards that hold probe records, when sampled from the pool)
    -> DaaRModel.fit on the driver (stage store, as in memory) -> model.npz in the shard folder
    -> pending shards scored by the backend (each committed alone) -> selection over the score shards
    -> selected.jsonl / scores.parquet / rejects.jsonl / domains/ / report.html / manifest.json

The outputs are the in-memory run's, written by the same code where it needs no pool in memory
(daar.runs.outputs: RunFiles, the domains/ writer, the manifest's head; daar.report.html: the page),
so the manifest lists every file and a rerun removes what this run did not write.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from daar.data.pool import Pool
from daar.data.render import Renderer
from daar.errors import ConfigError, InputError
from daar.io import fingerprint
from daar.report.html import render_report
from daar.runs.outputs import RunFiles, check_counts, manifest_head, write_domain_files, write_report_file
from daar.scale.ids import StreamIds, assign_stream_ids
from daar.scale.outputs import Picked, stream_report_data, write_rejects, write_scores, write_selected
from daar.scale.resume import ShardDir
from daar.scale.select import SCORE_COLUMN, STREAMING_METHODS, select_streaming
from daar.scale.shards import ShardPlan, plan_shards, read_shard

log = logging.getLogger(__name__)


def plan_for(cfg) -> ShardPlan:
    i = cfg.input
    if not i.data:
        raise ConfigError("--data is required (the pool to select from)")
    return plan_shards(i.data, i.format, cfg.scale.shard_size, i.schema)


def streams(cfg) -> bool:
    """True when `cfg` asks for a streamed selection and its method can stream.

    A method that needs the whole pool in memory runs in memory when the pool is at most
    --memory-limit rows (False), and stops with an error above it.
    """
    if not cfg.scale.streaming:
        return False
    if cfg.selection.until:
        raise ConfigError("--until runs the in-memory pipeline; drop --stream / --backend ray to stop after a stage")
    method, limit = cfg.selection.method, cfg.scale.memory_limit
    if method in STREAMING_METHODS:
        return True
    rows = plan_for(cfg).n_rows
    if rows <= limit:
        log.warning("--method %s needs the pool in memory; %d records are within --memory-limit %d, so it runs "
                    "in memory in this process", method, rows, limit)
        return False
    raise ConfigError(f"--method {method} needs the whole pool in memory, and the pool has {rows} records, above "
                      f"--memory-limit {limit} (~34 KB of memory each in memory). Stream with one of "
                      f"{', '.join(STREAMING_METHODS)}, select from a sample of the pool, or raise --memory-limit "
                      "on a machine with the memory")


def probe_from_pool(cfg, ids: StreamIds, n_domains: int) -> Pool:
    """The in-memory probe set exactly (Pool.sample's positions among the usable records), streamed."""
    plan, counts = ids.plan, ids.counts
    if cfg.input.on_bad_record == "error":  # the probe set is drawn from every shard: stop before fitting
        ids.raise_first_reject()
    n = sum(counts)
    if n == 0:
        raise InputError(plan.path, f"all {plan.n_rows} records were rejected", "Check the file's schema; see --schema")
    size = min(cfg.probes.probe_size or min(5000, max(1, n // 4)), n)
    positions = (np.arange(n) if size >= n else
                 np.sort(np.random.default_rng(cfg.run.seed).choice(n, size, replace=False)))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    records = []
    for j, spec in enumerate(plan.shards):
        local = positions[(positions >= offsets[j]) & (positions < offsets[j + 1])] - offsets[j]
        if len(local):
            shard_records = read_shard(spec, plan.schema, cfg.input.on_bad_record, plan.schema_from)[0]
            records.extend(shard_records[int(p)] for p in local)
    probe = Pool(tuple(records), Renderer.named(cfg.input.template), (), plan.path, plan.schema)
    if probe.n < 2 * n_domains:
        raise ConfigError(f"the probe set has {probe.n} records, too few to pseudo-label {n_domains} domains and "
                          "train the probes; give a bigger pool, --probe-size or --probe-data")
    return probe


class Fitted(NamedTuple):
    model: Any  # DaaRModel
    runner: Any  # the StageRunner that ran (or reused) the stages
    probe: Pool
    attempt_log: Path  # the synthesis attempt log in the stage store (absent when every domain gave examples)


def fit(cfg, ids: StreamIds, generator: Any | None = None) -> Fitted:
    """DaaR fitted on the driver, exactly as in memory."""
    from daar.method import DaaRModel, StageRunner, StageStore
    from daar.method.pipeline import build_pipeline, generator_for
    from daar.method.pseudolabels import probe_set
    from daar.synth.domains import load_domains

    domains = load_domains(cfg.synthesis.domains)
    probe = (probe_set(cfg, None, len(domains)) if cfg.probes.probe_data
             else probe_from_pool(cfg, ids, len(domains)))
    runner = StageRunner(StageStore(cfg.features.stage_cache))
    pipeline = build_pipeline(cfg, probe, generator=generator_for(cfg, domains, backend=generator))
    model = DaaRModel.from_pipeline(pipeline, runner)
    # where Resources.attempt_log finds it in memory: the synthesis stage's work folder
    return Fitted(model, runner, probe, runner.store.workdir(pipeline.synthesis) / "attempts.jsonl")


def score(cfg, plan: ShardPlan, sdir: ShardDir, model_path: str | None) -> dict[str, Any]:
    """Score the shards not done yet on the chosen backend; returns what ran."""
    from daar.scale.score import task_settings

    s = cfg.scale
    pending = sdir.pending(plan.shards)
    settings = task_settings(sdir.root, sdir.scorer, plan, cfg, model_path)
    t0 = time.perf_counter()
    if s.backend == "ray":
        from daar.scale.ray_backend import run_ray

        run_ray(pending, settings, s.ray_address, s.workers, s.worker_cpus)
    else:
        from daar.scale.local import run_local

        run_local(pending, settings)
    return {"shards": len(plan.shards), "shards_scored": len(pending), "shards_reused": len(plan.shards) - len(pending),
            "score_seconds": round(time.perf_counter() - t0, 3)}


def run_streaming(cfg, generator: Any | None = None) -> dict[str, Any]:
    """The streamed `daar select` (see the module docstring); returns the manifest."""
    from daar.settings import parse_budget

    t0 = time.perf_counter()
    method, s = cfg.selection.method, cfg.scale
    out = Path(cfg.run.out or "runs/select")
    timings: dict[str, float] = {}
    plan = plan_for(cfg)
    timings["plan"] = time.perf_counter() - t0
    ids = assign_stream_ids(plan, cfg.input.on_bad_record)  # one parsing pass over the pool
    plan = ids.plan
    timings["ids"] = time.perf_counter() - t0 - timings["plan"]
    fitted = model = None
    sdir_root = Path(s.shard_dir or out / "shards")
    model_path = None
    if method == "daar":
        t1 = time.perf_counter()
        fitted = fit(cfg, ids, generator)
        model = fitted.model
        model_path = str(model.save(sdir_root / f"model-{model.fingerprint}.npz"))
        timings["fit"] = time.perf_counter() - t1
    scorer = fingerprint("scores", 2, method if model is None else model.fingerprint, cfg.lm.device or "auto",
                         cfg.lm.dtype)
    sdir = ShardDir(sdir_root, scorer)
    info = score(cfg, plan, sdir, model_path)
    timings["score"] = info["score_seconds"]
    summaries = sdir.summaries(plan.shards)
    n, rejected = sum(x["records"] for x in summaries), sum(x["rejected"] for x in summaries)
    if n == 0:
        raise InputError(plan.path, f"all {rejected} records were rejected", "Check the file's schema; see --schema")
    budget = parse_budget(cfg.selection.budget, n)
    t1 = time.perf_counter()
    sel = select_streaming(method, sdir, plan.shards, summaries, cfg, budget, model)
    timings[f"select:{method}"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    files = RunFiles(out)
    manifest, picked = write_all(cfg, plan, sdir, sel, fitted, files, method, n, rejected)
    manifest["select_seconds"] = round(timings[f"select:{method}"], 3)  # as in memory: the method's own time
    manifest["id_changes"] = [c.as_dict() for c in ids.changes]  # as the in-memory manifest lists them
    if fitted is not None:
        manifest["stages"] = [r.as_dict() for r in fitted.runner.records]
        manifest["stage_store"] = str(fitted.runner.store.root)
    manifest["scale"] = {"backend": s.backend, "workers": s.workers, "shard_size": s.shard_size,
                         "shard_dir": str(sdir.root), **info,
                         "records_per_second": round((n + rejected) / max(info["score_seconds"], 1e-9), 1),
                         "worker_peak_rss_mb": max(x.get("worker_peak_rss_mb", 0) for x in summaries)}
    timings["outputs"] = time.perf_counter() - t1
    manifest["timings_seconds"] = {k: round(v, 3) for k, v in timings.items()}
    data = stream_report_data(cfg, plan, sdir, summaries, model, picked, SCORE_COLUMN[method])
    write_report_file(files, manifest, lambda: render_report(data, manifest))
    manifest["wall_seconds"] = round(time.perf_counter() - t0, 3)
    files.finish(manifest)  # the manifest last, listing every file; then an earlier run's stale files go
    return manifest


def write_all(cfg, plan: ShardPlan, sdir: ShardDir, sel, fitted: Fitted | None, files: RunFiles, method: str,
              n: int, rejected: int) -> tuple[dict[str, Any], Picked]:
    """selected.jsonl, scores.parquet, rejects.jsonl and (DaaR) domains/; returns the manifest's head and
    what the selected.jsonl pass saw of the selection (for the report)."""
    column = SCORE_COLUMN[method]
    model = fitted.model if fitted is not None else None
    names = list(model.domain_names) if model is not None else None
    picked = write_selected(files, plan, sdir, sel.selected, method, column, names, cfg.selection.with_scores)
    if method == "daar" and not np.isfinite(sel.metadata.get("entropy_cutoff", 0.0)):
        sel.metadata["entropy_cutoff"] = picked.cutoff
    write_scores(files, plan, sdir, sel.selected, column, names)
    write_rejects(files, plan, sdir, rejected)
    if fitted is not None:
        write_domain_files(files, model, fitted.attempt_log, fitted.probe.rejected)
    k = len(sel.selected)
    counts = check_counts({"read": n + rejected, "selected": k, "not_selected": n - k, "rejected": rejected},
                          rows=plan.n_rows)
    return {**manifest_head(cfg, method, counts, plan.fingerprint, sel.metadata), "stages": []}, picked
