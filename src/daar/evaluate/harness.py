"""lm-evaluation-harness glue: the benchmark registry, local task configs, seeded subsets, one run.

Each benchmark is a YAML file under `tasks/` with `dataset_path: json`; at run time we load it with
lm-eval's own YAML loader (so `!function` tags resolve the same way), point
`dataset_kwargs.data_files` at the local JSONL file in --data-dir, bind the scorer to a per-run
`details` dict (what it extracted, the execution status), and pass the config as an inline task to
`lm_eval.simple_evaluate` with a TaskManager that does not index lm-eval's 200+ built-in tasks.
Nothing touches the hub.

Subsets: the paper samples with seed 42 (pandas `df.sample(n, random_state=42)`, which equals
`numpy.random.RandomState(42).permutation(N)[:n]`). Every task takes the first n indices of that
permutation, n = the paper's size (or everything) unless --limit is given; GSM8K reads the
paper's 500 indices from `paper_subsets.json` when it is in --data-dir (the same numbers).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daar.errors import ConfigError
from daar.io import atomic_write

log = logging.getLogger(__name__)
TASK_DIR = Path(__file__).with_name("tasks")


@dataclass(frozen=True)
class Benchmark:
    """One lm-eval benchmark: its YAML, local file, headline metric and the paper's setting."""

    name: str
    file: str
    metric: str
    paper_n: int | None  # None = the whole (test split of the) file
    setting: str
    options: tuple[str, ...] = field(default=())  # runtime options its scorer accepts

    @property
    def yaml(self) -> Path:
        return TASK_DIR / f"{self.name}.yaml"


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("nq", "nq_open_dev.jsonl", "exact_match", None, "0-shot, greedy, exact match (any answer)"),
    Benchmark("triviaqa", "triviaqa_test_1k.jsonl", "exact_match", 5000,
              "0-shot, greedy, exact match (any alias); paper: 5,000 of 8,837 dev, here the 1k test subsample"),
    Benchmark("hellaswag", "hellaswag_val.jsonl", "acc_ppl", None,
              "0-shot, lowest perplexity of the 4 endings", ("count_tokens",)),
    Benchmark("gsm8k", "gsm8k_test.jsonl", "exact_match", 500, "4-shot chain of thought, greedy, final number"),
    Benchmark("math", "math_test.jsonl", "exact_match", 1000,
              "4-shot (Minerva exemplars), greedy, normalised final answer"),
    Benchmark("mbpp", "mbpp.jsonl", "pass@1", None,
              "3-shot (task_ids 2-4), greedy, pass@1 on task_ids 11-510 (executed)", ("timeout", "allow_unsandboxed")),
    Benchmark("humaneval", "humaneval.jsonl", "pass@1", None, "0-shot, greedy, pass@1 (executed)", ("timeout", "allow_unsandboxed")),
    Benchmark("mmlu", "mmlu_test.jsonl", "acc_ppl", None,
              "0-shot cloze, lowest perplexity of the 4 answer texts (out-of-distribution check; the paper's "
              "mmlu_gen is 5-shot lettered)", ("count_tokens",)),
)}
# The paper's seven benchmarks (its average); MMLU is its out-of-distribution check, reported apart.
PAPER_BENCHMARKS = tuple(name for name in BENCHMARKS if name != "mmlu")


def task_config(bench: Benchmark, data_dir: Path, details: dict, options: dict[str, Any],
                max_gen_toks: int | None = None) -> dict[str, Any]:
    """The YAML as a dict with the local data file filled in and the scorer bound to `details`."""
    from lm_eval.tasks._yaml_loader import load_yaml

    path = data_dir / bench.file
    if not path.is_file():
        raise ConfigError(f"{path} not found: task '{bench.name}' reads {bench.file} from --data-dir "
                          f"(see ../shared/data/README.md for the files and their fields)")
    cfg = load_yaml(bench.yaml, resolve_func=True)
    cfg["dataset_kwargs"] = {"data_files": {"test": str(path.resolve())}}
    scorer = cfg["process_results"]
    bound = {k: v for k, v in options.items() if k in bench.options}

    def process_results(doc: dict, results: list) -> dict[str, float]:  # a plain function: lm-eval deep-copies configs
        return scorer(doc, results, details=details, **bound)

    process_results.__name__ = f"{getattr(scorer, '__name__', 'score')}_bound"
    cfg["process_results"] = process_results
    if max_gen_toks and cfg.get("output_type") == "generate_until":
        cfg["generation_kwargs"] = {**cfg.get("generation_kwargs", {}), "max_gen_toks": int(max_gen_toks)}
    return cfg


