"""Row slices of pool files concatenated into one JSONL: the standard workloads
(../shared/docs/WORKLOADS.md), the demo pool and experiment pools are all built this way."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from daar.errors import ConfigError
from daar.io import atomic_write

WORKLOAD_DOMAINS = ("common_sense", "reasoning", "mathematics", "coding")


def standard_parts(pool_dir: str | Path, rows: tuple[int, int], label: bool = True) -> list[dict[str, Any]]:
    """Rows a..b of each pool/<domain>.jsonl in the WORKLOADS.md order (with a `source` label field)."""
    return [{"path": str(Path(pool_dir) / f"{d}.jsonl"), "rows": f"{rows[0]}:{rows[1]}", **({"label": d} if label else {})}
            for d in WORKLOAD_DOMAINS]


def _rows(spec: str | None) -> tuple[int, int | None]:
    if not spec:
        return 0, None
    a, b = str(spec).split(":")
    return int(a or 0), int(b) if b else None


def write_slices(parts: list[dict[str, Any]], path: str | Path) -> int:
    """Concatenate `rows` ("a:b") of each part's `path`, adding `source: label` when a part has a label.

    Lines are copied unchanged when there is no label. Returns the number of rows written; the file
    appears atomically.
    """
    n = 0

    def write(out) -> None:
        nonlocal n
        for part in parts:
            src = Path(part["path"])
            if not src.exists():
                raise ConfigError(f"pool file {src} not found (relative paths are taken from the current folder)")
            a, b = _rows(part.get("rows"))
            with open(src, encoding="utf-8") as fh:
                for line in itertools.islice(fh, a, b):
                    if part.get("label"):
                        line = json.dumps({**json.loads(line), "source": part["label"]}, ensure_ascii=False) + "\n"
                    out.write(line if line.endswith("\n") else line + "\n")
                    n += 1

    atomic_write(path, write, binary=False)
    return n
