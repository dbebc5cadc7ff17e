"""`daar select`: run DaaR (or any registered selector) on a pool."""

from __future__ import annotations

from daar.cli_args import S, common, data_args, model_args
from daar.config import Config


def selection_args(p) -> None:
    g = p.add_argument_group("DaaR method")
    g.add_argument("--domains", default=S, help="domains.yaml (name, description, examples, tau); default: 4 domains")
    g.add_argument("--generator-model", default=S, help="model that writes domain samples (default: --model)")
    g.add_argument("--generator-url", default=S, help="OpenAI-compatible server for generation (e.g. vLLM)")
    g.add_argument("--max-attempts", type=int, default=S, help="generation attempts per domain before giving up")
    g.add_argument("--samples-per-domain", type=int, default=S, help="phase-2 samples to accept per domain (10)")
    g.add_argument("--seeds-per-domain", type=int, default=S, help="phase-1 seed samples per domain (5)")
    g.add_argument("--tau", type=float, default=S, help="phase-2 similarity threshold (0.85; a domain may set its own)")
    g.add_argument("--max-new-tokens", type=int, default=S, help="generation length limit (2048)")
    g.add_argument("--synth-batch", type=int, default=S, help="generations per batch (8)")
    g.add_argument("--no-dedup-center", dest="dedup_center", action="store_false", default=S,
                   help="phase-2 cosine on raw features (the scripts' way) instead of centred ones")
    g.add_argument("--probe-data", default=S, help="disjoint probe set file (default: a seeded sample of the pool)")
    g.add_argument("--probe-size", type=int, default=S, help="probe set size (default min(5000, 25%% of pool))")
    g.add_argument("--centroid-layer", default=S, help="space of centroids and pseudo-labels: K or embedding (default: --layer)")
    g.add_argument("--assignment", default=S, choices=["kmeans", "nearest"],
                   help="kmeans initialised at the centroids (method) or nearest fixed centroid")
    g.add_argument("--layer", default=S, help="probe feature layer (3)")
    g.add_argument("--pooling", default=S, choices=["mean", "last", "mean-padded"])
    g.add_argument("--probe-epochs", type=int, default=S)
    g.add_argument("--probe-lr", type=float, default=S)
    g.add_argument("--probe-batch-size", type=int, default=S)
    g.add_argument("--preset", default=S, choices=["default", "reference"],
                   help="reference = the authors' scripts' choices (padded pooling, their text format, ...)")
    s = p.add_argument_group("selection")
    s.add_argument("--method", default=S, help="selector name (daar; see daar list-selectors)")
    s.add_argument("--budget", default=S, help="a count (8000) or a fraction (0.2 or 20%%)")
    s.add_argument("--strategy", default=S, choices=["top", "customized", "balanced"])
    s.add_argument("--major", default=S, help="with --strategy customized: the domain to take 50%% of")
    s.add_argument("--seed", type=int, default=S)
    s.add_argument("--with-scores", action="store_true", default=S, help="add daar_entropy/daar_domain to selected.jsonl")
    s.add_argument("--label-field", default=S, help="record field with your own labels (diagnostics, bins)")


def selector_parser_args(p) -> None:
    """Every flag a selection run takes (shared by `daar select` and `daar compare`)."""
    from daar.selectors.baselines.options import baseline_args

    common(p)
    data_args(p)
    model_args(p)
    selection_args(p)
    baseline_args(p)


def build(sub) -> None:
    from daar.stages import STAGES

    p = sub.add_parser("select", help="choose a budget of records by predicted domain entropy (or another method)")
    selector_parser_args(p)
    p.add_argument("--until", default=S, choices=list(STAGES),
                   help="run the DaaR stages up to this one (cached in OUT/stages) and stop")


def run(cfg: Config) -> int:
    from daar.selectors.job import run_selection

    m = run_selection(cfg)
    if m.get("until"):
        for st in m["stages"]:
            print(f"stage {st['name']:<14} {'cached' if st['skipped_on_rerun'] else 'ran'} in {st['seconds']:.1f} s "
                  f"(fingerprint {st['fingerprint']})")
        print(f"stopped after stage '{m['until']}'; outputs in {cfg.out}/stages and {cfg.out}/domains")
        return 0
    c = m["counts"]
    print(f"read {c['read']} = selected {c['selected']} + not selected {c['not_selected']} + rejected {c['rejected']}")
    print(f"selection: {cfg.out}/selected.jsonl   scores: {cfg.out}/scores.parquet   manifest: {cfg.out}/manifest.json")
    if m.get("report"):
        print(f"report: {m['report']}")
    return 0
