"""`daar experiment CONFIG.yaml`: the paper's protocol end to end from one file.

pool (+ probe set) -> every method selects at the same budget -> each (method, seed) is LoRA-tuned
-> each adapter is evaluated -> a methods x tasks table (mean over seeds) as Markdown, CSV and a bar
plot, with the raw model row and the full-pool row when asked. Every step reuses what is already
on disk: selections and features through the stage and feature caches, a finished training run
(its train_manifest.json exists) is not repeated, and evaluation results are cached per task.

Config keys (relative paths are taken from the current directory; run from the project root):

    out: runs/cpu-small
    pool:  [{path: ../shared/data/pool/coding.jsonl, rows: "0:1000", label: coding}, ...]
    probe: [{path: ..., rows: "5000:5250"}, ...]        # optional; default: a sample of the pool
    settings: {model: default, budget: 20%, ...}          # Config keys shared by every step
    methods: [daar, random, instruction-length, ifd]
    seeds: [42]                                           # training seeds (results are averaged)
    train: {max_steps: 100, train_max_length: 512, ...}   # Config keys for daar train
    eval: {tasks: "heldout-loss,gsm8k,humaneval", limit: 50}
    raw_model: true                                       # add the untuned model's row
    full_pool: false                                      # add a row trained on the whole pool
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

from daar.data.slices import write_slices
from daar.errors import ConfigError
from daar.io import atomic_write
from daar.settings import Config, parse_budget

log = logging.getLogger(__name__)


def load_experiment(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: experiment config not found")
    spec = yaml.safe_load(p.read_text()) or {}
    for key in ("pool", "methods"):
        if key not in spec:
            raise ConfigError(f"{p}: missing '{key}'")
    spec.setdefault("out", f"runs/{p.stem}")
    spec.setdefault("seeds", [42])
    spec.setdefault("settings", {})
    spec.setdefault("train", {})
    spec.setdefault("eval", {"tasks": "heldout-loss"})
    Config.from_mapping({**spec["settings"], **spec["train"], **spec["eval"]}, source=str(p))  # validate keys early
    return spec


def run_experiment(path: str | Path) -> dict[str, Any]:
    from daar.evaluate import evaluate
    from daar.runs.select import load_context, run_method
    from daar.train import train_lora

    spec = load_experiment(path)
    out = Path(spec["out"])
    t0 = time.perf_counter()
    pool = out / "data" / "pool.jsonl"
    write_slices(spec["pool"], pool)
    settings = dict(spec["settings"])
    if spec.get("probe"):
        write_slices(spec["probe"], out / "data" / "probe.jsonl")
        settings["probe_data"] = str(out / "data" / "probe.jsonl")
    base = Config.from_mapping({**settings, "data": str(pool)}, source="experiment").apply_preset().validate()
    timings: dict[str, float] = {}

    # 1. selections, all methods on one pool and one set of shared resources (features, DaaR, judgements)
    ctx = load_context(base)
    budget = parse_budget(base.selection.budget, ctx.n)
    selections: dict[str, Path] = {}
    for method in spec["methods"]:
        t = time.perf_counter()
        run_method(ctx, method, budget, out / "select" / method)
        selections[method] = out / "select" / method / "selected.jsonl"
        timings[f"select:{method}"] = time.perf_counter() - t
    if spec.get("full_pool"):
        selections["full-pool"] = pool

    # 2. training and 3. evaluation, per (method, seed)
    eval_cfg = {**settings, **spec["eval"]}
    results: dict[str, dict[int, dict[str, Any]]] = {}
    if spec.get("raw_model", True):
        t = time.perf_counter()
        r = evaluate(Config.from_mapping({**eval_cfg, "out": str(out / "eval" / "raw-model")}))
        results["raw-model"] = {0: r}
        timings["eval:raw-model"] = time.perf_counter() - t
    for method, data in selections.items():
        for seed in spec["seeds"]:
            run = out / "train" / f"{method}-s{seed}"
            t = time.perf_counter()
            manifest = run / "train_manifest.json"
            if manifest.exists():
                adapter = json.loads(manifest.read_text()).get("adapter_dir") or str(run)
            else:  # continue an interrupted run from its last checkpoint
                resume = any(run.glob("checkpoints/checkpoint-*")) or any(run.glob("checkpoint-*"))
                adapter = str(train_lora(Config.from_mapping({**settings, **spec["train"], "data": str(data),
                                                              "out": str(run), "seed": seed,
                                                              "resume": bool(resume)})).adapter_dir)
            timings[f"train:{method}-s{seed}"] = time.perf_counter() - t
            t = time.perf_counter()
            r = evaluate(Config.from_mapping({**eval_cfg, "adapter": adapter,
                                              "out": str(out / "eval" / f"{method}-s{seed}"), "seed": seed}))
            results.setdefault(method, {})[seed] = r
            timings[f"eval:{method}-s{seed}"] = time.perf_counter() - t
    table = write_table(results, out)
    summary = {"config": spec, "budget": budget, "table": table, "timings_seconds": timings,
               "wall_seconds": round(time.perf_counter() - t0, 1)}
    atomic_write(out / "experiment.json", json.dumps(summary, indent=2, default=str))
    return summary


def write_table(results: dict[str, dict[int, dict[str, Any]]], out: Path) -> list[dict[str, Any]]:
    """Methods x tasks, mean over seeds; benchmarks averaged, heldout-loss shown apart (lower is better)."""
    tasks: list[str] = []
    for per_seed in results.values():
        for r in per_seed.values():
            tasks += [t for t in r["tasks"] if t not in tasks]
    rows = []
    for method, per_seed in results.items():
        row: dict[str, Any] = {"method": method, "seeds": len(per_seed)}
        for t in tasks:
            vals = [r["tasks"][t]["value"] for r in per_seed.values() if t in r["tasks"]]
            row[t] = sum(vals) / len(vals) if vals else None
        bench = [row[t] for t in tasks if t != "heldout-loss" and row[t] is not None]
        row["average"] = sum(bench) / len(bench) if bench else None
        rows.append(row)
    cols = ["method", "seeds", *tasks, "average"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write(out / "experiment.csv", buf.getvalue())
    fmt = lambda v: "" if v is None else (f"{v:.4f}" if isinstance(v, float) and v < 10 else f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    atomic_write(out / "experiment.md", "\n".join(lines) + "\n\nBenchmarks in %, heldout-loss is mean response-token "
                                       "loss (lower is better, not in the average).\n")
    _plot(rows, tasks, out / "experiment.png")
    return rows


def _plot(rows: list[dict[str, Any]], tasks: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [t for t in tasks if any(r.get(t) is not None for r in rows)]
    if not cols:
        return
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 3.2), squeeze=False)
    for ax, t in zip(axes[0], cols, strict=True):
        vals = [r.get(t) or 0.0 for r in rows]
        ax.bar(range(len(rows)), vals, color="#4a7")
        ax.set_xticks(range(len(rows)), [r["method"] for r in rows], rotation=45, ha="right", fontsize=8)
        ax.set_title(t + (" (lower is better)" if t == "heldout-loss" else " (%)"), fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=90))
    plt.close(fig)
