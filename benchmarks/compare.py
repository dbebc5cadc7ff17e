"""DaaR beside every baseline on W-4k with the bundled model (`daar compare` on the standard workload).

Workload (../shared/docs/WORKLOADS.md): W-4k = rows 0..1000 of each pool file in the order
common_sense, reasoning, mathematics, coding (4,000 records), probe set rows 5000..5250 of each
(1,000), budget 20 %. Each pool record gets a `source` field (its file name), passed as
--label-field: it is used only for the diagnostics (label mix, label TV), never by the methods
(random-balanced and inter-/intra-diversity group by DaaR's pseudo-domains unless you add
--selectors-use-labels).

The LLM-judged methods are slow on 2 CPU cores with the bundled 135M model (each record needs a
generation of up to 16 (alpagasus) or 256 (instag) tokens; deita-* and ifd need one or two forward
passes per record). Every judgement is cached (judge_cache), so:
  --methods / --skip   run a subset (default: all registered selectors)
  --cap SECONDS        stop each judged/scored method after SECONDS of judging; it is reported as
                       failed ("rerun to continue") and the next run of the same command resumes
                       from the cache
  --judge-max-new-tokens N   shorter judge answers (a different cache key)

    python benchmarks/compare.py                                   # W-4k, all methods (hours on CPU)
    python benchmarks/compare.py --skip alpagasus,instag-complexity,instag-diversity --cap 1800
    python benchmarks/compare.py --per-source 50 --methods random,kcenter,daar \\
        --set samples_per_domain=2 --set max_new_tokens=256          # a smoke run (~200 records)

Outputs: OUT/pool.jsonl, OUT/probe.jsonl, OUT/<method>/ (selected.jsonl, scores.parquet,
manifest.json), OUT/comparison.{md,csv,html,json} (rewritten after every method, so a stopped run
keeps the rows that finished; `pending` lists the rest), OUT/benchmark.json. Figures are printed with
the workload name.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DOMAINS = ("common_sense", "reasoning", "mathematics", "coding")
JUDGED = ("ifd", "deita-complexity", "deita-quality", "deita", "alpagasus", "instag-complexity", "instag-diversity")


def write_slice(data_dir: Path, start: int, stop: int, path: Path, label: bool) -> int:
    """Rows start..stop of each pool file, in the WORKLOADS.md order; with label, a `source` field."""
    from daar.data.slices import standard_parts, write_slices

    return write_slices(standard_parts(data_dir / "pool", (start, stop), label), path)


def workload_name(per_source: int, probe: tuple[int, int]) -> str:
    if per_source == 1000 and probe == (5000, 5250):
        return "W-4k"
    return f"custom ({per_source} per source, probe rows {probe[0]}..{probe[1]})"


def default_methods() -> list[str]:
    from daar.selectors.base import available

    names = available()
    cheap = [m for m in names if m not in JUDGED and m != "daar"]
    return ["daar", *cheap, *[m for m in JUDGED if m in names]]


def parse_set(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got '{item}'")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", default="runs/bench-compare")
    p.add_argument("--model", default="default")
    p.add_argument("--per-source", type=int, default=1000, help="pool rows 0..N of each file (1000 = W-4k)")
    p.add_argument("--probe-rows", default="5000:5250", help="probe rows A:B of each file ('' = none)")
    p.add_argument("--budget", default="20%")
    p.add_argument("--methods", default=None, help="comma-separated (default: all registered selectors)")
    p.add_argument("--skip", default="", help="comma-separated methods to leave out")
    p.add_argument("--cap", type=float, default=None, help="seconds of judging per judged method (resumable)")
    p.add_argument("--judge-max-new-tokens", type=int, default=None)
    p.add_argument("--judge-batch", type=int, default=None,
                   help="prompts per generate() call / scorer batch (default 16; larger on a GPU)")
    p.add_argument("--scorer-model", default=None, help="ifd / deita scorer (default: --model)")
    p.add_argument("--selectors-use-labels", action="store_true",
                   help="let random-balanced and inter-/intra-diversity group by the source labels (default: "
                   "pseudo-domains; the labels feed only the diagnostics)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other setting (flat name)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")

    from daar.io import atomic_write
    from daar.runs.compare import run_compare
    from daar.settings import Config

    data_dir, out = Path(args.data_dir), Path(args.out)
    if not (data_dir / "pool").is_dir():
        raise SystemExit(f"{data_dir}/pool not found; pass --data-dir")
    out.mkdir(parents=True, exist_ok=True)
    n_pool = write_slice(data_dir, 0, args.per_source, out / "pool.jsonl", label=True)
    probe = tuple(int(x) for x in args.probe_rows.split(":")) if args.probe_rows else None
    if probe:
        write_slice(data_dir, probe[0], probe[1], out / "probe.jsonl", label=False)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else default_methods()
    skip = {m.strip() for m in args.skip.split(",") if m.strip()}
    methods = [m for m in methods if m not in skip]
    extra = {}
    if args.cap is not None:
        extra["judge_time_limit"] = args.cap
    if args.selectors_use_labels:
        extra["selectors_use_labels"] = True
    if args.judge_max_new_tokens:
        extra["judge_max_new_tokens"] = args.judge_max_new_tokens
    if args.judge_batch:
        extra["judge_batch"] = args.judge_batch
    settings = {"data": str(out / "pool.jsonl"), "out": str(out), "model": args.model, "budget": args.budget,
                "methods": ",".join(methods), "label_field": "source", "extra": extra,
                "probe_data": str(out / "probe.jsonl") if probe else None, "scorer_model": args.scorer_model,
                **parse_set(args.set)}
    cfg = Config.from_mapping(settings, source="benchmarks/compare.py").apply_preset().validate()
    name = workload_name(args.per_source, probe or (0, 0))
    print(f"[{name}] pool {n_pool} records, budget {args.budget}, methods: {', '.join(methods)}", flush=True)
    t0 = time.perf_counter()
    summary = run_compare(cfg)
    wall = time.perf_counter() - t0
    atomic_write(out / "benchmark.json", json.dumps({
        "workload": name, "pool": n_pool, "budget": summary["budget"], "methods": methods, "wall_seconds": wall,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": {k: v for k, v in settings.items() if k not in ("data", "out")},
    }, indent=2, default=str))
    print(f"[{name}] total wall {wall:.0f} s; shared stages: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in summary["shared_seconds"].items()))
    print((out / "comparison.md").read_text())
    return 0 if all(r["status"] == "ok" for r in summary["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
