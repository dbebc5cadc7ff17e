"""Small files shipped inside the package (installed as package data, see pyproject.toml).

`sample_pool.jsonl` holds 40 hand-written Alpaca records, 10 each of common-sense QA, logical
reasoning, math word problems and coding, in that order; each `id` starts with `sample-<domain>-`,
so a quick start can show features and, later, selections on data whose sources are known.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_POOL = "sample_pool.jsonl"


def resource_path(name: str) -> Path:
    """The path of a bundled resource file (FileNotFoundError naming it when it is absent)."""
    path = Path(__file__).resolve().parent / name
    if not path.is_file():
        raise FileNotFoundError(f"bundled resource {name} is missing from {path.parent}; reinstall daar")
    return path


def sample_pool_path() -> Path:
    """The bundled 40-record sample pool, for `daar embed --data $(python -c ...)` style quick starts."""
    return resource_path(SAMPLE_POOL)
