"""results.json and results.md: one row per evaluated model, a column per task, the average.

Benchmark values are percentages (higher is better) and enter the average; `heldout-loss` is a
loss in nats per response token (lower is better), so it stays out of the average and gets its
own column after it, plus a per-domain table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from daar.io import atomic_write

HELDOUT = "heldout-loss"


def average(tasks: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Mean of the benchmark values (heldout-loss excluded); None when no benchmark ran."""
    names = [n for n, t in tasks.items() if n != HELDOUT and t.get("higher_is_better", True)]
    if not names:
        return None
    return {"value": sum(tasks[n]["value"] for n in names) / len(names), "over": names, "unit": "%"}


def markdown(results: dict[str, Any]) -> str:
    tasks: dict[str, dict[str, Any]] = results["tasks"]
    bench = [n for n in tasks if n != HELDOUT]
    head = ["model", "adapter", *bench]
    row = [str(results.get("model")), str(results.get("adapter") or "-"),
           *(f"{tasks[n]['value']:.2f}" for n in bench)]
    if results.get("average"):
        head.append("average")
        row.append(f"{results['average']['value']:.2f}")
    if HELDOUT in tasks:
        head.append("heldout-loss (lower is better)")
        row.append(f"{tasks[HELDOUT]['value']:.4f}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(row) + " |", ""]
    notes = [f"- {n}: {tasks[n]['metric']} on {tasks[n]['n']} of {tasks[n]['of']} items; "
             f"{tasks[n]['settings'].get('setting', '')}; {tasks[n].get('seconds', 0):.0f} s" for n in bench]
    if results.get("average"):
        notes.append("- average: mean over the benchmark columns (percent); heldout-loss is not in it")
    if notes:
        lines += ["Benchmarks (values in percent):", "", *notes, ""]
    if HELDOUT in tasks:
        doms = tasks[HELDOUT]["domains"]
        lines += ["Held-out response-token loss per domain (nats/token; rows "
                  f"{tasks[HELDOUT]['settings']['rows'][0]}..{tasks[HELDOUT]['settings']['rows'][1]} of each pool file):",
                  "", "| " + " | ".join([*doms, "mean"]) + " |", "|" + "---|" * (len(doms) + 1),
                  "| " + " | ".join([*(f"{d['loss']:.4f}" for d in doms.values()), f"{tasks[HELDOUT]['value']:.4f}"])
                  + " |", ""]
    return "\n".join(lines)


def write(out: Path, results: dict[str, Any]) -> None:
    """Write results.json and results.md atomically (a crash never leaves half a file)."""
    results["average"] = average(results["tasks"])
    for name, text in (("results.json", json.dumps(results, indent=2, default=str) + "\n"),
                       ("results.md", markdown(results))):
        atomic_write(out / name, text)
