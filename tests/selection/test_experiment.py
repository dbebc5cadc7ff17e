"""`daar experiment` end to end on a tiny model: selections, training, evaluation, the table."""

from __future__ import annotations

import csv
import json

import yaml
from tests.selection.conftest import pool_rows

from daar.cli import main


def test_experiment_runs_every_method_and_seed_and_writes_the_table(tmp_path, select_kwargs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    (data / "pool").mkdir(parents=True)
    (data / "eval").mkdir()
    rows = pool_rows()
    for d in ("common_sense", "reasoning", "mathematics", "coding"):
        (data / "pool" / f"{d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["source"] == d))
    spec = {
        "out": "runs/exp",
        "pool": [{"path": f"data/pool/{d}.jsonl", "rows": "0:10", "label": d}
                 for d in ("common_sense", "reasoning", "mathematics", "coding")],
        "settings": {**select_kwargs, "budget": "8"},
        "methods": ["daar", "random"],
        "seeds": [1, 2],
        "train": {"max_steps": 2, "train_batch_size": 2, "gradient_accumulation": 1, "train_max_length": 64},
        "eval": {"tasks": "heldout-loss", "data_dir": str(data / "eval"),
                 "extra": {"pool_dir": str(data / "pool"), "heldout_rows": "10:12"}},
        "raw_model": True,
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(spec))
    assert main(["experiment", "exp.yaml"]) == 0
    out = tmp_path / "runs" / "exp"
    for f in ("experiment.md", "experiment.csv", "experiment.png", "experiment.json"):
        assert (out / f).exists(), f
    table = list(csv.DictReader(open(out / "experiment.csv")))
    assert [r["method"] for r in table] == ["raw-model", "daar", "random"]
    assert [r["seeds"] for r in table] == ["1", "2", "2"]
    assert all(float(r["heldout-loss"]) > 0 for r in table)
    for m in ("daar", "random"):
        assert sum(1 for _ in open(out / "select" / m / "selected.jsonl")) == 8
        for s in (1, 2):
            assert (out / "train" / f"{m}-s{s}" / "adapter_config.json").exists()
    # a rerun reuses every artifact: no training run is repeated
    mtime = (out / "train" / "daar-s1" / "train_manifest.json").stat().st_mtime
    assert main(["experiment", "exp.yaml"]) == 0
    assert (out / "train" / "daar-s1" / "train_manifest.json").stat().st_mtime == mtime


def test_the_shipped_configs_are_valid_and_name_standard_workloads():
    from pathlib import Path

    from daar.runs.experiment import load_experiment

    def parse_rows(text: str) -> tuple[int, ...]:
        return tuple(int(x) for x in text.split(":"))

    root = Path(__file__).resolve().parents[2] / "configs"
    # WORKLOADS.md: pool rows per source, probe rows per source
    workloads = {"W-ref": ((0, 500), (5000, 5125)), "W-4k": ((0, 1000), (5000, 5250))}
    expect = {"cpu-small.yaml": "W-ref", "gpu-w4k.yaml": "W-4k"}
    for name, workload in expect.items():
        spec = load_experiment(root / name)  # every key is a Config field
        pool_rows_, probe_rows_ = workloads[workload]
        assert [p["label"] for p in spec["pool"]] == ["common_sense", "reasoning", "mathematics", "coding"]
        assert {parse_rows(p["rows"]) for p in spec["pool"]} == {pool_rows_}, name
        assert {parse_rows(p["rows"]) for p in spec["probe"]} == {probe_rows_}, name
        assert spec["settings"]["budget"] == "20%"
        assert spec["methods"] == ["daar", "random", "instruction-length", "ifd"]
        assert set(spec["eval"]["tasks"].split(",")) == {"heldout-loss", "gsm8k", "humaneval"}
    load_experiment(root / "paper-qwen2.5-7b.yaml")
