"""Stage 8's input (METHOD.md): every record of a pool scored by the fitted heads, cached per
(model, pool content, feature spec)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from daar.data.pool import Pool
from daar.features.extract import FeatureExtractor
from daar.method.stage import Artifact, Stage, StageRunner


class FittedScorer(Protocol):
    """What the stage needs of a fitted model (DaaRModel): an identity and a predict()."""

    fingerprint: str

    def predict(self, x: np.ndarray) -> Any: ...


@dataclass(frozen=True, eq=False)
class Scores(Stage):
    """Stage 8's input: every pool record scored by the fitted heads."""

    name = "scores"

    model: FittedScorer  # fingerprinted by the model's own fingerprint
    pool: Pool
    features: FeatureExtractor

    def compute(self, runner: StageRunner) -> Artifact:
        s = self.model.predict(self.features(self.pool.records))
        return Artifact({"probs": s.probs, "entropy": s.entropy})