def subset_indices(bench: Benchmark, n_docs: int, limit: int | None, seed: int,
                   data_dir: Path | None = None) -> list[int] | None:
    """Sorted doc indices to evaluate, or None for all n_docs (see the module docstring)."""
    import numpy as np

    size = limit if limit is not None else bench.paper_n
    if size is None or size >= n_docs:
        return None
    if size < 1:
        raise ConfigError(f"--limit must be >= 1 (got {size})")
    order = None
    paper = (data_dir / "paper_subsets.json") if data_dir is not None else None
    if seed == 42 and paper is not None and paper.is_file():
        entry = json.loads(paper.read_text()).get(bench.file)
        if isinstance(entry, dict) and entry.get("of") == n_docs and len(entry.get("indices", ())) >= size:
            order = [int(i) for i in entry["indices"]]
    if order is None:
        order = np.random.RandomState(seed).permutation(n_docs).tolist()
    return sorted(order[:size])


def n_eval_docs(task: Any) -> int:
    return len(task.eval_docs)


def run_benchmark(bench: Benchmark, lm: Any, data_dir: Path, raw_dir: Path, *, limit: int | None, seed: int,
                  options: dict[str, Any], max_gen_toks: int | None = None) -> dict[str, Any]:
    """Evaluate one benchmark with lm-eval; write its raw outputs under raw_dir; return its summary."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    details: dict[Any, Any] = {}
    cfg = task_config(bench, data_dir, details, options, max_gen_toks)
    manager = TaskManager(include_defaults=False)
    loaded = manager.load([cfg])
    task = loaded["tasks"][cfg["task"]]
    total = n_eval_docs(task)
    indices = subset_indices(bench, total, limit, seed, data_dir)
    n = total if indices is None else len(indices)
    log.info("%s: %d of %d items (%s)", bench.name, n, total, bench.setting)
    start = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=manager, samples={task.task_name: indices} if indices else None,
        log_samples=True, bootstrap_iters=0, confirm_run_unsafe_code=True, random_seed=seed,
        numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)
    seconds = time.perf_counter() - start
    metrics = {k.split(",")[0]: v for k, v in out["results"][task.task_name].items()
               if "," in k and not k.split(",")[0].endswith("_stderr") and isinstance(v, (int, float))}
    samples = out.get("samples", {}).get(task.task_name, [])
    _write_raw(raw_dir, out, samples, details, task.task_name)
    if bench.metric not in metrics:
        raise RuntimeError(f"lm-eval returned no '{bench.metric}' for {bench.name}: {sorted(metrics)}")
    return {"metric": bench.metric, "value": 100.0 * float(metrics[bench.metric]), "unit": "%",
            "higher_is_better": True, "n": n, "of": total,
            "metrics": {k: 100.0 * float(v) for k, v in metrics.items()},
            "settings": {"setting": bench.setting, "file": bench.file, "n_fewshot": cfg.get("num_fewshot", 0),
                         "paper_n": bench.paper_n, "limit": limit, "seed": seed,
                         "generation_kwargs": cfg.get("generation_kwargs"),
                         "indices": indices if indices is not None else "all"},
            "seconds": round(seconds, 2)}


def _write_raw(raw_dir: Path, out: dict[str, Any], samples: list[dict], details: dict, name: str) -> None:
    """lm-eval's full results plus one JSON line per sample (prompt, generation, our extraction)."""
    lm_results = {k: v for k, v in out.items() if k != "samples"}
    atomic_write(raw_dir / "lm_eval_results.json", json.dumps(lm_results, indent=2, default=str))

    def write_samples(fh) -> None:
        for s in samples:
            row = s.get("doc", {}).get("daar_row")
            fh.write(json.dumps({**s, "daar": details.get(row)}, ensure_ascii=False, default=str) + "\n")

    atomic_write(raw_dir / "samples.jsonl", write_samples, binary=False)
    log.debug("%s: wrote %d samples to %s", name, len(samples), raw_dir)
