"""Fixtures for the scale tests: a pool of a few thousand records (with bad lines) cut into several
shards, the tiny model's settings, and a real local Ray cluster shared by the module that asks for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.selection.conftest import domains_file, pool_rows  # noqa: F401

N_SHARDS = 5


def write_pool(path: Path, per_domain: int = 500, bad: bool = True) -> Path:
    """4 x per_domain records in JSONL; with `bad`, a malformed line, a blank line and a schema mismatch."""
    lines = [json.dumps(r) for r in pool_rows(per_domain)]
    if bad:
        lines.insert(7, '{"instruction": "broken')
        lines.insert(300, "")
        lines.insert(1234, json.dumps({"id": "no-fields", "instruction": 3.5j.__class__.__name__, "output": ["x"]}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def big_pool(tmp_path) -> Path:
    return write_pool(tmp_path / "pool.jsonl")


@pytest.fixture
def scale_kwargs(tiny_llama, domains_file) -> dict:  # noqa: F811
    """Settings of a fast DaaR run on the tiny model, several shards, bad records set aside."""
    return {"model": tiny_llama, "domains": str(domains_file), "dtype": "float32", "max_length": 64,
            "probe_size": 40, "probe_epochs": 2, "budget": "200", "layer": "2", "on_bad_record": "skip",
            "shard_size": 2000 // N_SHARDS, "device": "cpu"}


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster for the module; shut down after it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, object_store_memory=200_000_000, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
