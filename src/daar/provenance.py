"""What produced a result: package versions, the Python and the platform, in one shape everywhere.

Every manifest (selection, training, evaluation) records these so that a number can be traced
to the software that made it; one function means the manifests list the same packages the same way.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

__all__ = ["PACKAGES", "package_versions", "runtime"]

# The distributions whose versions can change daar's numbers (selection, training, evaluation).
PACKAGES = ("daar", "torch", "transformers", "numpy", "scikit-learn", "peft", "trl", "accelerate", "lm-eval")


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """{"python": X.Y.Z, package: version} for each of `packages` that is installed (others left out)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def runtime() -> dict[str, str]:
    """The interpreter and machine: Python version and implementation, OS platform string, CPU architecture."""
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine()}
