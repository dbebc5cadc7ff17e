"""`daar experiment CONFIG.yaml`: the paper's protocol end to end from one file.

pool (+ probe set) -> every method selects at the same budget -> each (method, seed) is LoRA-tuned
-> each adapter is evaluated -> a methods x tasks table with mean ± std over seeds and the per-seed
rows (Markdown, CSV) and a plot with error bars, with the raw model row and the full-pool row when
asked. Every step reuses what is already on disk: selections and features through the stage and
feature caches, a finished training run (its train_manifest.json exists) is not repeated, and
evaluation results are cached per task. The table is rewritten after every evaluation, so a run
stopped early keeps what finished.

Config keys (relative paths are taken from the current directory; run from the project root):

    out: runs/cpu-small
    pool:  [{path: ../shared/data/pool/coding.jsonl, rows: "0:1000", label: coding}, ...]
    probe: [{path: ..., rows: "5000:5250"}, ...]        # optional; default: a sample of the pool
    settings: {model: default, budget: 20%, ...}          # Config keys shared by every step
    methods: [daar, random, instruction-length, ifd]
    seeds: [42, 43, 44]                                   # training seeds (mean ± std over them)
    select_per_seed: false                                # true: each seed also reselects (seeded
                                                          # selectors and DaaR's stages vary too)
    compare: [daar, random]                               # the pair whose difference is judged
    train: {max_steps: 100, train_max_length: 512, ...}   # Config keys for daar train
    eval: {tasks: "heldout-loss,hellaswag,mmlu", limit: 50}
    raw_model: true                                       # add the untuned model's row
    full_pool: false                                      # add a row trained on the whole pool

Evaluation subsets are the same for every row (drawn with settings.seed, not the training seed),
so rows differ only by what was trained.
"""

from __future__ import annotations

