"""The GPU evidence run, prepared so the few lent GPU minutes go to the real run (issue 14, part 3).

One command, two steps, well inside 10 minutes on one H100/H200 with the bundled SmolLM2-135M:

  (a) `benchmarks/compare.py` on W-4k with DaaR, random and every LLM-judged selector (ifd,
      deita-*, alpagasus, instag-*) at GPU batch sizes. `daar compare` rewrites
      comparison.{md,csv,json} after every method, so a run cut by the device-time limit keeps the
      source mix, TV from the pool, Vendi and coverage of every method that finished; each judged
      method is also capped (--judge-cap seconds of judging, cached, so a rerun resumes).
  (b) the W-4k experiment (configs/gpu-w4k.yaml) with DaaR, random and the judged selectors that
      are quick on a GPU, 2 seeds, fine-tuned and evaluated on the held-out loss per source domain,
      HellaSwag and MMLU (log-likelihood tasks: seconds on a GPU). Its selections reuse (a)'s
      judgements and DaaR stages (same pool content and settings -> same cache keys). The table is
      rewritten after every evaluation, so a cut run keeps its finished rows.

Order = priority: the comparison first (it is the part the CPU cannot do), then the experiment,
which stops at --deadline seconds after the start (its finished rows stay).

    python benchmarks/gpu_evidence.py                         # on the GPU machine
    python benchmarks/gpu_evidence.py --rehearse              # CPU, tiny settings: proves every step runs
    python benchmarks/gpu_evidence.py --rehearse --model DIR --set domains=FILE   # what the test runs

Outputs: OUT/compare/ (comparison.md/.csv/.json, one folder per method) and OUT/experiment/
(experiment.md/.csv/.png, per-seed rows and mean ± std), OUT/evidence.json (times, what finished).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

CHEAP = ["daar", "random", "random-balanced", "instruction-length", "kcenter"]
# judged selectors, quick ones first, InsTag last: it generates 256-token tag lists (~17 min at batch 32
# on an H100 in the earlier session), so the cap cuts it rather than everything behind it
JUDGED = ["ifd", "deita-complexity", "deita-quality", "deita", "alpagasus", "instag-complexity", "instag-diversity"]
# daar and random first (the pair judged; a cut run keeps them), then the judged ones a GPU makes cheap;
# alpagasus is left out: on the 135M judge 44 % of its ratings were unparseable (README, H100 run)
EXPERIMENT_METHODS = ["daar", "random", "ifd", "deita"]

# GPU sizes: judges and synthesis generate 128 prompts per call (the H100 run used 32 and InsTag was
# the bottleneck), features and evaluation in batches of 64-128; DaaR's synthesis scaled to 3 seeds +
# 6 samples per domain so it takes ~1-2 min instead of the full synthesis's 397 s.
GPU_SETTINGS = {"synth_batch": 128, "batch_size": 128, "seeds_per_domain": 3, "samples_per_domain": 6,
                "max_attempts": 48}
GPU = {"judge_batch": 128, "judge_cap": 75.0, "deadline": 540.0, "seeds": [42, 43],
       # the proxy's training strength (lr 1e-3, 1 epoch) on W-4k's 800 records: 50 steps of 16
       "train": {"train_max_length": 1024, "train_batch_size": 16, "gradient_accumulation": 1, "lr": 1e-3,
                 "epochs": 1},
       "eval": {"tasks": "heldout-loss,hellaswag,mmlu", "limit": 150, "eval_batch_size": 64}}
# CPU rehearsal: a few records per source, one training step, two eval items; every code path runs
REHEARSE_SETTINGS = {"synth_batch": 4, "seeds_per_domain": 1, "samples_per_domain": 1, "max_attempts": 4,
                     "max_new_tokens": 16, "question_tokens": 16, "answer_tokens": 16, "probe_epochs": 1,
                     "max_length": 64}
REHEARSE = {"judge_batch": 8, "judge_cap": 60.0, "deadline": 1200.0, "seeds": [42, 43], "per_source": 6,
            "train": {"max_steps": 1, "train_batch_size": 2, "gradient_accumulation": 1, "train_max_length": 512},
            "eval": {"tasks": "heldout-loss,hellaswag,mmlu", "limit": 2, "eval_batch_size": 4, "max_length": 512,
                     "extra": {"heldout_rows": "6250:6252", "judge_max_new_tokens": 8}}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/gpu-evidence")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--model", default="default")
    p.add_argument("--rehearse", action="store_true", help="tiny CPU settings: prove every step runs")
    p.add_argument("--deadline", type=float, default=None, help="seconds from the start; the experiment stops there")
    p.add_argument("--judge-cap", type=float, default=None, help="seconds of judging per judged method")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other setting (flat name)")
    return p.parse_args(argv)


def config_settings() -> dict:
    """configs/gpu-w4k.yaml's settings that compare.py sets on its own left out; the rest goes to both
    steps, so the experiment's selections hit the comparison's caches (same settings, same keys)."""
    import yaml

    spec = yaml.safe_load((ROOT / "configs" / "gpu-w4k.yaml").read_text())
    return {k: v for k, v in spec.get("settings", {}).items() if k not in ("model", "budget")}


def run_compare(args: argparse.Namespace, plan: dict, settings: dict) -> int:
    import compare as bench  # benchmarks/compare.py

    argv = ["--data-dir", args.data_dir, "--out", str(Path(args.out) / "compare"), "--model", args.model,
            "--methods", ",".join(CHEAP + JUDGED), "--judge-batch", str(plan["judge_batch"]),
            "--cap", str(args.judge_cap or plan["judge_cap"])]
    if args.rehearse:
        argv += ["--per-source", str(plan["per_source"]), "--probe-rows", f"5000:{5000 + plan['per_source']}",
                 "--judge-max-new-tokens", "8"]
    for key, value in settings.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    return bench.main(argv)


def experiment_overrides(args: argparse.Namespace, plan: dict, settings: dict) -> dict:
    """configs/gpu-w4k.yaml with the evidence run's methods, seeds, sizes and output folder."""
    extra = {"judge_batch": plan["judge_batch"], **plan["eval"].get("extra", {})}
    over = {"out": str(Path(args.out) / "experiment"), "methods": EXPERIMENT_METHODS, "seeds": plan["seeds"],
            "compare": ["daar", "random"], "raw_model": True,
            "settings": {**settings, "model": args.model, "extra": extra},
            "train": plan["train"], "eval": {k: v for k, v in plan["eval"].items() if k != "extra"}}
    if args.rehearse:
        n = plan["per_source"]
        over["pool"] = _parts(args.data_dir, (0, n), label=True)
        over["probe"] = _parts(args.data_dir, (5000, 5000 + n), label=False)
    else:  # the data folder may not be ../shared/data on the GPU machine
        over["pool"] = _parts(args.data_dir, (0, 1000), label=True)
        over["probe"] = _parts(args.data_dir, (5000, 5250), label=False)
    over["eval"]["data_dir"] = str(Path(args.data_dir) / "eval")
    return over


