"""The selector interface: every method (DaaR and each baseline) takes a pool and a budget and
returns the same SelectionResult, so outputs, reports and `daar compare` treat them alike.

Selectors are registered by name with `@register_selector("name", "one-line description")`; the
registry imports selector modules lazily (see `_MODULES`) so `daar list-selectors` stays fast.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from daar.errors import ConfigError

if TYPE_CHECKING:
    from daar.selectors.context import SelectionContext


@dataclass
class SelectionResult:
    """selected: pool indices in ascending (pool) order; scores: one float per pool record (NaN where a
    method has no score for it) or None when the method has no scores at all."""

    selected: np.ndarray
    scores: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    extra_columns: dict[str, np.ndarray] = field(default_factory=dict)  # per-record extras for scores file

    def __post_init__(self) -> None:
        self.selected = np.sort(np.asarray(self.selected, dtype=np.int64))
        if len(np.unique(self.selected)) != len(self.selected):
            raise ValueError("a selector returned duplicate indices")


class Selector(ABC):
    """Base class. Subclasses set `name`/`description` through the decorator and implement select()."""

    name: str = ""
    description: str = ""

    @abstractmethod
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        """Choose exactly `budget` records of ctx.records."""


_REGISTRY: dict[str, type[Selector]] = {}
# name -> module that defines it; imported on first use.
_MODULES: dict[str, str] = {
    "daar": "daar.selectors.daar_selector",
    **{name: "daar.selectors.baselines.simple" for name in
       ("random", "random-balanced", "instruction-length", "output-length")},
    "ifd": "daar.selectors.baselines.ifd",
    **{name: "daar.selectors.baselines.deita" for name in ("deita-complexity", "deita-quality", "deita")},
    "alpagasus": "daar.selectors.baselines.alpagasus",
    "instag-complexity": "daar.selectors.baselines.instag",
    "instag-diversity": "daar.selectors.baselines.instag",
    "kcenter": "daar.selectors.baselines.geometry",
    "facility-location": "daar.selectors.baselines.geometry",
    "inter-diversity": "daar.selectors.baselines.contrastive",
    "intra-diversity": "daar.selectors.baselines.contrastive",
}


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_selector(name: str, description: str) -> Callable[[type[Selector]], type[Selector]]:
    """Class decorator: make `cls` the selector called `name`.

    A second class under a taken name is an error, not a silent replacement: otherwise which method
    `--method NAME` runs would depend on which module happened to be imported last. Re-registering the
    same class (its module imported again, e.g. by importlib.reload) is allowed.
    """
    def wrap(cls: type[Selector]) -> type[Selector]:
        old = _REGISTRY.get(name)
        if old is not None and _qualname(old) != _qualname(cls):
            raise ValueError(f"selector name '{name}' is registered twice: by {_qualname(old)} and by "
                             f"{_qualname(cls)}; give one of them another name")
        cls.name, cls.description = name, description
        _REGISTRY[name] = cls
        return cls

    return wrap


def available() -> list[str]:
    return sorted(set(_MODULES) | set(_REGISTRY))


def get_selector(name: str) -> Selector:
    if name not in _REGISTRY and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method '{name}'. Available: {', '.join(available())} (see daar list-selectors)")
    return _REGISTRY[name]()


def describe_all() -> list[tuple[str, str]]:
    for name in available():
        if name not in _REGISTRY:
            importlib.import_module(_MODULES[name])
    return [(n, _REGISTRY[n].description) for n in sorted(_REGISTRY)]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores; ties broken by pool order (stable), NaN ranked last."""
    s = np.where(np.isnan(scores), -np.inf, scores.astype(np.float64))
    order = np.argsort(-s, kind="stable")
    return np.sort(order[:k])
