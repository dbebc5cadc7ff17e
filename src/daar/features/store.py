"""The feature store: sharded, memory-mapped arrays keyed by a fingerprint of how they were made.

Layout: <root>/<fingerprint>/spec.json and shard-<n>-<uid>.npy + shard-<n>-<uid>.keys.json.
Each row is keyed by a hash of the exact text that was embedded, so the same text is never
embedded twice under one fingerprint, whatever file or record id it came from.

Atomicity: a shard's keys file and then its array are each written to a temporary name and renamed
into place; the array's rename is the commit point. A shard whose array is absent, or whose row
count disagrees with its keys, is ignored, so a process killed at any moment (SIGKILL included)
leaves only complete shards behind and a rerun computes just the rows that are missing.

Concurrency: `missing()` is where a job learns what it must compute, so it is also where it claims
that work. Under a short lock on the set it reads the live claims of other processes: when one of
them is computing some of the same rows, it waits for that process to finish (then reads its
shards), and it claims the rest for itself until `add()` has stored them or `get()` is called. So
two concurrent `daar embed` runs of one pool compute each row once: the second waits, then reuses.
A claim is live while its holder keeps an OS lock on it, so a killed process never blocks anyone.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from daar.io import atomic_write, json_hash, text_hash

log = logging.getLogger(__name__)


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
        self._claim: _Claim | None = None
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

    def _absent(self, keys: Sequence[str]) -> list[int]:
        return [i for i, k in enumerate(keys) if k not in self._index]

    def missing(self, keys: Sequence[str]) -> list[int]:
        """Positions of `keys` not yet stored, which this process then computes (and `add`s).

        Rows another live process is computing are waited for and read from its shards; the rest
        are claimed for this process until they are added or `get` is called (module docstring).
        """
        self.release()
        while True:
            with _claims_lock(self.dir):
                self.refresh()
                absent = self._absent(keys)
                need = {keys[i] for i in absent}
                busy = _overlapping_claim(self.dir, need)
                if busy is None:
                    if need:
                        self._claim = _Claim(self.dir, need)
                    return absent
            pid, lock_path, n = busy
            log.info("feature store %s: waiting for process %s, which is computing %d of these rows",
                     self.dir.name, pid, n)
            _wait_for(lock_path)

    def release(self) -> None:
        """Give up this process's claim (the rows it has not added become free for others)."""
        if self._claim is not None:
            self._claim.release()
            self._claim = None

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
        if self._claim is not None and all(k in self._index for k in self._claim.keys):
            self.release()  # everything this job claimed is stored: others need not wait any longer
        return npy

    def get(self, keys: Sequence[str]) -> np.ndarray:
        """The stored rows for `keys`, in order (KeyError if any is missing)."""
        self.release()
        absent = self._absent(keys)
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


def _claims_lock(folder: Path):
    from filelock import FileLock

    return FileLock(folder / ".claims.lock")


class _Claim:
    """This process's claim on rows it is computing: claims/<id>.json (pid, keys), live while this
    process holds the OS lock claims/<id>.lock (a killed process releases it)."""

    def __init__(self, folder: Path, keys: set[str]):
        from filelock import FileLock

        self.keys = keys
        stem = folder / "claims" / uuid.uuid4().hex[:12]
        stem.parent.mkdir(exist_ok=True)
        self.lock = FileLock(f"{stem}.lock", timeout=0)
        self.lock.acquire()  # before the claim is visible, so nobody sees it as dead
        self.file = atomic_write(f"{stem}.json", json.dumps({"pid": os.getpid(), "keys": sorted(keys)}))
        self._finalizer = weakref.finalize(self, _drop, self.file, self.lock)

    def release(self) -> None:
        self._finalizer()


def _drop(file: Path, lock) -> None:
    file.unlink(missing_ok=True)
    lock.release()
    Path(lock.lock_file).unlink(missing_ok=True)


def _overlapping_claim(folder: Path, need: set[str]) -> tuple[int, Path, int] | None:
    """(pid, lock file, rows in common) of another live process's claim on some of `need`, else None.

    Dead claims (their lock is free) are removed on the way. Claims of this process are not waited
    for: one process computes its jobs one after another, so waiting on itself would never end.
    """
    from filelock import FileLock, Timeout

    if not need:
        return None
    for claim in sorted((folder / "claims").glob("*.json")):
        lock_path = claim.with_suffix(".lock")
        try:
            info = json.loads(claim.read_text())
        except (OSError, ValueError):
            continue  # being removed right now
        if info.get("pid") == os.getpid():
            continue
        probe = FileLock(lock_path, timeout=0)
        try:
            probe.acquire()
        except Timeout:
            common = len(need.intersection(info.get("keys", ())))
            if common:
                return int(info["pid"]), lock_path, common
            continue
        claim.unlink(missing_ok=True)  # its holder died without releasing it
        probe.release()
        lock_path.unlink(missing_ok=True)
    return None


def _wait_for(lock_path: Path, poll: float = 0.2) -> None:
    """Block until the claim behind `lock_path` is released (its holder finished or died)."""
    from filelock import FileLock, Timeout

    while lock_path.exists():
        try:
            with FileLock(lock_path, timeout=poll):
                pass
        except Timeout:
            continue
        if not lock_path.with_suffix(".json").exists():
            lock_path.unlink(missing_ok=True)  # released: its holder removed the claim first
        return


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