def finished_methods(compare_dir: Path, wanted: list[str]) -> list[str]:
    """The wanted methods whose selection finished in the comparison (a capped judge is left out: in
    the experiment it would judge the rest of the pool with no limit)."""
    path = compare_dir / "comparison.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    ok = {r["method"] for r in runs if r["status"] == "ok"}
    return [m for m in wanted if m in ok]


def _parts(data_dir: str, rows: tuple[int, int], label: bool) -> list[dict]:
    from daar.data.slices import standard_parts

    return standard_parts(Path(data_dir) / "pool", rows, label)


def _experiment(overrides: dict, done: mp.Queue) -> None:
    """In a child process, so the deadline can stop it without losing the rows already written."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    from daar.runs.experiment import run_experiment

    summary = run_experiment(ROOT / "configs" / "gpu-w4k.yaml", overrides)
    done.put(summary["wall_seconds"])


def run_experiment_until(overrides: dict, seconds: float) -> str:
    ctx = mp.get_context("spawn")  # a fresh process: no CUDA state inherited from the comparison
    done = ctx.Queue()
    proc = ctx.Process(target=_experiment, args=(overrides, done))
    proc.start()
    proc.join(max(seconds, 1.0))
    if proc.is_alive():
        proc.terminate()
        proc.join(10)
        return f"stopped at the deadline ({seconds:.0f} s left for it); finished rows are in the table"
    return "finished" if proc.exitcode == 0 else f"failed (exit code {proc.exitcode})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    import compare as bench
    from daar.io import atomic_write

    plan = REHEARSE if args.rehearse else GPU
    settings = {**config_settings(), **(REHEARSE_SETTINGS if args.rehearse else GPU_SETTINGS),
                **bench.parse_set(args.set)}
    deadline = args.deadline or plan["deadline"]
    out = Path(args.out)
    t0 = time.perf_counter()
    rc = run_compare(args, plan, settings)
    t_compare = time.perf_counter() - t0
    overrides = experiment_overrides(args, plan, settings)
    overrides["methods"] = finished_methods(out / "compare", EXPERIMENT_METHODS)
    status = run_experiment_until(overrides, deadline - t_compare)
    report = {"mode": "rehearse" if args.rehearse else "gpu", "compare_seconds": round(t_compare, 1),
              "compare_all_ok": rc == 0, "experiment_methods": overrides["methods"], "experiment": status, "wall_seconds": round(time.perf_counter() - t0, 1),
              "settings": settings, "plan": plan}
    atomic_write(out / "evidence.json", json.dumps(report, indent=2, default=str))
    print(json.dumps({k: report[k] for k in ("mode", "compare_seconds", "compare_all_ok", "experiment",
                                             "wall_seconds")}, indent=2))
    table = out / "experiment" / "experiment.md"
    if table.exists():
        print(table.read_text())
    return 0 if status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
