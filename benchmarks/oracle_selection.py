"""What DaaR selects when the domains are known: its heads trained on the TRUE sources.

The pseudo-labels are replaced by the hidden source of every probe record (the one thing a user never
has), psi_dom and psi_div are trained on them with the method's settings (the run's head ensemble size
is --ensemble), and the pool's top budget by psi_div (the method) and by psi_dom's own entropy (its
ceiling) are compared with the pool's source mix. This separates what the method selects by design
(its most cross-domain records) from what wrong pseudo-labels add: a total-variation distance the method
shows with perfect labels is not an error of the labelling.

    python benchmarks/oracle_selection.py --out runs/bench-oracle                       # W-4k
    python benchmarks/oracle_selection.py --mix 400,300,200,100 --out runs/bench-oracle-mix

Workloads as in select_quality.py (WORKLOADS.md W-4k, or an unequal mix with a probe set of a quarter).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from select_quality import ROOT, SOURCES, source_labels, tv, workload_rows, write_workload  # noqa: E402

sys.path.insert(0, str(ROOT / "src"))


def source_mix(selected: np.ndarray, truth: np.ndarray) -> tuple[float, list[int]]:
    """(total-variation distance from the pool's source mix, selected count per source)."""
    sel = Counter(SOURCES[t] for t in truth[selected])
    return tv(sel, Counter(SOURCES[t] for t in truth)), [sel.get(s, 0) for s in SOURCES]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/bench-oracle")
    ap.add_argument("--mix", default=None, help="rows per source from row 0, e.g. 400,300,200,100")
    ap.add_argument("--ensemble", type=int, default=4, help="heads averaged per stage (the method's default: 16)")
    ap.add_argument("--head-seed", type=int, default=101)
    args = ap.parse_args()
    from daar.method.mlp import HeadTraining, entropy, train_classifier, train_regressor
    from daar.method.pipeline import build_pipeline
    from daar.method.pseudolabels import probe_set
    from daar.runs.select import load_pool
    from daar.settings import Config, parse_budget

    pool_rows, probe_rows, workload = workload_rows(args.mix)
    pool_path, probe_path = write_workload(Path(args.out) / "data", pool_rows, probe_rows)
    cfg = Config.from_mapping({"model": "default", "budget": "20%", "data": str(pool_path),
                               "probe_data": str(probe_path)}, source="oracle_selection").apply_preset().validate()
    pool = load_pool(cfg)
    probe = probe_set(cfg, pool, len(SOURCES))
    features = build_pipeline(cfg, probe).dom.features  # the method's layer-3 features, from the feature store
    xp = np.asarray(features(probe.records), dtype=np.float32)
    xq = np.asarray(features(pool.records), dtype=np.float32)
    truth_probe, truth_pool = source_labels(probe_path), source_labels(pool_path)
    if len(truth_probe) != len(xp) or len(truth_pool) != len(xq):
        raise SystemExit("oracle_selection: the probe or pool lost records; the source labels no longer line up")
    budget = parse_budget(cfg.selection.budget, len(xq))
    t0 = time.perf_counter()
    training = replace(HeadTraining.from_settings(cfg, probe.n), seed=args.head_seed, ensemble=args.ensemble)
    dom = train_classifier(xp, truth_probe, len(SOURCES), training)
    proba = dom.predict_proba(xq)
    div = train_regressor(xp, entropy(dom.predict_proba(xp)), training)
    scores, ent = div.forward(xq)[:, 0], entropy(proba)
    tv_div, mix_div = source_mix(np.argsort(-scores)[:budget], truth_pool)
    tv_ent, mix_ent = source_mix(np.argsort(-ent)[:budget], truth_pool)
    row = {"workload": workload, "ensemble": args.ensemble, "head_seed": args.head_seed,
           "psi_dom_val_accuracy": dom.metrics["val_accuracy"],
           "pool_accuracy_vs_source": float((proba.argmax(1) == truth_pool).mean()),
           "mean_entropy_by_source": dict(zip(SOURCES, [float(ent[truth_pool == i].mean()) for i in range(len(SOURCES))],
                                              strict=True)),
           "pool_mix": dict(zip(SOURCES, np.bincount(truth_pool, minlength=len(SOURCES)).tolist(), strict=True)),
           "psi_div_selection": dict(zip(SOURCES, mix_div, strict=True)), "psi_div_tv": tv_div,
           "psi_dom_entropy_selection": dict(zip(SOURCES, mix_ent, strict=True)), "psi_dom_entropy_tv": tv_ent,
           "head_seconds": round(time.perf_counter() - t0, 1)}
    print(f"{workload}: heads on the true sources, pool accuracy {row['pool_accuracy_vs_source']:.3f}; "
          f"top {budget} by psi_div {mix_div} TV {tv_div:.3f}; by psi_dom entropy {mix_ent} TV {tv_ent:.3f} "
          f"(pool {list(row['pool_mix'].values())}, order {', '.join(SOURCES)})", flush=True)
    (Path(args.out) / "oracle.json").write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