import copy
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


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The experiment spec from YAML (with `overrides` merged into it), keys checked before anything runs."""
    import yaml

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: experiment config not found")
    spec = merge(yaml.safe_load(p.read_text()) or {}, overrides or {})
    for key in ("pool", "methods"):
        if key not in spec:
            raise ConfigError(f"{p}: missing '{key}'")
    spec.setdefault("out", f"runs/{p.stem}")
    spec.setdefault("seeds", [42])
    spec.setdefault("settings", {})
    spec.setdefault("train", {})
    spec.setdefault("eval", {"tasks": "heldout-loss"})
    spec.setdefault("select_per_seed", False)
    spec.setdefault("compare", ["daar", "random"])
    seeds = spec["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"{p}: 'seeds' must be a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{p}: 'seeds' lists a seed twice: {seeds}")
    pair = spec["compare"]
    if not (isinstance(pair, list) and len(pair) == 2):
        raise ConfigError(f"{p}: 'compare' must be two method names, e.g. [daar, random]; got {pair!r}")
    if not isinstance(spec["select_per_seed"], bool):
        raise ConfigError(f"{p}: 'select_per_seed' must be true or false, got {spec['select_per_seed']!r}")
    Config.from_mapping({**spec["settings"], **spec["train"], **spec["eval"]}, source=str(p))  # validate keys early
    return spec


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` merged in: nested mappings key by key, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def run_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = load_experiment(path, overrides)
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
    selections, budget = _select_all(spec, base, out, timings)
    if spec.get("full_pool"):
        selections["full-pool"] = {seed: pool for seed in spec["seeds"]}
    results = _train_and_evaluate(spec, settings, selections, out, timings)
    table = write_table(results, out, pair=tuple(spec["compare"]), notes=_notes(spec, budget))
    summary = {"config": spec, "budget": budget, "table": table, "timings_seconds": timings,
               "wall_seconds": round(time.perf_counter() - t0, 1)}
    atomic_write(out / "experiment.json", json.dumps(summary, indent=2, default=str))
    return summary


def _select_all(spec: dict[str, Any], base: Config, out: Path,
                timings: dict[str, float]) -> tuple[dict[str, dict[int, Path]], int]:
    """Every method selects once (or once per seed with select_per_seed) over shared resources."""
    from daar.runs.select import load_context, run_method
    from daar.selectors.context import SelectionContext

    ctx = load_context(base)
    budget = parse_budget(base.selection.budget, ctx.n)
    per_seed = spec["select_per_seed"]
    contexts: dict[int, SelectionContext] = {}
    selections: dict[str, dict[int, Path]] = {}
    for method in spec["methods"]:
        for seed in (spec["seeds"] if per_seed else [None]):
            if seed is None or seed == base.run.seed:
                c, name = ctx, method if seed is None else f"{method}-s{seed}"
            else:  # same pool, own resources: DaaR's fitted model is keyed by the pool, not the seed
                c = contexts.setdefault(seed, SelectionContext.create(base.replace(seed=seed), ctx.pool))
                name = f"{method}-s{seed}"
            t = time.perf_counter()
            run_method(c, method, budget, out / "select" / name)
            timings[f"select:{name}"] = time.perf_counter() - t
            path = out / "select" / name / "selected.jsonl"
            if seed is None:
                selections[method] = {s: path for s in spec["seeds"]}
            else:
                selections.setdefault(method, {})[seed] = path
    return selections, budget


def _train_and_evaluate(spec: dict[str, Any], settings: dict[str, Any], selections: dict[str, dict[int, Path]],
                        out: Path, timings: dict[str, float]) -> dict[str, dict[int, dict[str, Any]]]:
    from daar.evaluate import evaluate

    # every row is evaluated on the same subsets: the eval seed is the experiment's, not the training seed
    eval_cfg = {**settings, **spec["eval"], "seed": settings.get("seed", 42)}
    pair = tuple(spec["compare"])
    results: dict[str, dict[int, dict[str, Any]]] = {}
    if spec.get("raw_model", True):
        t = time.perf_counter()
        results["raw-model"] = {0: evaluate(Config.from_mapping({**eval_cfg, "out": str(out / "eval" / "raw-model")}))}
        timings["eval:raw-model"] = time.perf_counter() - t
    for method, by_seed in selections.items():
        for seed, data in by_seed.items():
            t = time.perf_counter()
            adapter = _train(spec, settings, data, out / "train" / f"{method}-s{seed}", seed)
            timings[f"train:{method}-s{seed}"] = time.perf_counter() - t
            t = time.perf_counter()
            r = evaluate(Config.from_mapping({**eval_cfg, "adapter": adapter,
                                              "out": str(out / "eval" / f"{method}-s{seed}")}))
            results.setdefault(method, {})[seed] = r
            timings[f"eval:{method}-s{seed}"] = time.perf_counter() - t
            write_table(results, out, pair=pair)  # a run stopped early keeps every finished row
    return results


def _train(spec: dict[str, Any], settings: dict[str, Any], data: Path, run: Path, seed: int) -> str:
    """The adapter folder of (data, seed): reused when finished, continued from a checkpoint when cut."""
    from daar.train import train_lora

    manifest = run / "train_manifest.json"
    if manifest.exists():
        return json.loads(manifest.read_text()).get("adapter_dir") or str(run)
    resume = any(run.glob("checkpoints/checkpoint-*")) or any(run.glob("checkpoint-*"))
    cfg = Config.from_mapping({**settings, **spec["train"], "data": str(data), "out": str(run), "seed": seed,
                               "resume": bool(resume)})
    return str(train_lora(cfg).adapter_dir)


def _notes(spec: dict[str, Any], budget: int) -> list[str]:
    what = ("each seed reselects (seeded selectors and DaaR's stages) and retrains" if spec["select_per_seed"]
            else "one selection per method; the seeds vary LoRA initialisation and data order")
    return [f"Budget {budget} records; seeds {', '.join(map(str, spec['seeds']))}: {what}.",
            f"Evaluation: {spec['eval'].get('tasks')} (limit {spec['eval'].get('limit', 'the paper subset')}), "
            "the same items for every row."]


def write_table(results: dict[str, dict[int, dict[str, Any]]], out: Path, pair: tuple[str, str] = ("daar", "random"),
                notes: list[str] | None = None) -> list[dict[str, Any]]:
    """experiment.md / .csv / .png: mean ± std per method and column, the per-seed rows, the pair's verdict."""
    from daar.runs import aggregate as ag

    agg = ag.aggregate(results)
    atomic_write(out / "experiment.csv", table_csv(agg))
    atomic_write(out / "experiment.md", table_markdown(agg, pair, notes or []))
    plot(agg, out / "experiment.png")
    return [{"method": m, "seeds": agg.seeds[m],
             **{c: {"mean": s.mean, "std": s.std, "n": s.n} for c, s in cols.items()}}
            for m, cols in agg.summary.items()]


