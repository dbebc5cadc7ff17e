"""The record type every stage sees, and the schema adapters that build it.

A record keeps its original row (`raw`) untouched so that `selected.jsonl` can write it back
unchanged, plus a normalised view: instruction / input / output for the renderer and a chat-style
`messages` list for training with a tokenizer's chat template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from daar.io import json_hash

SCHEMAS = ("alpaca", "sharegpt", "messages", "text")

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "model": "assistant", "system": "system", "bot": "assistant"}


@dataclass(frozen=True)
class Record:
    """One pool item in normalised form. `index` is its 0-based position among the source rows."""

    id: str
    index: int
    line: int
    instruction: str
    input: str
    output: str
    messages: tuple[dict[str, str], ...]
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class RejectedRecord:
    """A source row that could not be used, with where it was and why."""

    index: int
    line: int
    reason: str
    raw: Any = None


class SchemaMismatch(ValueError):
    """A row lacks the fields its schema needs (message says which)."""


def detect_schema(row: Any) -> str | None:
    """Guess the schema from one row's keys; None when no schema fits."""
    if not isinstance(row, dict):
        return None
    if "conversations" in row:
        return "sharegpt"
    if "messages" in row:
        return "messages"
    if "instruction" in row or "output" in row:
        return "alpaca"
    if "text" in row:
        return "text"
    return None


def _as_text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        if isinstance(value, (int, float)):
            return str(value)
        raise SchemaMismatch(f"field '{name}' should be a string, got {type(value).__name__}")
    return value


def _from_turns(turns: list[dict[str, str]]) -> tuple[str, str, str]:
    """Split a conversation into (prompt, '', last assistant reply).

    Everything before the final assistant turn becomes the instruction, so the renderer and the
    response-only training loss treat chats and Alpaca rows alike.
    """
    last = max((i for i, t in enumerate(turns) if t["role"] == "assistant"), default=None)
    if last is None:
        return "\n".join(t["content"] for t in turns), "", ""
    prompt = "\n".join(t["content"] for t in turns[:last] if t["content"])
    return prompt, "", turns[last]["content"]


def normalise(row: Any, schema: str) -> tuple[str, str, str, tuple[dict[str, str], ...]]:
    """Map a row of `schema` to (instruction, input, output, messages). Raises SchemaMismatch."""
    if not isinstance(row, dict):
        raise SchemaMismatch(f"expected a JSON object, got {type(row).__name__}")
    if schema == "alpaca":
        if "instruction" not in row:
            raise SchemaMismatch("no 'instruction' field (alpaca schema needs instruction/input/output)")
        ins = _as_text(row.get("instruction"), "instruction")
        inp = _as_text(row.get("input"), "input")
        out = _as_text(row.get("output"), "output")
        if not ins.strip() and not out.strip():
            raise SchemaMismatch("'instruction' and 'output' are both empty")
        user = ins if not inp.strip() else f"{ins}\n{inp}"
        msgs = [{"role": "user", "content": user}]
        if out:
            msgs.append({"role": "assistant", "content": out})
        return ins, inp, out, tuple(msgs)
    if schema in ("sharegpt", "messages"):
        key, role_key, text_key = (("conversations", "from", "value") if schema == "sharegpt"
                                   else ("messages", "role", "content"))
        turns_raw = row.get(key)
        if not isinstance(turns_raw, list) or not turns_raw:
            raise SchemaMismatch(f"'{key}' must be a non-empty list of turns")
        turns = []
        for j, t in enumerate(turns_raw):
            if not isinstance(t, dict) or role_key not in t or text_key not in t:
                raise SchemaMismatch(f"turn {j} of '{key}' needs '{role_key}' and '{text_key}'")
            role = str(t[role_key]).lower()
            role = _SHAREGPT_ROLES.get(role, role)
            turns.append({"role": role, "content": _as_text(t[text_key], f"{key}[{j}].{text_key}")})
        ins, inp, out = _from_turns(turns)
        return ins, inp, out, tuple(turns)
    if schema == "text":
        if "text" not in row:
            raise SchemaMismatch("no 'text' field")
        text = _as_text(row["text"], "text")
        if not text.strip():
            raise SchemaMismatch("'text' is empty")
        return text, "", "", ({"role": "user", "content": text},)
    raise ValueError(f"unknown schema {schema!r}; choose one of {', '.join(SCHEMAS)}")


def content_id(row: Any) -> str:
    """A stable id from a row's content: the same row gets the same id on every machine.

    Caches and earlier selections refer to records by this id, so its bytes never change.
    """
    return json_hash(row, ensure_ascii=False)
