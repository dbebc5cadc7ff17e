"""Fixtures for selection tests: a small 4-domain pool and a domains file with fixed examples
(so no generation is needed and every run is fast and deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

TOPICS = {
    "common_sense": [("Why is the sky blue?", "Sunlight scatters off air molecules, blue the most."),
                     ("What do bees make?", "Bees make honey and wax."),
                     ("Where does rain come from?", "Water vapour condenses into clouds and falls as rain.")],
    "reasoning": [("All cats are animals. Tom is a cat. Is Tom an animal?", "Yes, by the syllogism."),
                  ("If it rains the ground is wet. The ground is dry. Did it rain?", "No, by modus tollens."),
                  ("Some birds fly. Penguins are birds. Do penguins surely fly?", "No, some is not all.")],
    "mathematics": [("What is 17 + 25?", "17 + 25 = 42. The answer is 42."),
                    ("Solve 3x = 21.", "x = 21 / 3 = 7. The answer is 7."),
                    ("A box has 4 rows of 6 eggs. How many eggs?", "4 * 6 = 24. The answer is 24.")],
    "coding": [("Write a Python function to reverse a string.", "def rev(s):\n    return s[::-1]"),
               ("Write SQL to count rows in table users.", "SELECT COUNT(*) FROM users;"),
               ("Write a JavaScript arrow function that doubles x.", "const double = x => 2 * x;")],
}


def pool_rows(per_domain: int = 12) -> list[dict]:
    rows = []
    for d, items in TOPICS.items():
        for i in range(per_domain):
            q, a = items[i % len(items)]
            rows.append({"id": f"{d}-{i:03d}", "instruction": f"{q} (variant {i})", "input": "", "output": a,
                         "source": d})
    return rows


@pytest.fixture
def pool_file(tmp_path) -> Path:
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in pool_rows()))
    return path


@pytest.fixture
def domains_file(tmp_path) -> Path:
    doms = [{"name": d, "description": f"{d} questions",
             "examples": [{"instruction": q, "input": "", "output": a} for q, a in items]}
            for d, items in TOPICS.items()]
    path = tmp_path / "domains.yaml"
    path.write_text(yaml.safe_dump(doms))
    return path


@pytest.fixture
def select_kwargs(tiny_llama, domains_file) -> dict:
    """Settings for a fast DaaR run on the tiny model."""
    return {"model": tiny_llama, "domains": str(domains_file), "dtype": "float32", "max_length": 64,
            "probe_size": 24, "probe_epochs": 2, "budget": "10", "layer": "2"}
