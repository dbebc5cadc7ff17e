"""Config defaults that depend on other settings."""

from __future__ import annotations

from daar.config import Config


def test_centroids_follow_the_probe_layer_unless_set():
    assert Config().centroid_space == "3"
    assert Config(layer="5").centroid_space == "5"
    assert Config(layer="5", centroid_layer="embedding").centroid_space == "embedding"


def test_reference_preset_uses_the_papers_embedding_centroids():
    cfg = Config(preset="reference").apply_preset()
    assert cfg.centroid_space == "embedding" and cfg.pooling == "mean-padded"
