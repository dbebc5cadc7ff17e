"""A persistent cache of per-record judgements (LLM ratings, tags, scorer outputs, IFD losses).

Judging a pool with an LLM is the slowest thing a baseline does, so every judgement is stored in
one SQLite file under the context's cache root, keyed by

    (kind, model identity, prompt version, record id)

and checked against a hash of the exact text the judge saw, so a record id reused for different
content is judged again instead of getting a stale answer. Rows are committed after every batch:
an interrupted run loses at most one batch, and the rerun (or another selector using the same
judgement, e.g. `deita` reusing `deita-complexity`) continues from the cache.

Unparseable judgements are cached too (with ok = 0 and the raw text), so they are counted, logged
and reported on every run instead of silently dropped or re-asked forever.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daar.errors import DaarError
from daar.io import text_hash

log = logging.getLogger(__name__)

FILE_NAME = "judgements.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgements (
    kind TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL, record_id TEXT NOT NULL,
    input_sha TEXT NOT NULL, value TEXT, raw TEXT, ok INTEGER NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (kind, model, version, record_id)
)
"""


class JudgeTimeLimit(DaarError):
    """Raised when a judging run hits its time limit; what was judged so far is cached (rerun to resume)."""


def input_hash(text: str) -> str:
    """The cache's guard on what the judge saw: 16 hex of the text's sha1, as stored in existing caches."""
    return text_hash(text)[:16]


@dataclass
class Judgement:
    value: Any  # JSON-serialisable parsed value (a float, a list of tags, ...); None when unparseable
    raw: str = ""  # what the judge said (for audits of unparseable answers)
    ok: bool = True


@dataclass
class JudgeStats:
    """What one `judge_all` call did; goes into a selector's metadata."""

    kind: str
    model: str
    version: str
    total: int = 0
    from_cache: int = 0
    computed: int = 0
    unparseable: int = 0
    seconds: float = 0.0
    unparseable_examples: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "prompt_version": self.version, "total": self.total,
                "from_cache": self.from_cache, "computed": self.computed, "unparseable": self.unparseable,
                "seconds": round(self.seconds, 3), "unparseable_examples": self.unparseable_examples}


class JudgeCache:
    """The SQLite store. Safe for several processes (WAL journal, busy timeout)."""

    def __init__(self, root: str | Path):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / FILE_NAME
        self._conn = sqlite3.connect(self.path, timeout=60.0)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:  # e.g. a network file system: fall back to the default journal
            pass
        self._conn.execute(_SCHEMA)
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    def get_many(self, kind: str, model: str, version: str, record_ids: Sequence[str],
                 input_shas: Sequence[str]) -> dict[int, Judgement]:
        """Cached judgements by position in `record_ids` (positions whose input changed are absent)."""
        found: dict[int, Judgement] = {}
        wanted = {rid: i for i, rid in enumerate(record_ids)}
        ids = list(wanted)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT record_id, input_sha, value, raw, ok FROM judgements WHERE kind=? AND model=? AND "
                f"version=? AND record_id IN ({marks})", (kind, model, version, *chunk)).fetchall()
            for rid, sha, value, raw, ok in rows:
                i = wanted[rid]
                if sha == input_shas[i]:
                    found[i] = Judgement(json.loads(value) if value is not None else None, raw or "", bool(ok))
        # duplicate record ids in one call share the judgement of their first position
        for i, rid in enumerate(record_ids):
            j = wanted[rid]
            if j != i and j in found and input_shas[i] == input_shas[j]:
                found[i] = found[j]
        return found

    def put_many(self, kind: str, model: str, version: str,
                 rows: Sequence[tuple[str, str, Judgement]]) -> None:
        """Store (record id, input sha, judgement) rows in one transaction."""
        now = time.time()
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO judgements VALUES (?,?,?,?,?,?,?,?,?)",
                [(kind, model, version, rid, sha, None if j.value is None else json.dumps(j.value), j.raw,
                  int(j.ok), now) for rid, sha, j in rows])

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return self._conn.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]
        return self._conn.execute("SELECT COUNT(*) FROM judgements WHERE kind=?", (kind,)).fetchone()[0]


def judge_all(cache: JudgeCache, *, kind: str, model: str, version: str, record_ids: Sequence[str],
              inputs: Sequence[str], compute: Callable[[list[int]], list[Judgement]], batch_size: int = 16,
              time_limit: float | None = None, progress: bool = True) -> tuple[list[Judgement], JudgeStats]:
    """One judgement per record: from the cache where present, else `compute(positions)` in batches.

    `inputs[i]` is the exact text the judge sees for record i (its hash guards the cache entry).
    `compute` gets a list of positions and returns one Judgement per position, in order. Each
    batch is committed before the next starts. With `time_limit` (seconds), JudgeTimeLimit is
    raised after the batch that crosses it; everything judged so far stays cached.
    """
    t0 = time.perf_counter()
    shas = [input_hash(t) for t in inputs]
    stats = JudgeStats(kind=kind, model=model, version=version, total=len(record_ids))
    got = cache.get_many(kind, model, version, record_ids, shas)
    stats.from_cache = len(got)
    missing = [i for i in range(len(record_ids)) if i not in got]
    # records sharing an id and input (exact duplicates) are judged once
    first: dict[tuple[str, str], int] = {}
    todo = []
    for i in missing:
        key = (record_ids[i], shas[i])
        if key not in first:
            first[key] = i
            todo.append(i)
    if todo:
        log.info("%s: judging %d records with %s (%d from the cache)", kind, len(todo), model, stats.from_cache)
        bar = _progress(len(todo), kind) if progress else None
        try:
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                results = compute(batch)
                if len(results) != len(batch):
                    raise RuntimeError(f"{kind}: the judge returned {len(results)} results for {len(batch)} inputs")
                cache.put_many(kind, model, version, [(record_ids[i], shas[i], j) for i, j in
                                                       zip(batch, results, strict=True)])
                for i, j in zip(batch, results, strict=True):
                    got[i] = j
                stats.computed += len(batch)
                if bar is not None:
                    bar.update(len(batch))
                if time_limit is not None and time.perf_counter() - t0 > time_limit and start + batch_size < len(todo):
                    raise JudgeTimeLimit(
                        f"{kind}: time limit of {time_limit:.0f} s reached after judging {stats.computed} of "
                        f"{len(todo)} records; they are cached in {cache.path}; rerun to continue")
        finally:
            if bar is not None:
                bar.close()
    for i in missing:
        if i not in got:
            got[i] = got[first[(record_ids[i], shas[i])]]
    judgements = [got[i] for i in range(len(record_ids))]
    for i, j in enumerate(judgements):
        if not j.ok:
            stats.unparseable += 1
            if len(stats.unparseable_examples) < 5:
                stats.unparseable_examples.append({"record_id": record_ids[i], "raw": j.raw[:300]})
    if stats.unparseable:
        log.warning("%s: %d of %d judgements could not be parsed; they get the lowest score (first: %r)",
                    kind, stats.unparseable, stats.total, stats.unparseable_examples[0]["raw"][:120])
    stats.seconds = time.perf_counter() - t0
    return judgements, stats


def _progress(total: int, desc: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        return None
    return tqdm(total=total, desc=desc, unit="rec", leave=False)
