"""`daar select` as functions: load the pool, run one selector, write its outputs and the report.

`run_method` is the single run-one-method function; `daar compare` and `daar experiment` call it
for each of their methods over one shared context.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from daar.data.pool import Pool
from daar.errors import ConfigError
from daar.selectors.base import SelectionResult, get_selector
from daar.selectors.context import SelectionContext

log = logging.getLogger(__name__)


def load_pool(cfg) -> Pool:
    i = cfg.input
    if not i.data:
        raise ConfigError("--data is required (the pool to select from)")
    return Pool.load(i.data, schema=i.schema, fmt=i.format, on_bad_record=i.on_bad_record,
                     template=i.template).require_nonempty()


def load_context(cfg, generator: Any | None = None) -> SelectionContext:
    t0 = time.perf_counter()
    ctx = SelectionContext.create(cfg, load_pool(cfg), generator=generator, until=cfg.selection.until)
    ctx.resources.timings["load"] = time.perf_counter() - t0
    return ctx


def run_method(ctx: SelectionContext, method: str, budget: int, out: str | Path,
               extra_manifest: dict[str, Any] | None = None,
               report: bool = False) -> tuple[SelectionResult, dict[str, Any]]:
    """Run one selector on `ctx` and write its outputs (with report.html when `report`) into `out`."""
    from daar.runs.outputs import write_outputs

    selector = get_selector(method)
    t0 = time.perf_counter()
    result = selector.select(ctx, budget)
    seconds = time.perf_counter() - t0
    ctx.resources.timings[f"select:{method}"] = seconds
    if len(result.selected) != budget:
        raise RuntimeError(f"selector '{method}' returned {len(result.selected)} records for a budget of {budget}")
    # the method's own time, apart from shared work (loading, features, DaaR's stages for other methods)
    manifest = write_outputs(ctx, result, method, out, {"select_seconds": round(seconds, 3), **(extra_manifest or {})},
                             report=report)
    return result, manifest


def run_until(ctx: SelectionContext) -> dict[str, Any]:
    """Run DaaR's stages up to `--until` (each cached in the stage store) and stop."""
    from daar.method import StageReached

    t0 = time.perf_counter()
    try:
        ctx.daar_scores  # noqa: B018 - runs the stages
    except StageReached:
        pass
    return {"until": ctx.cfg.selection.until, "stages": [s.as_dict() for s in ctx.resources.stages.records],
            "stage_store": str(ctx.resources.stages.store.root), "counts": None,
            "wall_seconds": round(time.perf_counter() - t0, 3)}


def check_until(cfg) -> None:
    from daar.method import STAGE_NAMES

    until = cfg.selection.until
    if until is not None and until not in STAGE_NAMES:
        raise ConfigError(f"--until '{until}' is not a stage; choose one of {', '.join(STAGE_NAMES)}")


def run_selection(cfg, generator: Any | None = None) -> dict[str, Any]:
    """Run `cfg.selection.method` on the pool into `cfg.run.out`; returns the manifest (with the report path).

    The run holds the folder's lock (daar.io.folder_lock): a second run into the same --out fails at once.
    """
    from daar.io import folder_lock

    with folder_lock(cfg.run.out or "runs/select"):
        return _run_selection(cfg, generator)


def _run_selection(cfg, generator: Any | None = None) -> dict[str, Any]:
    from daar.settings import parse_budget

    t0 = time.perf_counter()
    method = cfg.selection.method
    get_selector(method)  # fail fast on an unknown method, before any loading
    check_until(cfg)
    from daar.scale.run import streams

    if streams(cfg):  # --stream / --backend ray: shards, scores only, O(budget) memory (daar.scale)
        from daar.scale.run import run_streaming

        return run_streaming(cfg, generator)
    ctx = load_context(cfg, generator)
    if cfg.selection.until:
        return run_until(ctx)
    budget = parse_budget(cfg.selection.budget, ctx.n)
    out = Path(cfg.run.out or "runs/select")
    result, manifest = run_method(ctx, method, budget, out, report=True)
    manifest["wall_seconds"] = round(time.perf_counter() - t0, 3)
    return manifest


class DaaR:
    """Python API of `daar select`: `DaaR(model="default", budget="20%").select("pool.jsonl", out="runs/x")`.

    Keyword arguments are the setting names (the CLI flag names with underscores).
    """

    def __init__(self, config=None, **settings: Any):
        from daar.settings import Config

        self.config = Config.from_mapping(settings, base=config, source="DaaR(...)")

    def select(self, data: str | Path, out: str | Path, **overrides: Any) -> dict[str, Any]:
        from daar.settings import Config

        cfg = Config.from_mapping({**overrides, "data": str(data), "out": str(out)}, base=self.config,
                                  source="DaaR.select")
        return run_selection(cfg.apply_preset().validate())
