"""The fitted DaaR model, in the style of DSIR / scikit-learn: fit on a probe set, score any pool,
save and load. The selector, the report, scale-out and the Python API all go through `fit` and
`score`, so there is one way to get DaaR's numbers.

    model = DaaRModel.fit(cfg, probe)          # stages 1-7, each cached in the stage store
    scores = model.score(pool)                 # DomainScores: probs [n, K], entropy [n], domain [n]
    model.save("daar-model.npz"); DaaRModel.load("daar-model.npz").score(other_pool)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from daar.data.pool import Pool
from daar.data.render import Renderer
from daar.features.extract import FeatureExtractor
from daar.method.mlp import HeadEnsemble, head_from_arrays, head_to_arrays
from daar.method.naming import warn_close_domains
from daar.method.scores import Scores
from daar.method.stage import StageRunner, StageStore, load_npz, save_npz

if TYPE_CHECKING:
    from daar.method.pipeline import Pipeline

_FORMAT = "daar-model/1"


@dataclass(frozen=True)
class DomainScores:
    """Per-record outputs: psi_dom's domain probabilities and psi_div's predicted entropy."""

    names: list[str]
    probs: np.ndarray  # [n, K]
    entropy: np.ndarray  # [n], float64

    @property
    def domain(self) -> np.ndarray:
        """The argmax pseudo-domain of each record."""
        return self.probs.argmax(axis=1)


@dataclass(eq=False)
class DaaRModel:
    domain_names: list[str]
    centroids: np.ndarray  # [K, d] in the centroid space
    dom: HeadEnsemble
    div: HeadEnsemble
    features: FeatureExtractor  # how records become the heads' inputs (the probe layer)
    fingerprint: str  # identity of the fitted model: its psi_div stage fingerprint (covers every input)
    samples: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    synthesis: list[dict[str, Any]] = field(default_factory=list)  # per-domain summary (attempts, capped, ...)
    probe_ids: list[str] = field(default_factory=list)
    probe_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    probe_metrics: dict[str, Any] = field(default_factory=dict)
    div_metrics: dict[str, Any] = field(default_factory=dict)
    # how each pseudo-domain got its name and how sure that is (daar.method.naming): margins per domain,
    # separations of the centroids, the close pairs; empty for a model built by hand
    naming: dict[str, Any] = field(default_factory=dict)

    # -- fit ---------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, cfg, probe: Pool, runner: StageRunner | None = None, *, extractor=None,
            generator=None) -> DaaRModel:
        """Stages synthesis -> centroids -> pseudo-labels -> psi_dom -> psi_div on `probe`."""
        from daar.method.pipeline import build_pipeline

        runner = runner or StageRunner(StageStore(cfg.features.stage_cache))
        return cls.from_pipeline(build_pipeline(cfg, probe, extractor=extractor, generator=generator), runner)

    @classmethod
    def from_pipeline(cls, p: Pipeline, runner: StageRunner) -> DaaRModel:
        syn = runner.run(p.synthesis).meta
        cents = runner.run(p.centroids).arrays["centroids"]
        labelled = runner.run(p.labels)
        labels, naming = labelled.arrays["labels"], labelled.meta.get("naming", {})
        warn_close_domains(naming)  # on every fit, cached or not
        dom, div = p.dom.head(runner), p.div.head(runner)
        return cls(domain_names=[d.name for d in p.synthesis.domains], centroids=cents, dom=dom, div=div,
                   features=p.div.features, fingerprint=p.div.fingerprint, samples=syn["samples"],
                   synthesis=syn["summary"], probe_ids=list(p.labels.probe.ids), probe_labels=labels,
                   probe_metrics=dict(dom.metrics), div_metrics=dict(div.metrics), naming=naming)

    # -- naming ------------------------------------------------------------------------------------
    def unsure_domains(self, min_margin: float) -> dict[str, float]:
        """Domains whose naming margin is below `min_margin` (NaN when the model has no margins).

        Strategies that group by name (balanced, customized) need every name to be right; a model
        without margins (built by hand, or saved before they existed) cannot vouch for any name.
        """
        margins = self.naming.get("margins") or {n: float("nan") for n in self.domain_names}
        return {n: float(m) for n, m in margins.items() if not float(m) >= min_margin}

    def naming_confident(self, min_margin: float) -> bool:
        """True when every domain's name has a margin of at least `min_margin`."""
        return not self.unsure_domains(min_margin)

    # -- score -------------------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> DomainScores:
        """Scores for precomputed probe-layer features (the streaming / scale-out entry point)."""
        return DomainScores(list(self.domain_names), self.dom.predict_proba(x),
                            self.div.forward(x)[:, 0].astype(np.float64))

    def score(self, pool: Pool, runner: StageRunner | None = None) -> DomainScores:
        """Scores for every record of `pool`; with a runner the result is a cached `scores` stage."""
        if runner is None:
            return self.predict(self.features(pool.records))
        art = runner.run(Scores(model=self, pool=pool, features=self.features))
        return DomainScores(list(self.domain_names), art.arrays["probs"], art.arrays["entropy"])

    # -- save / load -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """One self-contained .npz (heads, centroids, metadata), written atomically."""
        f = self.features
        meta = {"format": _FORMAT, "fingerprint": self.fingerprint, "domain_names": self.domain_names,
                "features": {"model": f.model_spec, "layer": f.layer, "pooling": f.pooling,
                             "template": f.renderer.template, "drop_empty_lines": f.renderer.drop_empty_lines,
                             "max_length": f.max_length, "dtype": f.dtype_name, "batch_size": f.batch_size},
                "samples": self.samples, "synthesis": self.synthesis, "probe_ids": self.probe_ids,
                "probe_metrics": self.probe_metrics, "div_metrics": self.div_metrics, "naming": self.naming}
        arrays = {**head_to_arrays(self.dom, "dom"), **head_to_arrays(self.div, "div"), "centroids": self.centroids,
                  "probe_labels": self.probe_labels}
        return save_npz(Path(path), arrays, meta)

    @classmethod
    def load(cls, path: str | Path, feature_cache: str | None = None, device: str | None = None) -> DaaRModel:
        from daar.errors import ConfigError
        from daar.features.store import FeatureStore

        try:
            arrays, meta = load_npz(path)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path}: not a saved DaaR model ({exc})") from None
        if meta.get("format") != _FORMAT:
            raise ConfigError(f"{path}: format {meta.get('format')!r} is not {_FORMAT!r}; save the model again")
        f = meta["features"]
        extractor = FeatureExtractor(model=f["model"], layer=f["layer"], pooling=f["pooling"],
                                     renderer=Renderer(f["template"], f["drop_empty_lines"]),
                                     max_length=f["max_length"], dtype=f["dtype"], batch_size=f["batch_size"],
                                     store=FeatureStore(feature_cache), device=device)
        return cls(domain_names=meta["domain_names"], centroids=arrays["centroids"],
                   dom=head_from_arrays(arrays, "dom", meta["probe_metrics"]),
                   div=head_from_arrays(arrays, "div", meta["div_metrics"]), features=extractor,
                   fingerprint=meta["fingerprint"], samples=meta["samples"], synthesis=meta["synthesis"],
                   probe_ids=meta["probe_ids"], probe_labels=arrays["probe_labels"],
                   probe_metrics=meta["probe_metrics"], div_metrics=meta["div_metrics"],
                   naming=meta.get("naming", {}))
