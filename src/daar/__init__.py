"""daar: Diversity as a Reward data selection for fine-tuning LLMs on domain-undetermined data."""

import os
from importlib.metadata import PackageNotFoundError, version

# Idle OpenMP threads spin by default; when the CPU is shared (tests, several jobs) that slowed
# generation ~20x here. Passive waiting costs little on an idle machine. Must precede torch's import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("daar")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"

from daar.data import Record, Renderer, load_records  # noqa: E402
from daar.data.pool import Pool  # noqa: E402
from daar.features import FeatureExtractor, FeatureStore, extract_features  # noqa: E402
from daar.method import DaaRModel, DomainScores  # noqa: E402
from daar.runs.select import DaaR  # noqa: E402
from daar.settings import Config  # noqa: E402

__all__ = ["__version__", "Config", "Record", "Renderer", "load_records", "FeatureExtractor", "FeatureStore",
           "extract_features", "DaaR", "DaaRModel", "DomainScores", "Pool"]
