"""DaaR itself (METHOD.md steps 1-8): one module per stage, a stage base whose fingerprint comes
from declared inputs, and the fitted model object.

    synthesis.py     domain seeds + diversity-augmented samples (stages 1-2)
    centroids.py     one centroid per domain (stage 3)
    pseudolabels.py  the probe set and its pseudo-domains (stage 4)
    heads.py         psi_dom and psi_div (stages 5-7); mlp.py trains the MLPs
    model.py         DaaRModel: fit / score / save / load
    scores.py        the per-pool `scores` stage
    pipeline.py      the stages wired from the settings; STAGE_NAMES (also `--until`'s choices)
    stage.py         Stage, StageStore (fingerprinted artifacts that cannot tear), StageRunner
"""

from daar.method.model import DaaRModel, DomainScores
from daar.method.pipeline import STAGE_NAMES, build_pipeline
from daar.method.stage import StageReached, StageRecord, StageRunner, StageStore

__all__ = ["DaaRModel", "DomainScores", "STAGE_NAMES", "build_pipeline", "StageReached", "StageRecord",
           "StageRunner", "StageStore"]
