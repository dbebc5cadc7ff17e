"""The demo's offline pool: from ../shared/data when present, else from installed packages."""

from __future__ import annotations

import json
from collections import Counter

from daar.data.readers import load_records
from daar.runs.demo import SOURCES, _from_packages, build_demo_pool


def test_demo_pool_from_installed_packages_covers_every_source():
    pool, probe = _from_packages(per_source=4, probe_per_source=2, seed=42)
    assert Counter(r["source"] for r in pool) == {s: 4 for s in SOURCES}
    assert Counter(r["source"] for r in probe) == {s: 2 for s in SOURCES}
    assert all(r["instruction"].strip() and r["output"].strip() for r in pool + probe)
    assert not {json.dumps(r, sort_keys=True) for r in pool} & {json.dumps(r, sort_keys=True) for r in probe}


def test_demo_pool_from_shared_data_uses_the_workload_rows(shared_data, tmp_path):
    built = build_demo_pool(tmp_path, per_source=5, probe_per_source=2)
    assert built["origin"].endswith("pool") and (built["n_pool"], built["n_probe"]) == (20, 8)
    pool = load_records(built["pool"]).records
    assert [r.raw["source"] for r in pool] == [s for s in SOURCES for _ in range(5)]
    first = json.loads(open(shared_data / "pool" / "common_sense.jsonl").readline())
    assert pool[0].id == first["id"]
    probe = load_records(built["probe"]).records
    assert probe[0].id == json.loads(open(shared_data / "pool" / "common_sense.jsonl").readlines()[5000])["id"]
