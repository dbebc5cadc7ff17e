"""Stages 5-7 (METHOD.md): the domain probe psi_dom on the pseudo-labels, then the diversity
predictor psi_div on psi_dom's entropy, both on probe-layer features of the probe set.
"""

from __future__ import annotations

from dataclasses import dataclass

from daar.data.pool import Pool
from daar.features.extract import FeatureExtractor
from daar.method.mlp import (
    HeadTraining,
    entropy,
    head_from_arrays,
    head_to_arrays,
    train_classifier,
    train_regressor,
)
from daar.method.pseudolabels import PseudoLabels
from daar.method.stage import Artifact, Stage, StageRunner


@dataclass(frozen=True, eq=False)
class DomainHead(Stage):
    """psi_dom: an MLP classifier of the pseudo-domains."""

    name = "psi_dom"

    labels: PseudoLabels
    probe: Pool
    features: FeatureExtractor  # the probe layer
    n_domains: int
    training: HeadTraining

    def compute(self, runner: StageRunner) -> Artifact:
        labels = runner.run(self.labels)
        head = train_classifier(self.features(self.probe.records), labels.arrays["labels"], self.n_domains,
                                self.training)
        return Artifact(head_to_arrays(head, "dom"), {**head.metrics, "label_counts": labels.meta["counts"]})

    def head(self, runner: StageRunner):
        art = runner.run(self)
        return head_from_arrays(art.arrays, "dom", art.meta)


@dataclass(frozen=True, eq=False)
class DiversityHead(Stage):
    """psi_div: an MLP regressor of psi_dom's predicted entropy on the probe set."""

    name = "psi_div"
    version = 2  # the target standardised for training (mlp.train_regressor)

    domain: DomainHead
    probe: Pool
    features: FeatureExtractor
    training: HeadTraining

    def compute(self, runner: StageRunner) -> Artifact:
        dom = self.domain.head(runner)
        x = self.features(self.probe.records)
        target = entropy(dom.predict_proba(x))
        head = train_regressor(x, target, self.training)
        return Artifact({**head_to_arrays(head, "div"), "target": target}, head.metrics)

    def head(self, runner: StageRunner):
        art = runner.run(self)
        return head_from_arrays(art.arrays, "div", art.meta)
