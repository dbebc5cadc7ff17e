"""What a selector may use: an immutable pool, the settings, and shared resources.

`Pool` (daar.data.pool) is fixed once loaded. `Resources` holds everything expensive that several
methods share (feature extractors and pooled features, the generation backend, scorer models, the
judgement cache, DaaR's fitted model and pool scores), each created lazily and at most once.
`SelectionContext` bundles the three and is frozen: `daar compare` gives each method
`ctx.with_settings(method_cfg)`, a new context over the same pool and resources, instead of
mutating one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from daar.data.pool import Pool
from daar.errors import ConfigError

if TYPE_CHECKING:
    from daar.features.extract import FeatureExtractor
    from daar.method import DaaRModel, DomainScores
    from daar.selectors.judge_cache import JudgeCache

log = logging.getLogger(__name__)


class Resources:
    """Expensive things shared by every method run on one pool, created on first use."""

    def __init__(self, cfg, generator: Any | None = None, until: str | None = None):
        from daar.method import StageRunner, StageStore

        self.cfg = cfg  # model, features and synthesis settings the resources are built from
        self.stages = StageRunner(StageStore(cfg.features.stage_cache), until=until)
        self._generator = generator
        self._once: dict[Any, Any] = {}
        self._daar: dict[str, tuple[DaaRModel, DomainScores]] = {}
        self.probes: dict[str, Pool] = {}  # pool fingerprint -> the probe set DaaR was fitted on
        self._pipelines: dict[str, Any] = {}
        self.timings: dict[str, float] = {}  # seconds per step of this run (load, select:<method>, report)

    def once(self, key: Any, make: Callable[[], Any]) -> Any:
        """`make()` the first time `key` is asked for, the same object after that."""
        if key not in self._once:
            self._once[key] = make()
        return self._once[key]

    def extractor(self, layer: str | int, model: str | None = None) -> FeatureExtractor:
        from daar.features.job import extractor_for

        return self.once(("extractor", str(layer), model), lambda: extractor_for(self.cfg, layer=layer, model=model))

    def features(self, pool: Pool, layer: str | int) -> np.ndarray:
        """Pooled features of `pool` at `layer`, from the shared feature store."""
        ex = self.extractor(layer)
        return self.once(("features", pool.fingerprint, ex.spec.fingerprint), lambda: ex(pool.records))

    def computed_features(self, pool: Pool, layer: str | int) -> np.ndarray | None:
        """The pool's features at `layer` when this run already computed them, else None (computes nothing)."""
        ex = self._once.get(("extractor", str(layer), None))
        return None if ex is None else self._once.get(("features", pool.fingerprint, ex.spec.fingerprint))

    @property
    def generator(self):
        """The text generation backend (local HF generate, or --generator-url), built on first use."""
        if self._generator is None:
            from daar.synth.backends import make_backend

            self._generator = make_backend(self.cfg)
        return self._generator

    @property
    def generator_identity(self) -> str:
        """Who generates, without loading a local model when it is not loaded yet."""
        if self._generator is not None:
            return self._generator.identity or type(self._generator).__name__
        from daar.synth.backends import backend_identity

        return backend_identity(self.cfg)

    @cached_property
    def judge_cache(self) -> JudgeCache:
        """The judgement cache shared across runs and selectors (one SQLite file)."""
        from daar.models.loading import cache_dir
        from daar.selectors.judge_cache import JudgeCache

        f = self.cfg.features.feature_cache
        root = Path(f).parent if f else cache_dir()
        path = root / "judgements"
        path.mkdir(parents=True, exist_ok=True)
        return JudgeCache(path)

    def daar(self, pool: Pool) -> tuple[DaaRModel, DomainScores]:
        """DaaR fitted on this pool's probe set (stages cached in the stage store) and its pool scores."""
        if pool.fingerprint not in self._daar:
            from daar.method import DaaRModel
            from daar.method.pipeline import build_pipeline, generator_for
            from daar.method.pseudolabels import probe_set
            from daar.synth.domains import load_domains

            cfg = self.cfg
            domains = load_domains(cfg.synthesis.domains)
            probe = probe_set(cfg, pool, len(domains))
            gen = generator_for(cfg, domains, backend=self._generator)
            pipeline = build_pipeline(cfg, probe, extractor=self.extractor, generator=gen)
            model = DaaRModel.from_pipeline(pipeline, self.stages)
            self._daar[pool.fingerprint] = (model, model.score(pool, self.stages))
            self.probes[pool.fingerprint] = probe
            self._pipelines[pool.fingerprint] = pipeline
        return self._daar[pool.fingerprint]

    def attempt_log(self, pool: Pool) -> Path | None:
        """The synthesis attempt log of DaaR fitted on `pool` (None before it was fitted)."""
        pipeline = self._pipelines.get(pool.fingerprint)
        return None if pipeline is None else self.stages.store.workdir(pipeline.synthesis) / "attempts.jsonl"

    @property
    def daar_fitted(self) -> bool:
        return bool(self._daar)


@dataclass(frozen=True, eq=False)
class SelectionContext:
    cfg: Any  # daar.settings.Config
    pool: Pool
    resources: Resources

    @classmethod
    def create(cls, cfg, pool: Pool, generator: Any | None = None, until: str | None = None) -> SelectionContext:
        pool.require_nonempty()
        return cls(cfg, pool, Resources(cfg, generator=generator, until=until))

    def with_settings(self, cfg) -> SelectionContext:
        """The same pool and resources under other selection settings (compare's per-method view)."""
        return replace(self, cfg=cfg)

    @property
    def records(self):
        return self.pool.records

    @property
    def n(self) -> int:
        return self.pool.n

    @property
    def rejected(self):
        return self.pool.rejected

    @property
    def renderer(self):
        return self.pool.renderer

    @property
    def texts(self) -> list[str]:
        return self.pool.texts

    def features(self, layer: str | int | None = None) -> np.ndarray:
        """Pooled pool features at `layer` (default: the probe layer)."""
        return self.resources.features(self.pool, layer if layer is not None else self.cfg.features.layer)

    @property
    def generator(self):
        return self.resources.generator

    @property
    def daar_model(self) -> DaaRModel:
        return self.resources.daar(self.pool)[0]

    @property
    def daar_scores(self) -> DomainScores:
        return self.resources.daar(self.pool)[1]

    def labels(self, field: str | None = None) -> tuple[np.ndarray, list[str]]:
        """Per-record group ids and names: `field` from the raw records, else the DaaR pseudo-domains."""
        if field is None:
            s = self.daar_scores
            return s.domain, list(s.names)
        values: list[Any] = []
        for r in self.records:
            if field not in r.raw:
                raise ConfigError(f"--label-field '{field}' is missing in record {r.id} (line {r.line}); "
                                  "every record needs it, or drop the flag to use pseudo-domains")
            values.append(str(r.raw[field]))
        names = sorted(set(values))
        lookup = {v: i for i, v in enumerate(names)}
        return np.array([lookup[v] for v in values], dtype=np.int64), names
