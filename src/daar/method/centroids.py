"""Stage 3 (METHOD.md): one centroid per domain, the mean feature of its synthesized samples.

The feature space is the centroid extractor's (default the probe layer; `--centroid-layer
embedding` gives the paper's token-embedding space). `source="augmented"` averages only the phase-2
samples, as the authors' scripts do. The artifact also keeps the per-dimension spread of all the
chosen samples (`sample_std`), which `--calibration standardize` needs to put the synthesized
centroids on the probe features' scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daar.features.extract import FeatureExtractor
from daar.method.stage import Artifact, Stage, StageRunner
from daar.method.synthesis import Synthesis


@dataclass(frozen=True, eq=False)
class Centroids(Stage):
    name = "centroids"
    version = 2  # adds sample_std

    synthesis: Synthesis
    features: FeatureExtractor
    source: str  # all | augmented

    def compute(self, runner: StageRunner) -> Artifact:
        syn = runner.run(self.synthesis).meta
        render = self.features.renderer.render_fields
        rows, every = [], []
        for d in self.synthesis.domains:
            augmented = syn["augmented"].get(d.name) or []
            chosen = augmented if self.source == "augmented" and augmented else syn["samples"][d.name]
            feats = self.features([render(**x) for x in chosen])
            rows.append(feats.mean(0))
            every.append(feats)
        return Artifact({"centroids": np.stack(rows), "sample_std": np.concatenate(every).std(0)})
