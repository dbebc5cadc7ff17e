"""The id pass of a streamed run: the in-memory id policy (daar.data.ids), for the whole pool, in bounded memory.

A shard cannot tell alone whether its records' ids are unique, so before scoring, one parsing pass
over the shards keeps per usable record only its index, what its `id` is (usable, missing, unusable)
and an 8-byte hash of the id (of the content id when the record has no id field): 17 bytes a record
and no record text; with the sort that finds the duplicates the peak is ~60 bytes a record
(measured: 17 MiB of Python allocations for 300k records, linear in the pool). The first copy of an
id in pool order keeps it; a second pass reads only the affected records (and the first copies of
their ids, to confirm each duplicate by its text, so a hash collision never renames a record) and
gives them the same new ids, or the same rejects, as daar.data.ids.assign_ids does in memory. The
decisions go into each shard's spec (`ShardSpec.ids`, part of its key), so every backend applies them.
A candidate new id (`<id>-dupN`) is checked against the kept ids by hash, so only a 64-bit collision
could make it skip one suffix number, and the new id is still unique.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from daar.data.ids import _MISSING, IdChange, _fresh, _problem, describe
from daar.data.records import RejectedRecord, content_id
from daar.data.rows import FIX_BAD_RECORD
from daar.errors import InputError
from daar.scale.shards import ShardPlan, ShardSpec, _key, iter_rows, parsed_rows

log = logging.getLogger(__name__)

OWN, MISSING, UNUSABLE = 0, 1, 2  # what a record's `id` is


def _h64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class StreamIds:
    """The plan with each shard's id decisions, usable records per shard, and the changes (manifest: id_changes)."""

    plan: ShardPlan
    counts: tuple[int, ...]
    changes: tuple[IdChange, ...]
    first_reject: RejectedRecord | None = None  # the first row that is no record (schema / JSON), if any

    def raise_first_reject(self) -> None:
        """With --on-bad-record error, the error the in-memory loader raises for the first bad row."""
        r = self.first_reject
        if r is not None:
            raise InputError(self.plan.path, r.reason, FIX_BAD_RECORD, r.line,
                             "line" if self.plan.format == "jsonl" else "record")


class _Taken:
    """The ids in use: the kept ids as a sorted hash array, the new ones (few) as a set of strings."""

    def __init__(self, kept: np.ndarray):
        self.kept, self.new = kept, set()

    def __contains__(self, text: str) -> bool:
        h = np.uint64(_h64(text))
        i = int(np.searchsorted(self.kept, h))
        return (i < len(self.kept) and self.kept[i] == h) or text in self.new

    def add(self, text: str) -> None:
        self.new.add(text)


def _scan(plan: ShardPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], RejectedRecord | None]:
    """Pass 1: (index, kind, hash) per usable record in pool order, usable records per shard, the first bad row.

    Bad rows are passed over here whatever --on-bad-record says: with "error" the shard that holds one
    fails when it is scored (its neighbours commit), as it did before this pass existed.
    """
    index, kind, hashes, counts, first_reject = [], [], [], [], None
    for spec in plan.shards:
        idx, knd, hsh = [], [], []
        for item in parsed_rows(spec, plan.schema, "skip", plan.schema_from):
            if isinstance(item, RejectedRecord):
                first_reject = first_reject or item
                continue
            i, _, row, _ = item
            value = row.get("id", _MISSING)
            k = MISSING if value is _MISSING else OWN if _problem(value) is None else UNUSABLE
            idx.append(i)
            knd.append(k)
            hsh.append(_h64(str(value)) if k == OWN else _h64(content_id(row)) if k == MISSING else 0)
        index.append(np.array(idx, dtype=np.int64))
        kind.append(np.array(knd, dtype=np.int8))
        hashes.append(np.array(hsh, dtype=np.uint64))
        counts.append(len(idx))
    return np.concatenate(index), np.concatenate(kind), np.concatenate(hashes), counts, first_reject


