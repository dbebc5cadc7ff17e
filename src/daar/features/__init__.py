"""Pooled shallow-layer features and the feature store that caches them."""

from daar.features.extract import FeatureExtractor, extract_features
from daar.features.store import FeatureSet, FeatureSpec, FeatureStore

__all__ = ["FeatureExtractor", "extract_features", "FeatureSet", "FeatureSpec", "FeatureStore"]
