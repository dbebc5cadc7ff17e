"""Small helpers shared by the baselines: normalisation, equal shares, seeded sampling, options."""

from __future__ import annotations

from typing import Any

import numpy as np

from daar.errors import ConfigError
from daar.selectors.context import SelectionContext
from daar.selectors.judge_cache import JudgeCache
from daar.selectors.quotas import allocate
from daar.settings.extras import EXTRAS


def option(ctx: SelectionContext, name: str) -> Any:
    """A selector option from --extra (cfg.baselines.extra), else its default.

    Every option's type, range and default is declared once, in daar.settings.extras, and checked
    when the settings are validated, so a bad value stops the run before anything loads.
    """
    return ctx.cfg.baselines.extra.get(name, EXTRAS[name].default)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), in float64 for stable dot products."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def geometry_features(ctx: SelectionContext, layer: str | None = None) -> np.ndarray:
    """Unit rows of the pool's features (--layer), centred on the pool mean first.

    Why centre: mean-pooled LLM hidden states share one dominant direction. Measured on 200 records
    of W-4k with the bundled model (layer 3): mean pairwise cosine 0.94, and every record's nearest
    neighbour above 0.9, so a 0.9 redundancy threshold would reject everything and k-center /
    facility location would work on tiny differences. After subtracting the pool mean: mean cosine
    0.00, median nearest-neighbour cosine 0.64. Set extra center_features=false for raw cosine.
    """
    x = np.asarray(ctx.features(layer), dtype=np.float64)
    if option(ctx, "center_features"):
        x = x - x.mean(axis=0, keepdims=True)
    return unit_rows(x)


def word_count(text: str) -> int:
    return len(text.split())


def rng_for(ctx: SelectionContext, salt: str = "") -> np.random.Generator:
    """A generator seeded by --seed (and a per-selector salt, so selectors do not share streams)."""
    import zlib

    return np.random.default_rng([int(ctx.cfg.run.seed), zlib.crc32(salt.encode())])


def equal_shares(sizes: np.ndarray, budget: int) -> np.ndarray:
    """An equal share of `budget` per group, exact; a group too small gives its shortfall to the others."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if budget > int(sizes.sum()):
        raise ConfigError(f"budget {budget} is larger than the {int(sizes.sum())} records available")
    return allocate(sizes, np.ones(len(sizes)), budget)


def sample_within(rng: np.random.Generator, members: np.ndarray, k: int) -> np.ndarray:
    """k members drawn without replacement (all of them when k >= len(members))."""
    members = np.asarray(members, dtype=np.int64)
    if k >= len(members):
        return members
    return np.sort(rng.choice(members, size=k, replace=False))


def judge_cache(ctx: SelectionContext) -> JudgeCache:
    """The run's judgement cache (one SQLite file, opened once per run's shared resources)."""
    return ctx.resources.judge_cache


def fill_by_order(chosen: list[int], order: np.ndarray, budget: int) -> int:
    """Append records from `order` not yet in `chosen` until it holds `budget`; returns how many were added."""
    have = set(chosen)
    added = 0
    for i in order:
        if len(chosen) >= budget:
            break
        if int(i) not in have:
            chosen.append(int(i))
            have.add(int(i))
            added += 1
    return added


def rank_column(n: int, picks: list[int]) -> np.ndarray:
    """Per record: the step at which a greedy method picked it (0 = first), -1 when not picked."""
    rank = np.full(n, -1, dtype=np.int64)
    rank[np.asarray(picks, dtype=np.int64)] = np.arange(len(picks))
    return rank


def query_text(record) -> str:
    """The user's request of a record: instruction plus input (what complexity / tag judges see)."""
    return record.instruction if not record.input.strip() else f"{record.instruction}\n{record.input}"


def clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars] + " ..."