def _duplicates(hashes: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions of later copies, position of each one's first copy, sorted unique hashes of the candidates)."""
    pos = np.flatnonzero(candidates)
    order = np.argsort(hashes[pos], kind="stable")  # stable: a group's first element is its first in pool order
    h = hashes[pos][order]
    first = np.r_[True, h[1:] != h[:-1]] if len(h) else np.zeros(0, bool)
    group_first = np.maximum.accumulate(np.where(first, np.arange(len(h)), 0)) if len(h) else first.astype(int)
    later = ~first
    return pos[order[later]], pos[order[group_first[later]]], h[first]


def _by_shard(plan: ShardPlan, wanted: np.ndarray) -> Iterator[tuple[ShardSpec, set[int]]]:
    """(shard, the wanted indices in it) for the shards that hold one, in pool order."""
    firsts = np.array([s.first_index for s in plan.shards], dtype=np.int64)
    where = np.searchsorted(firsts, wanted, side="right") - 1
    for j in np.unique(where):
        yield plan.shards[j], set(wanted[where == j].tolist())


def _id_text(row: dict, own_ids: bool) -> str:
    """What a duplicate is a duplicate of: the id as text, or (a pool without ids) the content id."""
    return str(row.get("id")) if own_ids else content_id(row)


def assign_stream_ids(plan: ShardPlan, on_bad_record: str = "error") -> StreamIds:
    """The id policy of daar.data.ids applied to a sharded pool; see the module docstring."""
    index, kind, hashes, counts, first_reject = _scan(plan)
    own_ids = bool((kind != MISSING).any())  # a pool without any id field gets content ids (not a change)
    later, first_of, kept = _duplicates(hashes, kind == (OWN if own_ids else MISSING))
    affected = np.sort(np.concatenate([later, np.flatnonzero(kind != OWN)])) if own_ids else np.sort(later)
    first_index = dict(zip(index[later].tolist(), index[first_of].tolist(), strict=True))
    # the first copies of the duplicated ids: (line, id text) only, one per duplicated id
    firsts = {i: (line, _id_text(row, own_ids)) for spec, wanted in _by_shard(plan, index[first_of])
              for i, line, row in iter_rows(spec, wanted)}
    unit = "line" if plan.format == "jsonl" else "record"
    taken, decided, changes = _Taken(kept), {}, []
    skip = on_bad_record == "skip"
    for spec, wanted in _by_shard(plan, index[affected]):  # pool order: new ids are made in that order
        for i, line, row in iter_rows(spec, wanted):
            value = row.get("id", _MISSING)
            if i in first_index:
                first_line, first_text = firsts[first_index[i]]
                base = _id_text(row, own_ids)
                if base != first_text:
                    continue  # a hash collision, not a duplicate: the record keeps its own id
                reason = f"duplicate id {base!r} (first at {unit} {first_line})"
            else:
                base, reason = content_id(row), _problem(value)
            new = _fresh(base, taken)
            taken.add(new)
            if not own_ids:  # exact duplicate rows of an id-less pool: a -dupN content id, as in memory, unreported
                decided[i] = (new, "")
                continue
            changes.append(IdChange(index=i, line=line, original="<missing>" if value is _MISSING else value,
                                    new=None if skip else new, reason=reason))
            decided[i] = (changes[-1].new, reason)
    if changes:
        log.warning("%s: %s", plan.path, describe(changes, unit, rejected=skip))
    return _apply(plan, decided, counts, changes, first_reject)


def _apply(plan: ShardPlan, decided: dict[int, tuple[str | None, str]], counts: Sequence[int],
           changes: list[IdChange], first_reject: RejectedRecord | None) -> StreamIds:
    """Each shard's decisions into its spec (and its key, so a shard scored under other ids is redone)."""
    firsts = np.array([s.first_index for s in plan.shards], dtype=np.int64)
    by_shard: dict[int, list[tuple[int, str | None, str]]] = {}
    for i in sorted(decided):  # affected records only: few, or as many as the manifest lists anyway
        by_shard.setdefault(int(np.searchsorted(firsts, i, side="right")) - 1, []).append((i, *decided[i]))
    specs, counts = list(plan.shards), list(counts)
    for j, ids in by_shard.items():
        specs[j] = replace(specs[j], ids=tuple(ids), key=_key(specs[j].key, "ids", ids))
        counts[j] -= sum(new is None for _, new, _ in ids)
    return StreamIds(replace(plan, shards=tuple(specs)), tuple(counts), tuple(changes), first_reject)
