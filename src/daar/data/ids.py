"""Record ids: keep every id the user gave that is usable, fix only the records whose id is not.

A usable id is a non-empty string or an integer (written as text; a bool is not an integer here),
seen for the first time. A pool without any `id` field gets content ids (a hash of the row: the same
row has the same id on every machine). Otherwise each record with a duplicate, empty, missing or
non-string id (null, a float, a list, a dict) is affected, and only those:

  - on_bad_record="error" (the default) gives it a deterministic new id: `<id>-dup<N>` for the 2nd and
    later copies of an id, the content id for an unusable one (with `-dup<N>` if that is taken too);
  - on_bad_record="skip" rejects it with the reason instead.

Kept ids are reserved before any new one is made, so a new id never takes a later record's own id.
Every change is an `IdChange` (line, original id, new id or None when rejected, reason): the loader
logs a WARNING naming the lines and the run's manifest lists them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daar.data.records import content_id

_MISSING = object()


@dataclass(frozen=True)
class IdChange:
    """One record whose own id could not be used as it was."""

    index: int  # 0-based position among the source rows
    line: int  # the line (JSONL) or record number it was read from
    original: Any  # the id value as read (None for null; "<missing>" when the row has no id field)
    new: str | None  # the id it got, or None when it was rejected
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "index": self.index, "original": self.original, "new": self.new,
                "reason": self.reason}


def _problem(value: Any) -> str | None:
    """Why `value` cannot be an id as it is, or None when it can."""
    if value is _MISSING:
        return "no 'id' field"
    if isinstance(value, str):
        return None if value.strip() else "the id is empty"
    if isinstance(value, int) and not isinstance(value, bool):
        return None
    if value is None:
        return "the id is null"
    return f"the id is a {type(value).__name__} ({value!r}), not a string or integer"


def _fresh(base: str, taken: set[str]) -> str:
    """`base` if it is free, else the first free `base-dupN`."""
    if base not in taken:
        return base
    n = 1
    while f"{base}-dup{n}" in taken:
        n += 1
    return f"{base}-dup{n}"


def assign_ids(rows: Sequence[Any], lines: Sequence[int], indices: Sequence[int],
               unit: str = "line") -> tuple[list[str], list[IdChange]]:
    """One unique id per row (in order) and the changes made; see the module docstring for the rules."""
    own = [r.get("id", _MISSING) if isinstance(r, dict) else _MISSING for r in rows]
    if all(v is _MISSING for v in own):  # no ids at all: content ids, as always (not a change)
        ids: list[str] = []
        taken: set[str] = set()
        for r in rows:
            ids.append(_fresh(content_id(r), taken))  # exact duplicate rows get -dupN
            taken.add(ids[-1])
        return ids, []
    kept: dict[int, str] = {}
    first_line: dict[str, int] = {}
    for j, value in enumerate(own):
        if _problem(value) is None and str(value) not in first_line:
            kept[j] = str(value)
            first_line[str(value)] = lines[j]
    taken = set(kept.values())
    out: list[str] = []
    changes: list[IdChange] = []
    for j, value in enumerate(own):
        if j in kept:
            out.append(kept[j])
            continue
        problem = _problem(value)
        if problem is None:  # a usable id seen before
            new = _fresh(str(value), taken)
            reason = f"duplicate id {str(value)!r} (first at {unit} {first_line[str(value)]})"
        else:
            new = _fresh(content_id(rows[j]), taken)
            reason = problem
        taken.add(new)
        out.append(new)
        changes.append(IdChange(index=indices[j], line=lines[j],
                                original="<missing>" if value is _MISSING else value, new=new, reason=reason))
    return out, changes


def describe(changes: Sequence[IdChange], unit: str, rejected: bool, shown: int = 8) -> str:
    """The WARNING line: how many, which lines, what happened, where the full list is."""
    lines = ", ".join(str(c.line) for c in changes[:shown]) + (", ..." if len(changes) > shown else "")
    examples = "; ".join(f"{unit} {c.line}: {c.reason}" + ("" if rejected else f" -> id {c.new!r}")
                         for c in changes[:3])
    what = ("rejected them (--on-bad-record skip; see rejects.jsonl)" if rejected else
            "gave only those records new ids (all other ids are kept); the mapping is in manifest.json "
            "(id_changes). Fix the ids, or use --on-bad-record skip to reject these records instead")
    return f"{len(changes)} record(s) have a duplicate or unusable id ({unit}s {lines}): {examples}. daar {what}"
