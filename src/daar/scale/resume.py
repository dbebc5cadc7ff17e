"""Per-shard commits: what makes a streamed run resumable.

A shard's outputs are `<name>.parquet` (scores), `<name>.rejects.jsonl` and `<name>.done.json`,
each written atomically, the marker last: the marker is the commit point. A shard counts as done
only when its marker exists, names the same shard key (its content and position) and the same
scorer (the fitted model's fingerprint and the scoring settings), and its score file is there. So a
run killed at any moment (driver or worker, SIGKILL included) leaves only whole shards behind, a
rerun redoes exactly the others, and nothing is counted twice: every count comes from the markers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daar.io import atomic_write
from daar.scale.shards import ShardSpec


class ShardDir:
    """The folder of one streamed scoring job (`scorer` names the model + settings that score)."""

    def __init__(self, root: str | Path, scorer: str):
        self.root = Path(root)
        self.scorer = scorer

    def scores(self, spec: ShardSpec) -> Path:
        return self.root / f"{spec.name}.parquet"

    def rejects(self, spec: ShardSpec) -> Path:
        return self.root / f"{spec.name}.rejects.jsonl"

    def marker(self, spec: ShardSpec) -> Path:
        return self.root / f"{spec.name}.done.json"

    def done(self, spec: ShardSpec) -> dict[str, Any] | None:
        """The shard's summary when it is committed for this key and scorer, else None."""
        try:
            summary = json.loads(self.marker(spec).read_text())
        except (OSError, ValueError):
            return None
        if summary.get("key") != spec.key or summary.get("scorer") != self.scorer:
            return None
        if not self.scores(spec).exists():
            return None
        return summary

    def pending(self, specs: Sequence[ShardSpec]) -> list[ShardSpec]:
        return [s for s in specs if self.done(s) is None]

    def commit(self, spec: ShardSpec, summary: dict[str, Any]) -> dict[str, Any]:
        """Write the marker (after the shard's files): from now on the shard is done."""
        summary = {**summary, "key": spec.key, "scorer": self.scorer, "shard": spec.shard}
        atomic_write(self.marker(spec), json.dumps(summary, sort_keys=True))
        return summary

    def summaries(self, specs: Sequence[ShardSpec]) -> list[dict[str, Any]]:
        """Every shard's summary, in shard order; raises if one is not done (a bug, not a user error)."""
        out = []
        for s in specs:
            summary = self.done(s)
            if summary is None:
                raise RuntimeError(f"{self.marker(s)}: shard {s.shard} is not committed")
            out.append(summary)
        return out
