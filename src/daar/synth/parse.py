"""Robust parsing of generated samples.

Small models wrap JSON in code fences, prepend chatter, forget closing brackets, use other key
names or emit one object per line. We find every balanced JSON value in the text, fall back to
"Instruction: / Input: / Output:" blocks, and map common key aliases. Anything that still fails
raises ParseError with a reason that goes into the attempt log.
"""

from __future__ import annotations

import json
import re
from typing import Any

_ALIASES = {
    "instruction": ("instruction", "question", "prompt", "task", "query", "problem"),
    "input": ("input", "context"),
    "output": ("output", "answer", "response", "solution", "completion"),
}


class ParseError(ValueError):
    pass


def _balanced_spans(text: str) -> list[str]:
    """Top-level {...} / [...] substrings, skipping brackets inside strings.

    The same bracket scan as the generation stopper's (JsonCloseScanner), restarted after each value.
    """
    spans, pos = [], 0
    while pos < len(text):
        scanner = JsonCloseScanner()
        if not scanner.feed(text[pos:]):
            break
        spans.append(text[pos + scanner.start : pos + scanner.end])
        pos += scanner.end
    return spans


def _object_spans(text: str) -> list[str]:
    """Every complete {...} object at any depth, left to right (salvages objects from a list that a
    length limit cut off before its closing bracket)."""
    out, i = [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return out
        spans = _balanced_spans(text[i:])
        if spans and text[i:].startswith(spans[0]):
            out.append(spans[0])
            i += len(spans[0])
        else:
            i += 1


def json_complete(text: str) -> bool:
    """True once the first JSON value in `text` has closed (used to stop generation early)."""
    return JsonCloseScanner().feed(text)


class JsonCloseScanner:
    """The first JSON value's bracket scan, fed piece by piece: O(new characters) per call.

    The one bracket scanner: the generation stopper calls it after every token (re-scanning the
    whole reply each time made long generations quadratic; on a GPU that host-side work, not the
    model, set the pace), and `_balanced_spans` runs it over a whole reply. Quotes open a string only
    inside a value, so prose apostrophes and quotes before the JSON do not hide its brackets.
    Once done, `start` and `end` are the value's offsets in everything fed (text[start:end]).
    """

    def __init__(self) -> None:
        self.depth, self.in_str, self.esc, self.done = 0, False, False, False
        self.fed = 0  # characters consumed by earlier feeds
        self.start: int | None = None
        self.end: int | None = None

    def feed(self, text: str) -> bool:
        if self.done:
            return True
        for i, ch in enumerate(text):
            if self.in_str:
                if self.esc:
                    self.esc = False
                elif ch == "\\":
                    self.esc = True
                elif ch == '"':
                    self.in_str = False
            elif ch == '"' and self.depth > 0:
                self.in_str = True
            elif ch in "{[":
                if self.depth == 0:
                    self.start = self.fed + i
                self.depth += 1
            elif ch in "}]" and self.depth > 0:
                self.depth -= 1
                if self.depth == 0:
                    self.done, self.end = True, self.fed + i + 1
                    break
        self.fed += len(text)
        return self.done


def _sample(obj: Any) -> dict[str, str] | None:
    if not isinstance(obj, dict):
        return None
    lower = {str(k).lower().strip(): v for k, v in obj.items()}
    out = {}
    for field, names in _ALIASES.items():
        value = next((lower[n] for n in names if n in lower), "")
        out[field] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False) if value else ""
    if not out["instruction"].strip() or not out["output"].strip():
        return None
    return {k: v.strip() for k, v in out.items()}


def _collect(obj: Any) -> list[dict[str, str]]:
    if isinstance(obj, list):
        return [s for s in (_sample(o) for o in obj) if s]
    if isinstance(obj, dict):
        direct = _sample(obj)
        if direct:
            return [direct]
        for v in obj.values():  # {"samples": [...]}
            if isinstance(v, list):
                found = _collect(v)
                if found:
                    return found
    return []


_LABEL = re.compile(r"^\s*(?:\d+[.)]\s*)?(?:\*\*)?(instruction|input|output)(?:\*\*)?\s*[:：]\s*(.*)$", re.I)


def _labelled_blocks(text: str) -> list[dict[str, str]]:
    """'Instruction: ... / Input: ... / Output: ...' blocks, one field per label, continuation lines appended."""
    samples: list[dict[str, str]] = []
    cur: dict[str, list[str]] | None = None
    field = None
    for line in text.splitlines():
        m = _LABEL.match(line)
        if m:
            field = m.group(1).lower()
            if field == "instruction":
                cur = {"instruction": [], "input": [], "output": []}
                samples.append(cur)  # type: ignore[arg-type]
            if cur is not None:
                cur[field].append(m.group(2))
        elif cur is not None and field:
            cur[field].append(line)
    out = []
    for c in samples:
        s = {k: "\n".join(v).strip() for k, v in c.items()}  # type: ignore[union-attr]
        if s["instruction"] and s["output"]:
            out.append(s)
    return out


def _from_spans(spans: list[str]) -> list[dict[str, str]]:
    samples: list[dict[str, str]] = []
    for span in spans:
        for candidate in (span, re.sub(r",\s*([}\]])", r"\1", span)):  # tolerate trailing commas
            try:
                samples.extend(_collect(json.loads(candidate)))
                break
            except json.JSONDecodeError:
                continue
    return samples


def parse_samples(text: str) -> list[dict[str, str]]:
    """All samples found in a generation (raises ParseError when there are none)."""
    cleaned = re.sub(r"```(?:json)?", "", text)
    samples = _from_spans(_balanced_spans(cleaned)) or _from_spans(_object_spans(cleaned))
    if not samples:
        samples = _labelled_blocks(cleaned)
    if not samples:
        snippet = text.strip().replace("\n", " ")[:80]
        reason = "no JSON object with instruction and output" if "{" in text else "no JSON in the output"
        raise ParseError(f"{reason}: '{snippet}'")
    return samples
