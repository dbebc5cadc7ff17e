"""`daar experiment` end to end on a tiny model: selections, training, evaluation, the table."""

from __future__ import annotations

import csv
import json

import pytest
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
    means = [r for r in table if r["stat"] == "mean"]
    assert [r["method"] for r in means] == ["raw-model", "daar", "random"]
    assert [r["n"] for r in means] == ["1", "2", "2"]
    assert all(float(r["heldout-loss"]) > 0 for r in means)
    seeds = [(r["method"], r["seed"]) for r in table if r["stat"] == "seed"]
    assert seeds == [("raw-model", "0"), ("daar", "1"), ("daar", "2"), ("random", "1"), ("random", "2")]
    for r in means[1:]:  # the mean row is the mean of the seed rows, per domain too
        vals = [float(x["heldout-loss:coding"]) for x in table if x["stat"] == "seed" and x["method"] == r["method"]]
        assert float(r["heldout-loss:coding"]) == pytest.approx(sum(vals) / 2, abs=1e-6)
    std = {r["method"]: r for r in table if r["stat"] == "std"}
    assert std["raw-model"]["heldout-loss"] == "" and float(std["random"]["heldout-loss"]) >= 0
    md = (out / "experiment.md").read_text()
    assert "± n/a (1 seed)" in md and "## daar vs random" in md and "sum of the two sample stds" in md
    # every row is evaluated on the same held-out items, whatever its training seed
    items = {json.loads((out / "eval" / run / "results.json").read_text())["tasks"]["heldout-loss"]["n"]
             for run in ("raw-model", "daar-s1", "random-s2")}
    assert len(items) == 1
    for m in ("daar", "random"):
        assert sum(1 for _ in open(out / "select" / m / "selected.jsonl")) == 8
        for s in (1, 2):
            assert (out / "train" / f"{m}-s{s}" / "adapter_config.json").exists()
    # a rerun reuses every artifact: no training run is repeated
    mtime = (out / "train" / "daar-s1" / "train_manifest.json").stat().st_mtime
    assert main(["experiment", "exp.yaml"]) == 0
    assert (out / "train" / "daar-s1" / "train_manifest.json").stat().st_mtime == mtime


def test_select_per_seed_reselects_with_each_seed(tmp_path, select_kwargs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = pool_rows()
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"out": "runs/exp", "pool": [{"path": "pool.jsonl"}], "settings": {**select_kwargs, "budget": "8", "seed": 1},
            "methods": ["random"], "seeds": [1, 2], "select_per_seed": True,
            "train": {"max_steps": 1, "train_batch_size": 2, "gradient_accumulation": 1, "train_max_length": 64},
            "eval": {"tasks": "heldout-loss", "extra": {"pool_dir": str(tmp_path / "heldout"), "heldout_rows": "0:2"}},
            "raw_model": False}
    (tmp_path / "heldout").mkdir()
    (tmp_path / "heldout" / "coding.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[-4:]))
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(spec))
    from daar.runs.experiment import run_experiment

    summary = run_experiment("exp.yaml")
    out = tmp_path / "runs" / "exp"
    picked = [[json.loads(x)["id"] for x in open(out / "select" / f"random-s{s}" / "selected.jsonl")] for s in (1, 2)]
    assert len(picked[0]) == len(picked[1]) == 8 and picked[0] != picked[1]
    assert summary["table"][0]["seeds"] == [1, 2]
    assert "each seed reselects" in (out / "experiment.md").read_text()


def test_experiment_config_errors_name_the_file_and_the_key(tmp_path):
    from daar.errors import ConfigError
    from daar.runs.experiment import load_experiment

    base = {"pool": [{"path": "p.jsonl"}], "methods": ["random"]}
    for bad, match in (({"seeds": []}, "'seeds' must be a non-empty list"), ({"seeds": [1, 1]}, "lists a seed twice"),
                       ({"compare": ["daar"]}, "'compare' must be two method names"),
                       ({"select_per_seed": "yes"}, "'select_per_seed' must be true or false")):
        (tmp_path / "e.yaml").write_text(yaml.safe_dump({**base, **bad}))
        with pytest.raises(ConfigError, match=match) as info:
            load_experiment(tmp_path / "e.yaml")
        assert "e.yaml" in str(info.value)
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(base))
    spec = load_experiment(tmp_path / "e.yaml", {"train": {"max_steps": 3}, "seeds": [5, 6]})
    assert spec["train"] == {"max_steps": 3} and spec["seeds"] == [5, 6]


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


