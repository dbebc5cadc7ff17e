"""Selection quality of DaaR on real data with the hidden source labels.

Workloads (../shared/docs/WORKLOADS.md): W-4k = rows 0..1000 of each pool file, probe set rows
5000..5250 of each, in the order common_sense, reasoning, mathematics, coding. `--mix 400,300,200,100`
takes that many rows (from row 0) of each file instead, for a pool of unequal mix; the probe set then
follows the same proportions (`--probe-mix`, default: a quarter of --mix). The source label is hidden
from the method (kept in a `source` field nothing reads) and used only to score:

- agreement of the probe pseudo-labels and of the pool pseudo-domains (psi_dom argmax) with the
  sources: **named** (pseudo-domain name = source name) and **matched** (best one-to-one matching);
- the naming margins of each domain (when the method reports them);
- psi_dom's validation accuracy on its pseudo-labels;
- stability: overlap of the selections of the runs with different seeds (synthesis included);
- the source mix of the selection vs the pool (counts and total-variation distance), time per stage.

    python benchmarks/select_quality.py --seeds 42,43,44 --out runs/bench-select
    python benchmarks/select_quality.py --mix 400,300,200,100 --out runs/bench-select-mix
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SOURCES = ("common_sense", "reasoning", "mathematics", "coding")
DATA = ROOT.parent / "shared" / "data" / "pool"


def write_workload(out: Path, pool_rows: list[tuple[int, int]], probe_rows: list[tuple[int, int]]) -> tuple[Path, Path]:
    """Pool and probe files: rows a..b of each source file (one (a, b) per source, WORKLOADS.md order)."""
    from daar.data.slices import write_slices

    def parts(rows):
        return [{"path": str(DATA / f"{d}.jsonl"), "rows": f"{a}:{b}", "label": d} for d, (a, b) in zip(SOURCES, rows,
                                                                                                     strict=True)]

    pool, probe = out / "pool.jsonl", out / "probe.jsonl"
    write_slices(parts(pool_rows), pool)
    write_slices(parts(probe_rows), probe)
    return pool, probe


def workload_rows(mix: str | None, probe_mix: str | None = None, pool_rows: str = "0:1000",
                  probe_rows: str = "5000:5250") -> tuple[list[tuple[int, int]], list[tuple[int, int]], str]:
    """(pool rows, probe rows, workload name): W-4k's rows, other rows a:b of every source, or an unequal
    mix of rows per source from row 0 with a probe set from row 5000 (default: a quarter of the mix)."""
    if mix:
        counts = [int(x) for x in mix.split(",")]
        probe_counts = [int(x) for x in probe_mix.split(",")] if probe_mix else [c // 4 for c in counts]
        return ([(0, c) for c in counts], [(5000, 5000 + c) for c in probe_counts],
                f"unequal mix {mix} (probe {','.join(map(str, probe_counts))}, rows 5000..)")
    pr = tuple(int(x) for x in pool_rows.split(":"))
    qr = tuple(int(x) for x in probe_rows.split(":"))
    workload = "W-4k" if (pr, qr) == ((0, 1000), (5000, 5250)) else f"pool rows {pr}, probe rows {qr}"
    return [pr] * 4, [qr] * 4, workload


def source_labels(path: Path) -> np.ndarray:
    """The hidden source of every record of a workload file, as an index into SOURCES."""
    with open(path, encoding="utf-8") as fh:
        return np.array([SOURCES.index(json.loads(line)["source"]) for line in fh])


def matched_agreement(pred: np.ndarray, truth: np.ndarray, k: int) -> tuple[float, dict[int, int]]:
    """Share of records whose cluster maps to their source under the best one-to-one matching."""
    from scipy.optimize import linear_sum_assignment

    m = np.zeros((k, k), dtype=int)
    np.add.at(m, (pred, truth), 1)
    rows, cols = linear_sum_assignment(-m)
    return float(m[rows, cols].sum() / len(pred)), dict(zip(rows.tolist(), cols.tolist(), strict=True))


def named_agreement(pred: np.ndarray, names: list[str], truth: np.ndarray) -> float:
    """Share of records whose pseudo-domain NAME is their source (no matching allowed)."""
    to_source = np.array([SOURCES.index(n) if n in SOURCES else -1 for n in names])
    return float((to_source[pred] == truth).mean())


def tv(a: Counter, b: Counter) -> float:
    na, nb = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a.get(s, 0) / na - b.get(s, 0) / nb) for s in SOURCES)


def one_run(cfg, run: Path, truth_pool: np.ndarray, truth_probe: np.ndarray) -> tuple[dict, set]:
    from daar.runs.select import load_context, run_method
    from daar.settings import parse_budget

    t0 = time.perf_counter()
    ctx = load_context(cfg)
    budget = parse_budget(cfg.selection.budget, ctx.n)
    result, m = run_method(ctx, "daar", budget, run)
    wall = time.perf_counter() - t0
    model, scores = ctx.daar_model, ctx.daar_scores
    names = list(model.domain_names)
    k = len(names)
    probe_match, _ = matched_agreement(model.probe_labels, truth_probe, k)
    pool_match, mapping = matched_agreement(scores.domain, truth_pool, k)
    sel = result.selected
    mix = Counter(SOURCES[t] for t in truth_pool[sel])
    pool_mix = Counter(SOURCES[t] for t in truth_pool)
    naming = getattr(model, "naming", None) or {}
    row = {"seed": cfg.run.seed,
           "probe_named": round(named_agreement(model.probe_labels, names, truth_probe), 4),
           "probe_matched": round(probe_match, 4),
           "pool_named": round(named_agreement(scores.domain, names, truth_pool), 4),
           "pool_matched": round(pool_match, 4),
           "probe_val_accuracy": model.probe_metrics.get("val_accuracy"),
           "naming": naming,
           "cluster_to_source": {names[a]: SOURCES[b] for a, b in mapping.items()},
           "selected_source_mix": {s: mix.get(s, 0) for s in SOURCES},
           "selection_tv": round(tv(mix, pool_mix), 4),
           "synthesis": model.synthesis,
           "stage_seconds": {s["name"]: s["seconds"] for s in m["stages"]},
           "wall_seconds": round(wall, 1)}
    return row, set(np.asarray(ctx.pool.ids)[sel])


def labels_only_run(cfg, truth_probe: np.ndarray) -> dict:
    """The stages up to the probe pseudo-labels only (cached synthesis is reused): naming and agreement."""
    from daar.method.pipeline import build_pipeline
    from daar.method.pseudolabels import probe_set
    from daar.method.stage import StageRunner, StageStore
    from daar.runs.select import load_pool

    t0 = time.perf_counter()
    probe = probe_set(cfg, load_pool(cfg), len(SOURCES))
    stages = build_pipeline(cfg, probe)
    art = StageRunner(StageStore()).run(stages.labels)
    names = [d.name for d in stages.synthesis.domains]
    labels = art.arrays["labels"]
    matched, _ = matched_agreement(labels, truth_probe, len(names))
    return {"seed": cfg.run.seed, "probe_named": round(named_agreement(labels, names, truth_probe), 4),
            "probe_matched": round(matched, 4), "naming": art.meta["naming"],
            "wall_seconds": round(time.perf_counter() - t0, 1)}


def print_table(workload: str, rows: list[dict], overlaps: list[float], pool_mix: Counter) -> None:
    print(f"\n## DaaR selection quality ({workload}, bundled SmolLM2-135M)\n")
    print("| seed | probe named | probe matched | pool named | pool matched | psi_dom val acc | min naming margin "
          "| selection mix (cs/rs/ma/co) | selection TV | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mix = "/".join(str(r["selected_source_mix"][s]) for s in SOURCES)
        margins = [v for v in (r["naming"].get("margins") or {}).values() if v is not None]
        margin = f"{min(margins):.3f}" if margins else "-"
        print(f"| {r['seed']} | {r['probe_named']:.1%} | {r['probe_matched']:.1%} | {r['pool_named']:.1%} | "
              f"{r['pool_matched']:.1%} | {r['probe_val_accuracy']:.1%} | {margin} | {mix} | {r['selection_tv']:.3f} "
              f"| {r['wall_seconds']} |")
    print(f"\npool mix (cs/rs/ma/co): {'/'.join(str(pool_mix[s]) for s in SOURCES)}")
    if overlaps:
        print(f"selection overlap between seeds: mean {np.mean(overlaps):.1%}, min {np.min(overlaps):.1%} "
              f"({len(overlaps)} pairs)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/bench-select")
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--pool-rows", default="0:1000", help="rows a:b of every source (W-4k: 0:1000)")
    ap.add_argument("--probe-rows", default="5000:5250", help="rows a:b of every source (W-4k: 5000:5250)")
    ap.add_argument("--mix", default=None, help="rows per source from row 0, e.g. 400,300,200,100 (unequal mix)")
    ap.add_argument("--probe-mix", default=None, help="probe rows per source from row 5000 (default: mix / 4)")
    ap.add_argument("--budget", default="20%")
    ap.add_argument("--set", nargs="*", default=[], help="extra settings KEY=VALUE (e.g. assignment=nearest)")
    ap.add_argument("--labels-only", action="store_true",
                    help="stop at the probe pseudo-labels: naming and probe agreement only (no heads, no selection)")
    args = ap.parse_args()
    from daar.settings import Config

    pool_rows, probe_rows, workload = workload_rows(args.mix, args.probe_mix, args.pool_rows, args.probe_rows)
    out = Path(args.out)
    pool, probe = write_workload(out / "data", pool_rows, probe_rows)
    truth_pool, truth_probe = source_labels(pool), source_labels(probe)
    extra = dict(kv.split("=", 1) for kv in args.set)
    rows, selections = [], {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        cfg = Config.from_mapping({"model": "default", "budget": args.budget, "data": str(pool),
                                   "probe_data": str(probe), "seed": seed, **extra},
                                  source="select_quality --set").apply_preset().validate()
        if args.labels_only:
            row = labels_only_run(cfg, truth_probe)
            nm = row["naming"]
            print(f"{workload} seed {seed}: probe named {row['probe_named']:.3f} matched {row['probe_matched']:.3f} "
                  f"naming {nm.get('naming')} margins "
                  + " ".join(f"{k} {v:.2f}" for k, v in nm["margins"].items()) + f" ({row['wall_seconds']} s)",
                  flush=True)
            rows.append({**row, "workload": workload})
            continue
        row, selections[seed] = one_run(cfg, out / f"seed-{seed}", truth_pool, truth_probe)
        row["workload"] = workload
        rows.append(row)
        print(json.dumps(row, default=str), flush=True)
    if args.labels_only:
        (out / "labels.json").write_text(json.dumps({"workload": workload, "rows": rows, "settings": extra},
                                                    indent=1, default=str))
        return
    overlaps = [len(selections[a] & selections[b]) / len(selections[a])
                for a, b in itertools.combinations(list(selections), 2)]
    pool_mix = Counter(SOURCES[t] for t in truth_pool)
    print_table(workload, rows, overlaps, pool_mix)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    (out / "summary.json").write_text(json.dumps({"workload": workload, "rows": rows, "overlaps": overlaps,
                                                  "settings": extra, "machine": machine}, indent=1, default=str))


if __name__ == "__main__":
    main()
