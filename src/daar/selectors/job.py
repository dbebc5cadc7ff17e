"""`daar select` as a function: load the pool, run one selector, write outputs and the report."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from daar.config import Config, parse_budget
from daar.data.readers import load_records
from daar.errors import ConfigError
from daar.selectors.base import SelectionResult, get_selector
from daar.selectors.context import SelectionContext
from daar.selectors.output import write_outputs

log = logging.getLogger(__name__)


def load_context(cfg: Config, run_dir: str | Path | None = None) -> SelectionContext:
    if not cfg.data:
        raise ConfigError("--data is required (the pool to select from)")
    loaded = load_records(cfg.data, schema=cfg.schema, fmt=cfg.format, on_bad_record=cfg.on_bad_record)
    return SelectionContext(cfg, loaded.records, run_dir or cfg.out or "runs/select", rejected=loaded.rejected)


def run_method(ctx: SelectionContext, method: str, budget: int) -> tuple[SelectionResult, dict[str, Any]]:
    selector = get_selector(method)
    t0 = time.perf_counter()
    result = selector.select(ctx, budget)
    ctx.timings[f"select:{method}"] = time.perf_counter() - t0
    if len(result.selected) != budget:
        raise RuntimeError(f"selector '{method}' returned {len(result.selected)} records for a budget of {budget}")
    return result, write_outputs(ctx, result, method)


def run_selection(cfg: Config) -> dict[str, Any]:
    """Run `cfg.method` on `cfg.data` into `cfg.out`; returns the manifest (with the report path)."""
    t0 = time.perf_counter()
    get_selector(cfg.method)  # fail fast on an unknown method, before any loading
    ctx = load_context(cfg)
    ctx.timings["load"] = time.perf_counter() - t0
    if cfg.until:
        from daar.stages import StageReached

        try:
            ctx.domain_model  # noqa: B018 - runs the stages
        except StageReached:
            pass
        stages = [{"name": s.name, "fingerprint": s.fingerprint, "seconds": round(s.seconds, 3),
                   "skipped_on_rerun": s.skipped} for s in ctx.stage_runner.records]
        return {"until": cfg.until, "stages": stages, "counts": None, "wall_seconds": round(time.perf_counter() - t0, 3)}
    budget = parse_budget(cfg.budget, ctx.n)
    result, manifest = run_method(ctx, cfg.method, budget)
    if cfg.method == "daar" or getattr(ctx, "_domain_model_built", False):
        from daar.report.html import write_report

        t1 = time.perf_counter()
        manifest["report"] = str(write_report(ctx, result, manifest))
        ctx.timings["report"] = time.perf_counter() - t1
    manifest["wall_seconds"] = round(time.perf_counter() - t0, 3)
    return manifest


class DaaR:
    """Python API of `daar select`: `DaaR(model="default", budget="20%").select("pool.jsonl", out="runs/x")`.

    Keyword arguments are the Config fields (the CLI flag names with underscores).
    """

    def __init__(self, config: Config | None = None, **settings: Any):
        self.config = Config.from_mapping(settings, base=config, source="DaaR(...)")

    def select(self, data: str | Path, out: str | Path, **overrides: Any) -> dict[str, Any]:
        cfg = Config.from_mapping({**overrides, "data": str(data), "out": str(out)}, base=self.config,
                                  source="DaaR.select")
        return run_selection(cfg.apply_preset().validate())
