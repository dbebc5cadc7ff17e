"""Stage 4 (METHOD.md): the probe set and its pseudo-domains.

The probe set is `--probe-data` when given (disjoint from the pool, as in the method), else a
seeded sample of the pool. Each probe record gets the domain of its cluster: k-means initialised at
the synthesized centroids (the method), or the nearest fixed centroid (`--assignment nearest`).
The probe set is a declared input by content: edit a probe text and the labels are recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daar.data.pool import Pool
from daar.errors import ConfigError
from daar.features.extract import FeatureExtractor
from daar.method.centroids import Centroids
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

    centroids: Centroids
    probe: Pool
    features: FeatureExtractor  # the centroid space
    assignment: str  # kmeans | nearest
    seed: int

    def compute(self, runner: StageRunner) -> Artifact:
        cents = runner.run(self.centroids).arrays["centroids"]
        k = len(cents)
        x = self.features(self.probe.records)
        if self.assignment == "nearest":
            labels = ((x[:, None, :] - cents[None]) ** 2).sum(-1).argmin(1)
        else:
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=k, init=cents.astype(np.float64), n_init=1, random_state=self.seed)
            labels = km.fit_predict(x.astype(np.float64))
        return Artifact({"labels": labels.astype(np.int64)},
                        {"counts": np.bincount(labels, minlength=k).tolist(), "probe_ids": self.probe.ids})