@pytest.mark.slow
def test_gpu_evidence_rehearsal_runs_every_step_on_the_cpu(tmp_path, select_kwargs, shared_data, monkeypatch):
    """benchmarks/gpu_evidence.py --rehearse: the comparison with every judged selector and the 2-seed
    experiment on a few records of W-4k, tiny model, so the GPU minutes go to the real run."""
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    monkeypatch.syspath_prepend(str(root / "benchmarks"))
    spec = importlib.util.spec_from_file_location("gpu_evidence", root / "benchmarks" / "gpu_evidence.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_evidence"] = mod
    spec.loader.exec_module(mod)
    out = tmp_path / "ev"
    rc = mod.main(["--rehearse", "--out", str(out), "--data-dir", str(shared_data), "--model", select_kwargs["model"],
                   "--set", f"domains={select_kwargs['domains']}", "--set", "layer=2", "--set", "dtype=float32"])
    report = json.loads((out / "evidence.json").read_text())
    comparison = json.loads((out / "compare" / "comparison.json").read_text())
    assert [r["method"] for r in comparison["runs"]] == mod.CHEAP + mod.JUDGED and not comparison["pending"]
    assert all("label_share" in r for r in comparison["runs"] if r["status"] == "ok")  # the source mix
    assert report["experiment"] == "finished" and rc == 0, report
    assert report["experiment_methods"][:2] == ["daar", "random"]
    table = list(csv.DictReader(open(out / "experiment" / "experiment.csv")))
    assert {(r["method"], r["seed"]) for r in table if r["stat"] == "seed" and r["method"] == "random"} == {
        ("random", "42"), ("random", "43")}
    assert {"hellaswag", "mmlu", "heldout-loss:coding"} <= set(table[0])
    assert (out / "experiment" / "experiment.png").is_file()


def test_the_cpu_proxy_config_names_its_workload_methods_and_seeds():
    from pathlib import Path

    from daar.runs.experiment import load_experiment

    spec = load_experiment(Path(__file__).resolve().parents[2] / "configs" / "cpu-proxy.yaml")
    assert {p["rows"] for p in spec["pool"]} == {"0:500"} and {p["rows"] for p in spec["probe"]} == {"5000:5125"}
    assert spec["methods"] == ["daar", "random", "random-balanced", "instruction-length", "kcenter"]
    assert len(spec["seeds"]) >= 3 and spec["select_per_seed"] is True and spec["compare"] == ["daar", "random"]
    assert set(spec["eval"]["tasks"].split(",")) == {"heldout-loss", "hellaswag", "mmlu"}


@pytest.mark.slow
def test_the_cpu_proxy_runs_end_to_end_with_tiny_settings(tmp_path, select_kwargs, shared_data, monkeypatch):
    """configs/cpu-proxy.yaml as shipped (methods, seeds, per-seed selection, tasks), shrunk: a tiny model,
    6 records per source, one training step, two eval items."""
    from pathlib import Path

    from daar.runs.experiment import run_experiment

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)  # the config's paths are relative to the project root
    parts = lambda rows: [{"path": str(shared_data / "pool" / f"{d}.jsonl"), "rows": rows}  # noqa: E731
                          for d in ("common_sense", "reasoning", "mathematics", "coding")]
    over = {"out": str(tmp_path / "proxy"), "pool": parts("0:6"), "probe": parts("5000:5006"),
            "settings": {**select_kwargs, "budget": 8, "extra": {"heldout_rows": "6250:6252"}},
            "train": {"max_steps": 1, "train_batch_size": 2, "train_max_length": 512},
            "eval": {"limit": 2, "eval_batch_size": 4, "max_length": 512, "data_dir": str(shared_data / "eval")}}
    summary = run_experiment(root / "configs" / "cpu-proxy.yaml", over)
    methods = [r["method"] for r in summary["table"]]
    assert methods == ["raw-model", "daar", "random", "random-balanced", "instruction-length", "kcenter"]
    assert all(r["seeds"] == [42, 43, 44] for r in summary["table"][1:])
    md = (tmp_path / "proxy" / "experiment.md").read_text()
    assert "daar - random on heldout-loss:coding" in md and "mmlu" in md and "hellaswag" in md
