"""The Pool: the records of one input file, its rejects and the renderer, fixed once loaded.

Everything downstream (features, DaaR stages, selectors, outputs) reads the pool and nothing
writes to it. Its `fingerprint` is a hash of the rendered texts in order (plus the renderer), so a
stage that reads a pool is invalidated when any text changes, even under unchanged record ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from daar.data.ids import IdChange
from daar.data.readers import load_records
from daar.data.records import Record, RejectedRecord
from daar.data.render import Renderer
from daar.errors import ConfigError
from daar.io import fingerprint, texts_hash


@dataclass(frozen=True, eq=False)
class Pool:
    records: tuple[Record, ...]
    renderer: Renderer
    rejected: tuple[RejectedRecord, ...] = ()
    source: str | None = None  # the file it came from (for messages and reports)
    schema: str | None = None
    id_changes: tuple[IdChange, ...] = ()  # records whose own id was replaced or rejected (manifest: id_changes)

    @classmethod
    def load(cls, path: str | Path, *, schema: str = "auto", fmt: str = "auto", on_bad_record: str = "error",
             template: str = "default") -> Pool:
        loaded = load_records(path, schema=schema, fmt=fmt, on_bad_record=on_bad_record)
        return cls(tuple(loaded.records), Renderer.named(template), tuple(loaded.rejected), str(path), loaded.schema,
                   tuple(loaded.id_changes))

    @classmethod
    def from_records(cls, records: Sequence[Record], renderer: Renderer | None = None,
                     rejected: Sequence[RejectedRecord] = (), source: str | None = None) -> Pool:
        return cls(tuple(records), renderer or Renderer(), tuple(rejected), source)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def n(self) -> int:
        return len(self.records)

    @cached_property
    def texts(self) -> list[str]:
        return [self.renderer.render(r) for r in self.records]

    @cached_property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    @cached_property
    def fingerprint(self) -> str:
        """Content key: the rendered texts in order, and how they were rendered."""
        return fingerprint("pool", self.renderer.fingerprint, texts_hash(self.texts), len(self.records))

    def subset(self, indices: Sequence[int] | np.ndarray) -> Pool:
        """The records at `indices` (in that order) as a pool of their own, without rejects."""
        return Pool(tuple(self.records[int(i)] for i in indices), self.renderer, (), self.source, self.schema)

    def sample(self, size: int, seed: int) -> Pool:
        """A seeded random subset of `size` records, kept in pool order."""
        if size >= self.n:
            return self
        rng = np.random.default_rng(seed)
        return self.subset(np.sort(rng.choice(self.n, size, replace=False)))

    def require_nonempty(self) -> Pool:
        if not self.records:
            where = f" in {self.source}" if self.source else ""
            raise ConfigError(f"the pool is empty{where}: nothing to select from")
        return self
