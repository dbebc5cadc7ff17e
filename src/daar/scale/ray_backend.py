"""The Ray backend: pool scoring as one Ray Data `map_batches` over the pending shards.

The dataset holds one row per shard (its spec); `map_batches` runs `ShardTask` as a callable class
on a fixed actor pool (--workers actors, one shard in flight each): each actor loads the truncated model and the fitted
heads once, reads its shards from the shared file system with the same reader as the local backend
(line numbers, rejects with reasons), scores them and commits each shard atomically. Ray does the
scheduling, placement (one GPU per actor when the cluster has GPUs), backpressure and actor
restarts; the summaries come back through the dataset.

Why not `read_json` / `write_parquet`: Arrow's JSON reader fails a whole file on one bad line and
keeps no line numbers, and Ray's writers name files by block and write in place, so neither a
reject with its line nor an atomic per-shard commit (the resume unit) would survive. The shard is
both the read unit and the commit unit here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from daar.errors import ConfigError, DaarError
from daar.scale.score import ShardTask, TaskSettings
from daar.scale.shards import ShardSpec

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'daar[ray]' (or ray[data]>=2.9)") from None
    return ray


def connect(address: str | None) -> bool:
    """Join `address` (or the Ray of this job, else a new local one); True when this call started Ray."""
    ray = _ray()
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(f"--ray-address {address}: cannot join the Ray cluster ({exc}); start one with "
                          "`ray start --head` or give the address `ray status` shows") from None
    return True


def placement(device: str | None, workers: int | None) -> tuple[int, bool]:
    """(actors, use GPUs): one actor per GPU of the cluster when it has GPUs, unless told otherwise."""
    gpus = int(_ray().cluster_resources().get("GPU", 0))
    use_gpu = device.startswith("cuda") if device else gpus > 0
    if use_gpu and gpus == 0:
        raise ConfigError(f"--device {device}: the Ray cluster has no GPU; drop --device or add GPU nodes")
    return workers or (gpus if use_gpu else 1), use_gpu


def run_ray(pending: Sequence[ShardSpec], settings: TaskSettings, address: str | None = None,
            workers: int | None = None, worker_cpus: int = 1) -> list[dict[str, Any]]:
    """Score `pending` shards on Ray; returns their summaries (committed shards stay on failure)."""
    if not pending:
        return []
    ray = _ray()
    started = connect(address)
    try:
        n, use_gpu = placement(settings.device, workers)
        n = min(n, len(pending))
        threads = None if use_gpu else worker_cpus
        task = TaskSettings(**{**settings.to_dict(), "threads": threads,
                               "device": settings.device or ("cuda" if use_gpu else "cpu")})
        log.info("scoring %d shards on Ray with %d %s actors", len(pending), n, "GPU" if use_gpu else "CPU")
        ds = ray.data.from_items([{"spec": json.dumps(s.to_dict())} for s in pending],
                                 override_num_blocks=len(pending))
        # One shard in flight per actor: a shard is minutes of work, and Ray's default queue of several
        # tasks per actor let the first actor that came up take every shard of a small plan (measured:
        # 2 shards, 2 workers, both scored one after the other by one actor while the other stood idle).
        pool = ray.data.ActorPoolStrategy(size=n, max_tasks_in_flight_per_actor=1)
        out = ds.map_batches(ShardTask, fn_constructor_kwargs={"settings": task.to_dict()}, batch_size=1,
                             compute=pool, num_gpus=1 if use_gpu else 0, num_cpus=worker_cpus)
        done = [json.loads(r["summary"]) for r in out.take_all()]
        errors = sorted((d for d in done if "error" in d), key=lambda d: d["shard"])
        if errors:  # every other shard is committed; the rerun redoes only the failed ones
            more = f" ({len(errors) - 1} more shards failed)" if len(errors) > 1 else ""
            raise DaarError(f"{errors[0]['error']}{more}. The other shards are committed: fix this and rerun "
                            "the same command to redo only the failed shards")
        return done
    finally:
        if started:
            ray.shutdown()
