"""Helpers for selector tests: shared resources with hand-made features, a fixed DaaR model and a
fake LLM judge (a real GenerationBackend subclass returning canned answers and counting calls).

Imported by the tests as `selector_helpers` (this folder is on sys.path under pytest's default
prepend import mode, like conftest.py itself)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from daar.method import DaaRModel, DomainScores
from daar.selectors.context import Resources
from daar.synth.backends import GenerationBackend


class FakeJudge(GenerationBackend):
    """Answers each chat prompt with answer(user_message_text); counts prompts and calls."""

    def __init__(self, answer: Callable[[str], str], identity: str = "fake-judge"):
        self.answer = answer
        self.identity = identity
        self.calls = 0
        self.prompts = 0

    def generate(self, prompts, *, n=1, temperature=0.9, top_p=0.95, max_new_tokens=512, seed=None):
        self.calls += 1
        self.prompts += len(prompts)
        return [[self.answer(p[-1]["content"])] * n for p in prompts]


def fixed_domain_model(domain_names: list[str], centroids: np.ndarray, pool_probs: np.ndarray,
                       pool_entropy: np.ndarray) -> tuple[DaaRModel, DomainScores]:
    """A fitted DaaR model and its pool scores as given (what the stages would have produced), no stage run.

    The heads and extractor are absent: selectors only read the pool scores and the centroids."""
    model = DaaRModel(domain_names=domain_names, centroids=centroids, dom=None, div=None, features=None,
                      fingerprint="fixed", samples={n: [] for n in domain_names})
    return model, DomainScores(list(domain_names), np.asarray(pool_probs), np.asarray(pool_entropy, np.float64))


class FixedResources(Resources):
    """Resources whose features come from `fixed` (layer -> array) and whose DaaR is `fixed_daar`, where given."""

    def __init__(self, cfg, fixed: dict[str, np.ndarray], fixed_daar=None, generator=None):
        super().__init__(cfg, generator=generator)
        self.fixed = fixed
        self.fixed_daar = fixed_daar

    def features(self, pool, layer):
        return self.fixed[str(layer)] if str(layer) in self.fixed else super().features(pool, layer)

    def daar(self, pool):
        return self.fixed_daar if self.fixed_daar is not None else super().daar(pool)

    @property
    def daar_fitted(self) -> bool:
        return self.fixed_daar is not None or super().daar_fitted


def make_rows(n: int, seed: int = 0) -> list[dict]:
    """n distinct Alpaca rows of varied lengths with a `source` label field."""
    rng = np.random.default_rng(seed)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    rows = []
    for i in range(n):
        k_in, k_out = int(rng.integers(1, 12)), int(rng.integers(1, 20))
        rows.append({"instruction": f"Task {i}: " + " ".join(rng.choice(words, k_in)),
                     "input": "", "output": " ".join(rng.choice(words, k_out)),
                     "source": ["a", "b", "c"][i % 3]})
    return rows


def fake_domain_model(n: int, k: int = 3, d: int = 8, seed: int = 0) -> tuple[DaaRModel, DomainScores]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), size=n)
    ent = -(probs * np.log(probs)).sum(axis=1)
    return fixed_domain_model([f"d{i}" for i in range(k)], rng.normal(size=(k, d)), probs, ent)
