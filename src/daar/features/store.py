"""The feature store: sharded, memory-mapped arrays keyed by a fingerprint of how they were made.

Layout: <root>/<fingerprint>/spec.json and shard-<n>-<uid>.npy + shard-<n>-<uid>.keys.json.
Each row is keyed by a hash of the exact text that was embedded, so the same text is never
embedded twice under one fingerprint, whatever file or record id it came from.

Atomicity: a shard's keys file and then its array are each written to a temporary name and renamed
into place; the array's rename is the commit point. A shard whose array is absent, or whose row
count disagrees with its keys, is ignored, so a process killed at any moment (SIGKILL included)
leaves only complete shards behind and a rerun computes just the rows that are missing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from daar.io import atomic_write, json_hash, text_hash


def text_key(text: str) -> str:
    """A row's key: the full sha1 of the embedded text (existing stores are keyed by exactly this)."""
    return text_hash(text)


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that changes a feature vector. Its fingerprint names the store folder."""

    model: str
    layer: str  # "embedding" or a decoder layer number as text
    pooling: str
    renderer: str
    max_length: int
    dtype: str

    @property
    def fingerprint(self) -> str:
        # json_hash keeps the bytes this key always had (sha1 of the sorted JSON), so stores stay valid
        return json_hash(asdict(self))


class FeatureSet:
    """The rows stored under one FeatureSpec."""

    def __init__(self, root: Path, spec: FeatureSpec):
        self.spec = spec
        self.dir = Path(root) / spec.fingerprint
        self.dir.mkdir(parents=True, exist_ok=True)
        spec_file = self.dir / "spec.json"
        if not spec_file.exists():
            atomic_write(spec_file, json.dumps(asdict(spec), indent=1).encode())
        self._index: dict[str, tuple[Path, int]] = {}
        self._arrays: dict[Path, np.ndarray] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read which complete shards exist (cheap: reads only the small key files)."""
        for npy in sorted(self.dir.glob("shard-*.npy")):
            if npy in self._arrays:
                continue
            keys_file = npy.with_suffix(".keys.json")
            try:
                keys = json.loads(keys_file.read_text())["keys"]
                arr = np.load(npy, mmap_mode="r")
            except (OSError, ValueError, KeyError, EOFError):  # EOFError: a 0-byte array file
                continue  # incomplete shard from an interrupted writer: not valid, ignore
            if arr.ndim != 2 or arr.shape[0] != len(keys):
                continue
            self._arrays[npy] = arr
            for row, key in enumerate(keys):
                self._index.setdefault(key, (npy, row))

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def missing(self, keys: Sequence[str]) -> list[int]:
        """Positions of `keys` not yet stored."""
        return [i for i, k in enumerate(keys) if k not in self._index]

    def add(self, keys: Sequence[str], features: np.ndarray, ids: Sequence[str] | None = None) -> Path:
        """Commit one shard of rows atomically."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[0] != len(keys):
            raise ValueError("features must be a 2-D array with one row per key")
        n = len(list(self.dir.glob("shard-*.npy")))
        stem = f"shard-{n:06d}-{uuid.uuid4().hex[:8]}"
        npy = self.dir / f"{stem}.npy"
        payload = {"keys": list(keys), "ids": list(ids) if ids is not None else None}
        atomic_write(npy.with_suffix(".keys.json"), json.dumps(payload).encode())
        atomic_write(npy, lambda fh: np.save(fh, features), binary=True)
        self.refresh()
        return npy

    def get(self, keys: Sequence[str]) -> np.ndarray:
        """The stored rows for `keys`, in order (KeyError if any is missing)."""
        absent = self.missing(keys)
        if absent:
            raise KeyError(f"{len(absent)} of {len(keys)} rows are not in the feature store")
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        first = self._index[keys[0]]
        out = np.empty((len(keys), self._arrays[first[0]].shape[1]), dtype=np.float32)
        for i, k in enumerate(keys):
            npy, row = self._index[k]
            out[i] = self._arrays[npy][row]
        return out


class FeatureStore:
    """Root folder of all feature sets (default: <cache>/features)."""

    def __init__(self, root: str | Path | None = None):
        if root is None:
            from daar.models.loading import cache_dir

            root = cache_dir() / "features"
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def open(self, spec: FeatureSpec) -> FeatureSet:
        return FeatureSet(self.root, spec)
