"""daar: Diversity as a Reward data selection for fine-tuning LLMs on domain-undetermined data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("daar")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"

from daar.config import Config  # noqa: E402
from daar.data import Record, Renderer, load_records  # noqa: E402
from daar.features import FeatureExtractor, FeatureStore, extract_features  # noqa: E402

__all__ = ["__version__", "Config", "Record", "Renderer", "load_records", "FeatureExtractor", "FeatureStore",
           "extract_features"]
