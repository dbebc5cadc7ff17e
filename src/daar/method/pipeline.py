"""The DaaR stages wired together from the settings: one declaration gives the stage order, the
`--until` choices and every stage's inputs.

    synthesis -> centroids -> pseudo-labels -> psi_dom -> psi_div -> scores
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from daar.data.pool import Pool
from daar.features.extract import FeatureExtractor
from daar.method.centroids import Centroids
from daar.method.heads import DiversityHead, DomainHead
from daar.method.mlp import HeadTraining
from daar.method.naming import MATCHED
from daar.method.pseudolabels import PseudoLabels
from daar.method.scores import Scores
from daar.method.synthesis import LazyGenerator, Synthesis
from daar.synth.domains import Domain, load_domains

STAGES = (Synthesis, Centroids, PseudoLabels, DomainHead, DiversityHead, Scores)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)

ExtractorFactory = Callable[..., FeatureExtractor]  # (layer, model=None) -> extractor


@dataclass(frozen=True)
class Pipeline:
    """The fitted-model stages for one probe set (scores are per pool: see DaaRModel.score)."""

    synthesis: Synthesis
    centroids: Centroids
    labels: PseudoLabels
    dom: DomainHead
    div: DiversityHead


def generator_for(cfg, domains: list[Domain], backend=None) -> LazyGenerator | None:
    """Who writes the domain samples (None when every domain brings its own examples).

    `backend` is a generation backend handed in by the caller (a server client, a test double); it
    is named by its own identity. Otherwise the settings' backend is built on first use.
    """
    if all(d.examples for d in domains):
        return None
    if backend is not None:
        return LazyGenerator(backend.identity or type(backend).__name__, lambda: backend,
                             getattr(backend, "concurrent_calls", 1))
    from daar.synth.backends import backend_concurrency, backend_identity, make_backend

    return LazyGenerator(backend_identity(cfg), lambda: make_backend(cfg), backend_concurrency(cfg))


def default_extractors(cfg) -> ExtractorFactory:
    from daar.features.job import extractor_for

    made: dict[tuple[str, str | None], FeatureExtractor] = {}

    def get(layer, model: str | None = None) -> FeatureExtractor:
        key = (str(layer), model)
        if key not in made:
            made[key] = extractor_for(cfg, layer=layer, model=model)
        return made[key]

    return get


def local_generator_model(cfg) -> str | None:
    """The local model that stands for the generator: --generator-model (else --model); with a server
    generator (--generator-url), whose weights are not here, --model. It embeds the synthesis dedup and
    reads the clusters for their names."""
    s = cfg.synthesis
    return cfg.lm.model if s.generator_url else (s.generator_model or cfg.lm.model)


def build_pipeline(cfg, probe: Pool, extractor: ExtractorFactory | None = None,
                   generator: LazyGenerator | None = None) -> Pipeline:
    """The stages of `cfg` on `probe`; nothing runs until a StageRunner runs them."""
    extractor = extractor or default_extractors(cfg)
    domains = load_domains(cfg.synthesis.domains)
    generator = generator if generator is not None else generator_for(cfg, domains)
    dedup = None
    if generator is not None:
        from daar.models.loading import num_layers

        dedup_model = local_generator_model(cfg)
        dedup = extractor(num_layers(dedup_model), model=dedup_model)
    synthesis = Synthesis(domains=tuple(domains), settings=cfg.synthesis, seed=cfg.run.seed, generator=generator,
                          dedup=dedup)
    centroid_space = extractor(cfg.centroid_space)
    centroids = Centroids(synthesis=synthesis, features=centroid_space, source=cfg.probes.centroid_source)
    pr = cfg.probes
    reader = None
    if pr.naming != "centroids" and pr.assignment in MATCHED:
        from daar.method.label_reader import LabelReader

        reader = LabelReader(local_generator_model(cfg), device=cfg.lm.device)
    labels = PseudoLabels(centroids=centroids, probe=probe, features=centroid_space,
                          assignment=pr.assignment, seed=cfg.run.seed, calibration=pr.calibration,
                          candidates=pr.kmeans_candidates, naming=pr.naming, reader=reader,
                          texts_read=pr.naming_texts)
    layer = extractor(cfg.features.layer)
    training = HeadTraining.from_settings(cfg, probe.n)
    dom = DomainHead(labels=labels, probe=probe, features=layer, n_domains=len(domains), training=training)
    div = DiversityHead(domain=dom, probe=probe, features=layer, training=training)
    return Pipeline(synthesis, centroids, labels, dom, div)
