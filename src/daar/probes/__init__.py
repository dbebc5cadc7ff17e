"""Small MLP heads trained on cached features: the domain probe psi_dom and the diversity predictor psi_div."""

from daar.probes.heads import ProbeSettings, TrainedHead, entropy, train_classifier, train_regressor

__all__ = ["ProbeSettings", "TrainedHead", "entropy", "train_classifier", "train_regressor"]
