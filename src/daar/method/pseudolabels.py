"""Stage 4 (METHOD.md): the probe set and its pseudo-domains.

The probe set is `--probe-data` when given (disjoint from the pool, as in the method), else a
seeded sample of the pool. The synthesized centroids are first calibrated onto the probe features
(`--calibration`, default shift: synthesized text sits off real text by a common offset), then
each probe record gets the domain of its cluster: k-means initialised at the calibrated centroids
with each final cluster named by an optimal matching to them (`kmeans`), the same k-means named by
initialisation order (`kmeans-init-order`, the paper), or the nearest fixed centroid (`nearest`).
daar.method.naming explains the calibrations, the matching and the naming margins kept in the
artifact. The probe set is a declared input by content: edit a probe text and the labels are
recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daar.data.pool import Pool
from daar.errors import ConfigError
from daar.features.extract import FeatureExtractor
from daar.method.centroids import Centroids
from daar.method.label_reader import LabelReader, cluster_label_scores, typical_members
from daar.method.naming import pseudo_label
from daar.method.stage import Artifact, Stage, StageRunner


def probe_set(cfg, pool: Pool, n_domains: int) -> Pool:
    """--probe-data (optionally sampled to --probe-size), else a seeded sample of the pool: min(5000, 25 %)."""
    p, seed = cfg.probes, cfg.run.seed
    if p.probe_data:
        i = cfg.input
        probe = Pool.load(p.probe_data, schema=i.schema, fmt=i.format, on_bad_record=i.on_bad_record,
                          template=i.template)
        if p.probe_size and p.probe_size < probe.n:
            probe = Pool(probe.sample(p.probe_size, seed).records, probe.renderer, probe.rejected, probe.source)
    else:
        size = p.probe_size or min(5000, max(1, pool.n // 4))
        probe = pool.sample(min(size, pool.n), seed)
    if probe.n < 2 * n_domains:  # checked before synthesis, the costly stage, runs
        raise ConfigError(f"the probe set has {probe.n} records, too few to pseudo-label {n_domains} domains and "
                          "train the probes; give a bigger pool, --probe-size or --probe-data")
    return probe


@dataclass(frozen=True, eq=False)
class PseudoLabels(Stage):
    name = "pseudo-labels"
    # 2: calibration, matched naming, naming margins; 3: the k-means optimum chosen among candidates;
    # 4: naming by the model's reading of the clusters (`naming`, `reader`); 5: gmm's start spreads from the
    # centroids (no seeded draw); 6: those spreads about each nearest group's own mean
    version = 6

    centroids: Centroids
    probe: Pool
    features: FeatureExtractor  # the centroid space
    assignment: str  # kmeans | nearest | kmeans-init-order
    seed: int
    calibration: str  # none | shift | standardize
    candidates: int = 0  # k-means++ runs whose optima `kmeans` may choose instead (daar.method.naming.choose_optimum)
    naming: str = "centroids"  # both | centroids | model (daar.method.naming.naming_evidence)
    reader: LabelReader | None = None  # the model that reads the clusters (naming both / model)
    texts_read: int = 8  # probe records read per cluster, the nearest to its centre

    def compute(self, runner: StageRunner) -> Artifact:
        art = runner.run(self.centroids).arrays
        names = [d.name for d in self.centroids.synthesis.domains]
        read = None
        if self.reader is not None:
            reader, texts = self.reader, self.features.texts_for(self.probe.records)

            def read(clusters, centres, x):
                members = typical_members(x, clusters, centres, self.texts_read)
                return cluster_label_scores(reader, [[texts[i] for i in idx] for idx in members], names)

        labels, cents, naming = pseudo_label(self.features(self.probe.records), art["centroids"],
                                             art.get("sample_std"), names, self.calibration, self.assignment,
                                             self.seed, self.candidates, naming_how=self.naming, read=read)
        return Artifact({"labels": labels, "centroids": cents},
                        {"counts": np.bincount(labels, minlength=len(names)).tolist(),
                         "probe_ids": self.probe.ids, "naming": naming})
