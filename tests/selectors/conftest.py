"""Fixtures for selector tests (helpers live in selector_helpers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from selector_helpers import FixedContext

from daar.config import Config
from daar.data.readers import load_records


@pytest.fixture
def make_ctx(tmp_path):
    """make_ctx(rows, features=..., embedding=..., domain_model=..., generator=..., **config)."""

    def build(rows: list[dict], features: np.ndarray | None = None, embedding: np.ndarray | None = None,
              domain_model=None, generator=None, run_dir: Path | None = None, **settings) -> FixedContext:
        path = tmp_path / f"pool-{len(list(tmp_path.glob('pool-*.jsonl')))}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        records = load_records(path).records
        cfg = Config.from_mapping({"feature_cache": str(tmp_path / "store" / "features"), "dtype": "float32",
                                   "batch_size": 4, **settings})
        ctx = FixedContext(cfg, records, run_dir or tmp_path / "run", generator=generator)
        ctx.fixed = {}
        if features is not None:
            ctx.fixed[str(cfg.layer)] = np.asarray(features, dtype=np.float32)
        if embedding is not None:
            ctx.fixed["embedding"] = np.asarray(embedding, dtype=np.float32)
        if domain_model is not None:
            ctx.__dict__["domain_model"] = domain_model  # overrides the cached_property
        return ctx

    return build
