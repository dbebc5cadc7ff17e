"""Fixtures for selector tests (helpers live in selector_helpers.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from selector_helpers import FixedResources

from daar.data.pool import Pool
from daar.selectors.context import SelectionContext
from daar.settings import Config


@pytest.fixture
def make_ctx(tmp_path):
    """make_ctx(rows, features=..., embedding=..., domain_model=(model, scores), generator=..., **settings)."""

    def build(rows: list[dict], features: np.ndarray | None = None, embedding: np.ndarray | None = None,
              domain_model=None, generator=None, **settings) -> SelectionContext:
        path = tmp_path / f"pool-{len(list(tmp_path.glob('pool-*.jsonl')))}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        cfg = Config.from_mapping({"feature_cache": str(tmp_path / "store" / "features"), "dtype": "float32",
                                   "batch_size": 4, **settings})
        fixed = {}
        if features is not None:
            fixed[str(cfg.features.layer)] = np.asarray(features, dtype=np.float32)
        if embedding is not None:
            fixed["embedding"] = np.asarray(embedding, dtype=np.float32)
        resources = FixedResources(cfg, fixed, fixed_daar=domain_model, generator=generator)
        return SelectionContext(cfg, Pool.load(path), resources)

    return build
