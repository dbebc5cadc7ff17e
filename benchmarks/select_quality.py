"""Selection quality of DaaR on real data with the hidden source labels (issue: DaaR end to end).

Workload W-4k (../shared/docs/WORKLOADS.md): pool = rows 0..1000 of each pool file, probe set =
rows 5000..5250 of each, in the order common_sense, reasoning, mathematics, coding. The source
label is hidden from the method (kept in a `source` field nothing reads) and used only to score:

- agreement of pseudo-labels (probe set) and pseudo-domains (pool, psi_dom argmax) with the sources,
  under the best one-to-one matching of domains to sources (Hungarian);
- psi_dom's validation accuracy on its pseudo-labels;
- stability: overlap of the selections of runs with different seeds (synthesis included);
- the source mix of the 20% selection vs the pool, and wall time per stage.

    python benchmarks/select_quality.py --seeds 42,43,44 --out runs/bench-select
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

SOURCES = ("common_sense", "reasoning", "mathematics", "coding")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pool"


def write_workload(out: Path, pool_rows: tuple[int, int], probe_rows: tuple[int, int]) -> tuple[Path, Path]:
    from daar.data.slices import standard_parts, write_slices

    pool, probe = out / "pool.jsonl", out / "probe.jsonl"
    write_slices(standard_parts(DATA, pool_rows), pool)
    write_slices(standard_parts(DATA, probe_rows), probe)
    return pool, probe


def matched_agreement(pred: np.ndarray, truth: np.ndarray, k: int) -> tuple[float, dict[int, int]]:
    from scipy.optimize import linear_sum_assignment

    m = np.zeros((k, k), dtype=int)
    np.add.at(m, (pred, truth), 1)
    rows, cols = linear_sum_assignment(-m)
    return float(m[rows, cols].sum() / len(pred)), dict(zip(rows.tolist(), cols.tolist(), strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/bench-select")
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--pool-rows", default="0:1000")
    ap.add_argument("--probe-rows", default="5000:5250")
    ap.add_argument("--budget", default="20%")
    ap.add_argument("--set", nargs="*", default=[], help="extra settings KEY=VALUE passed to DaaR (e.g. assignment=nearest)")
    args = ap.parse_args()
    from daar.runs.select import DaaR

    pr = tuple(int(x) for x in args.pool_rows.split(":"))
    qr = tuple(int(x) for x in args.probe_rows.split(":"))
    workload = f"W-4k-like pool rows {pr[0]}..{pr[1]}, probe rows {qr[0]}..{qr[1]}"
    out = Path(args.out)
    pool, probe = write_workload(out / "data", pr, qr)  # type: ignore[arg-type]
    truth_pool = np.array([SOURCES.index(json.loads(line)["source"]) for line in open(pool)])
    truth_probe = np.array([SOURCES.index(json.loads(line)["source"]) for line in open(probe)])
    extra = dict(kv.split("=", 1) for kv in args.set)
    for k, v in list(extra.items()):
        try:
            extra[k] = json.loads(v)
        except json.JSONDecodeError:
            pass
    selections, rows = {}, []
    for seed in [int(s) for s in args.seeds.split(",")]:
        run = out / f"seed-{seed}"
        t0 = time.perf_counter()
        m = DaaR(model="default", budget=args.budget, probe_data=str(probe), seed=seed, **extra).select(pool, run)
        wall = time.perf_counter() - t0
        import pandas as pd

        scores = pd.read_parquet(run / "scores.parquet")
        names = m["metadata"]["domain_names"]
        pool_dom = np.array([names.index(d) for d in scores["pseudo_domain"]])
        labels = np.load(run / "stages" / "pseudo-labels.npz")["labels"]
        agree_probe, _ = matched_agreement(labels, truth_probe, len(names))
        agree_pool, mapping = matched_agreement(pool_dom, truth_pool, len(names))
        sel = scores["selected"].to_numpy()
        selections[seed] = set(scores.loc[sel, "id"])
        mix = Counter(SOURCES[t] for t in truth_pool[sel])
        stage_t = {s["name"]: s["seconds"] for s in m["stages"]}
        row = {"workload": workload, "seed": seed, "probe_label_agreement": round(agree_probe, 4),
               "pool_domain_agreement": round(agree_pool, 4),
               "probe_val_accuracy": m["metadata"].get("probe_val_accuracy"),
               "domain_to_source": {names[a]: SOURCES[b] for a, b in mapping.items()},
               "selected_source_mix": {s: mix.get(s, 0) for s in SOURCES},
               "synthesis": m["metadata"]["synthesis"], "stage_seconds": stage_t, "wall_seconds": round(wall, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    seeds = list(selections)
    overlaps = [len(selections[a] & selections[b]) / len(selections[a]) for a, b in itertools.combinations(seeds, 2)]
    print(f"\n## DaaR selection quality ({workload}, bundled SmolLM2-135M, budget {args.budget})\n")
    print("| seed | probe pseudo-label agreement | pool pseudo-domain agreement | psi_dom val acc | selection mix "
          "(cs/rs/ma/co) | wall s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        mix = "/".join(str(r["selected_source_mix"][s]) for s in SOURCES)
        print(f"| {r['seed']} | {r['probe_label_agreement']:.1%} | {r['pool_domain_agreement']:.1%} | "
              f"{r['probe_val_accuracy']:.1%} | {mix} | {r['wall_seconds']} |")
    pool_mix = Counter(SOURCES[t] for t in truth_pool)
    print(f"\npool mix (cs/rs/ma/co): {'/'.join(str(pool_mix[s]) for s in SOURCES)}")
    if overlaps:
        print(f"selection overlap between seeds: mean {np.mean(overlaps):.1%}, min {np.min(overlaps):.1%} "
              f"({len(overlaps)} pairs)")
    (out / "summary.json").write_text(json.dumps({"rows": rows, "overlaps": overlaps}, indent=1))


if __name__ == "__main__":
    main()
