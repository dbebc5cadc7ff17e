"""What a selector may use: the pool, the config, the run folder and shared, cached resources.

Everything expensive (features, the generation backend, the DaaR domain model) is created lazily
and at most once per context, so `daar compare` can run many selectors over one context and each
resource is computed once.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from daar.config import Config
from daar.data.records import Record
from daar.data.render import Renderer
from daar.errors import ConfigError

if TYPE_CHECKING:
    from daar.method import DomainModel
    from daar.synth.backends import GenerationBackend

log = logging.getLogger(__name__)


class SelectionContext:
    def __init__(self, cfg: Config, records: list[Record], run_dir: str | Path,
                 generator: GenerationBackend | None = None, rejected: list | None = None):
        if not records:
            raise ConfigError("the pool is empty: nothing to select from")
        self.cfg = cfg
        self.records = records
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._features: dict[str, np.ndarray] = {}
        self._generator = generator
        self.timings: dict[str, float] = {}
        self.rejected = rejected or []  # RejectedRecord rows of the pool file (for counts and scores)
        self.stage_runner = None  # set by the DaaR stages; lists their fingerprints and timings

    @property
    def n(self) -> int:
        return len(self.records)

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer.named(self.cfg.template)

    @cached_property
    def texts(self) -> list[str]:
        return [self.renderer.render(r) for r in self.records]

    def features(self, layer: str | int | None = None) -> np.ndarray:
        """Pooled pool features at `layer` (default: the config's layer), from the shared feature store."""
        from daar.features.job import extractor_for

        key = str(layer if layer is not None else self.cfg.layer)
        if key not in self._features:
            self._features[key] = extractor_for(self.cfg, layer=key)(self.records)
        return self._features[key]

    @property
    def generator(self) -> GenerationBackend:
        """The text generation backend (local HF generate, or --generator-url)."""
        if self._generator is None:
            from daar.synth.backends import make_backend

            self._generator = make_backend(self.cfg)
        return self._generator

    @cached_property
    def cache_root(self) -> Path:
        """Folder for caches shared across runs and selectors (judgements, scores)."""
        from daar.models.loading import cache_dir

        root = Path(self.cfg.feature_cache).parent if self.cfg.feature_cache else cache_dir()
        path = root / "judgements"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def domain_model(self) -> DomainModel:
        """The DaaR stages (domains -> synthesis -> centroids -> pseudo-labels -> probes) for this pool."""
        from daar.method import DomainModel

        return DomainModel.build(self)

    def labels(self, field: str | None = None) -> tuple[np.ndarray, list[str]]:
        """Per-record group ids and names: `field` from the raw records, else the DaaR pseudo-domains."""
        if field is None:
            dm = self.domain_model
            return dm.pool_domain, list(dm.domain_names)
        values: list[Any] = []
        for r in self.records:
            if field not in r.raw:
                raise ConfigError(f"--label-field '{field}' is missing in record {r.id} (line {r.line}); "
                                  "every record needs it, or drop the flag to use pseudo-domains")
            values.append(str(r.raw[field]))
        names = sorted(set(values))
        lookup = {v: i for i, v in enumerate(names)}
        return np.array([lookup[v] for v in values], dtype=np.int64), names