def _num(v: float | None, digits: int = 4) -> str:
    return "" if v is None or v != v else f"{v:.{digits}f}"


def table_csv(agg) -> str:
    """One row per (method, seed) (stat=seed), then per method stat=mean and stat=std (blank below 2 seeds)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method", "stat", "seed", "n", *agg.columns])
    for r in agg.per_seed:
        w.writerow([r["method"], "seed", r["seed"], 1, *(_num(r.get(c), 6) for c in agg.columns)])
    for m, cols in agg.summary.items():
        n = max((s.n for s in cols.values()), default=0)
        w.writerow([m, "mean", "", n, *(_num(cols[c].mean, 6) for c in agg.columns)])
        w.writerow([m, "std", "", n, *(_num(cols[c].std, 6) for c in agg.columns)])
    return buf.getvalue()


def table_markdown(agg, pair: tuple[str, str], notes: list[str]) -> str:
    from daar.runs import aggregate as ag

    cols = agg.columns
    head = ["method", "seeds", *cols]
    lines = ["# Experiment: mean ± std over seeds", "",
             "Benchmarks in % (higher is better); average = mean of the benchmark columns; heldout-loss = "
             "response-token loss in nats per token (lower is better), per source domain and their unweighted "
             "mean. ± = sample standard deviation over seeds (ddof=1); n/a = one seed, no spread.", ""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m, by_col in agg.summary.items():
        digits = {c: 4 if ag.lower_is_better(c) else 2 for c in cols}
        lines.append("| " + " | ".join([m, str(len(agg.seeds[m])), *(by_col[c].text(digits[c]) for c in cols)]) + " |")
    a, b = pair
    verdict = ag.verdict(agg, a, b)
    lines += ["", f"## {a} vs {b}", ""]
    if verdict:
        lines += [f"Rule: {ag.RULE}.", ""] + [f"- {v}" for v in verdict]
    else:
        lines.append(f"Not judged: {a} and {b} are not both in the table.")
    lines += ["", "## Per seed", "", "| " + " | ".join(["method", "seed", *cols]) + " |",
              "|" + "---|" * (len(cols) + 2)]
    for r in agg.per_seed:
        lines.append("| " + " | ".join([r["method"], str(r["seed"]),
                                        *(_num(r.get(c), 4 if ag.lower_is_better(c) else 2) for c in cols)]) + " |")
    return "\n".join(lines) + "\n"


def figure(agg):
    """One panel per column: per-method mean with ± std error bars, the seeds' values as dots."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from daar.runs import aggregate as ag

    cols = [c for c in agg.columns if any(s[c].n for s in agg.summary.values())]
    if not cols:
        return None
    methods = list(agg.summary)
    ncol = min(4, len(cols))
    nrow = math.ceil(len(cols) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 3.0 * nrow), squeeze=False)
    for ax, c in zip(axes.flat, cols, strict=False):
        means = [agg.summary[m][c].mean for m in methods]
        stds = [0.0 if math.isnan(agg.summary[m][c].std) else agg.summary[m][c].std for m in methods]
        ax.errorbar(range(len(methods)), means, yerr=stds, fmt="o", capsize=4, color="#2a6", ecolor="#333")
        for i, m in enumerate(methods):
            vals = [r[c] for r in agg.per_seed if r["method"] == m and r.get(c) is not None]
            ax.plot([i] * len(vals), vals, ".", color="#999", markersize=4)
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right", fontsize=8)
        ax.set_title(c + (" (lower is better)" if ag.lower_is_better(c) else " (%)"), fontsize=9)
    for ax in list(axes.flat)[len(cols):]:
        ax.set_visible(False)
    fig.suptitle("mean ± std over seeds (dots: seeds)", fontsize=9)
    fig.tight_layout()
    return fig


def plot(agg, path: Path) -> None:
    fig = figure(agg)  # selects the Agg backend before pyplot is imported
    if fig is None:
        return
    import matplotlib.pyplot as plt

    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=90))
    plt.close(fig)
