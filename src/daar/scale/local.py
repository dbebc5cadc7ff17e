"""The local backend: the same shard task as Ray, called in this process, one shard at a time."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

from daar.scale.score import ShardTask, TaskSettings
from daar.scale.shards import ShardSpec


def run_local(pending: Sequence[ShardSpec], settings: TaskSettings, show_progress: bool = True) -> list[dict[str, Any]]:
    """Score and commit `pending` shards in order; a failure leaves the shards before it committed."""
    from tqdm.auto import tqdm

    if not pending:
        return []
    task = ShardTask(settings)  # model and heads loaded once for every shard (and frozen out of the GC's scans)
    try:
        return [task.run(spec) for spec in tqdm(pending, desc="score shards", unit="shard",
                                                disable=not show_progress)]
    finally:
        gc.unfreeze()  # this process goes on (selection, outputs): let the collector see its objects again
