"""The stage mechanism: a stage's fingerprint comes from the inputs it declares, and its artifact
carries that fingerprint inside, so a stage can neither forget an input nor load a stranger's output.

A stage is a frozen dataclass. Its fields ARE its declared inputs: upstream stages, content-hashed
text sets (a Pool), feature extractors (named by their FeatureSpec: model, layer, pooling, renderer,
max length, dtype), the generator's identity and plain settings. `fingerprint` hashes the stage's
name, its `version` (bump it when the code changes what the stage computes) and every field, so
anything `compute` may read has to be a field and therefore is in the fingerprint.

Storage (`StageStore`): one `.npz` file per (stage, fingerprint) under
<root>/<stage>/<fingerprint>.npz holding the arrays plus a `__meta__` entry (JSON: stage name,
fingerprint, seconds, metadata). It is written with `daar.io.atomic_write` (temporary name, fsync,
rename), and a load checks the embedded name and fingerprint: a torn, truncated, foreign or
mismatched file is recomputed, never trusted. The root is shared by every run (default
<DAAR_CACHE>/stages), so `daar select` and `daar compare` on the same pool and settings reuse each
other's stages whatever their output folders.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from daar.io import atomic_write, fingerprint, json_default

log = logging.getLogger(__name__)

_META_KEY = "__meta__"


@dataclass
class Artifact:
    """What a stage produced: named arrays and JSON-able metadata."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageRecord:
    """One line of a run's stage log (goes into manifest.json and the report)."""

    name: str
    fingerprint: str
    seconds: float
    skipped: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fingerprint": self.fingerprint, "seconds": round(self.seconds, 3),
                "skipped_on_rerun": self.skipped}


class StageReached(Exception):
    """Raised once the stage named by `until` has its artifact (for running stages one at a time)."""


@dataclass(frozen=True, eq=False)
class Stage(ABC):
    """Base of every DaaR stage: subclasses declare their inputs as dataclass fields and implement compute()."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1

    def declared_inputs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.name, self.version, self.declared_inputs())

    @abstractmethod
    def compute(self, runner: StageRunner) -> Artifact:
        """Produce this stage's artifact; upstream stages are read with `runner.run(self.upstream)`."""


class StageStore:
    """Fingerprint-addressed artifacts; see the module docstring for the format and its guarantees."""

    def __init__(self, root: str | Path | None = None):
        if root is None:
            from daar.models.loading import cache_dir

            root = cache_dir() / "stages"
        self.root = Path(root)

    def path(self, stage: Stage) -> Path:
        return self.root / stage.name / f"{stage.fingerprint}.npz"

    def workdir(self, stage: Stage) -> Path:
        """A folder for a stage's resumable work in progress (e.g. the synthesis attempt log)."""
        path = self.root / stage.name / f"{stage.fingerprint}.work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def load(self, stage: Stage) -> tuple[Artifact, float] | None:
        """The stored artifact and its compute seconds, or None when absent, damaged or not this stage's."""
        path = self.path(stage)
        if not path.exists():
            return None
        try:
            arrays, meta = load_npz(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("stage %s: stored artifact %s is unreadable (%s), recomputing", stage.name, path, exc)
            return None
        if meta.get("stage") != stage.name or meta.get("fingerprint") != stage.fingerprint:
            log.warning("stage %s: %s belongs to another input (%s), recomputing", stage.name, path,
                        meta.get("fingerprint"))
            return None
        return Artifact(arrays, meta.get("meta", {})), float(meta.get("seconds", 0.0))

    def save(self, stage: Stage, artifact: Artifact, seconds: float) -> Path:
        header = {"stage": stage.name, "version": stage.version, "fingerprint": stage.fingerprint,
                  "seconds": seconds, "meta": artifact.meta}
        return save_npz(self.path(stage), artifact.arrays, header)


def save_npz(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Arrays plus JSON metadata in ONE .npz (so the two cannot tear apart), written atomically."""
    if _META_KEY in arrays:
        raise ValueError(f"'{_META_KEY}' is a reserved array name")
    blob = np.frombuffer(json.dumps(meta, default=json_default).encode("utf-8"), dtype=np.uint8)
    return atomic_write(path, lambda fh: np.savez(fh, **arrays, **{_META_KEY: blob}))


def load_npz(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a file written by save_npz (KeyError when it has no metadata)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z[_META_KEY]).decode("utf-8"))
        return {k: z[k] for k in z.files if k != _META_KEY}, meta


class StageRunner:
    """Runs stages through a store: load when stored, else compute and store; keeps the run's stage log.

    A stage object is computed at most once per runner (memoised by fingerprint), so stages that
    share an upstream stage read it once.
    """

    def __init__(self, store: StageStore, until: str | None = None,
                 on_start: Callable[[str], None] | None = None):
        self.store = store
        self.until = until
        self.on_start = on_start or (lambda name: log.info("stage %s ...", name))
        self.records: list[StageRecord] = []
        self._done: dict[str, Artifact] = {}

    def run(self, stage: Stage) -> Artifact:
        fp = stage.fingerprint
        if fp in self._done:
            return self._done[fp]
        found = self.store.load(stage)
        if found is not None:
            artifact, seconds = found
            self.records.append(StageRecord(stage.name, fp, seconds, True))
        else:
            self.on_start(stage.name)
            t0 = time.perf_counter()
            artifact = stage.compute(self)
            seconds = time.perf_counter() - t0
            self.store.save(stage, artifact, seconds)
            self.records.append(StageRecord(stage.name, fp, seconds, False))
        self._done[fp] = artifact
        if self.until == stage.name:
            raise StageReached(stage.name)
        return artifact
