"""Skip-on-rerun for pipeline stages.

A stage's fingerprint is a hash of its settings and of its parents' fingerprints. Its outputs are
one .npz of arrays plus one .json of metadata under <run_dir>/stages/, written to temporary names
and renamed (the .json last, as the commit point). A rerun whose fingerprint matches loads the
stored outputs instead of recomputing; a changed setting recomputes that stage and everything
downstream, because their fingerprints change too.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


@dataclass
class StageRecord:
    name: str
    fingerprint: str
    seconds: float
    skipped: bool


STAGES = ("synthesis", "centroids", "pseudo-labels", "psi_dom", "psi_div", "scores")


class StageReached(Exception):
    """Raised after the stage named by `until` has run (for running stages one at a time)."""


@dataclass
class StageRunner:
    run_dir: Path
    records: list[StageRecord] = field(default_factory=list)
    on_start: Callable[[str], None] | None = None
    until: str | None = None  # stop (StageReached) once this stage's outputs exist

    def __post_init__(self) -> None:
        self.dir = Path(self.run_dir) / "stages"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _write(self, path: Path, writer: Callable[[Any], None], binary: bool) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb" if binary else "w") as fh:
            writer(fh)
        os.replace(tmp, path)

    def run(self, name: str, fp: str, compute: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]]
            ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Return (arrays, meta) of stage `name`, computing them only when `fp` is not already stored."""
        meta_path, arr_path = self.dir / f"{name}.json", self.dir / f"{name}.npz"
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                if meta.get("fingerprint") == fp:
                    with np.load(arr_path, allow_pickle=False) as z:
                        arrays = {k: z[k] for k in z.files}
                    self.records.append(StageRecord(name, fp, meta.get("seconds", 0.0), True))
                    self._maybe_stop(name)
                    return arrays, meta["meta"]
            except (OSError, ValueError, KeyError):
                pass  # damaged or partial outputs: recompute
        if self.on_start:
            self.on_start(name)
        t0 = time.perf_counter()
        arrays, meta = compute()
        seconds = time.perf_counter() - t0
        self._write(arr_path, lambda fh: np.savez(fh, **arrays), binary=True)
        self._write(meta_path, lambda fh: json.dump({"fingerprint": fp, "seconds": seconds, "meta": meta}, fh,
                                                    default=str, indent=1), binary=False)
        self.records.append(StageRecord(name, fp, seconds, False))
        self._maybe_stop(name)
        return arrays, meta

    def _maybe_stop(self, name: str) -> None:
        if self.until == name:
            raise StageReached(name)
