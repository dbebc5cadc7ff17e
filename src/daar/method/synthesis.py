"""Stage 1-2 (METHOD.md): domain seeds and diversity-augmented samples, written by a generator model.

Declared inputs: the domains (names, descriptions, given examples, per-domain tau), the synthesis
settings, the seed, the generator's identity, the prompt version and the dedup feature extractor
(its FeatureSpec: model, full-depth layer, pooling, renderer, max length, dtype), so a change of
any of them is a new synthesis. The attempt log lives in the stage store's work folder for this
fingerprint, so an interrupted synthesis resumes where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from daar.features.extract import FeatureExtractor
from daar.method.stage import Artifact, Stage, StageRunner
from daar.synth.domains import Domain
from daar.synth.prompts import PROMPT_VERSION
from daar.synth.sampler import Synthesizer

log = logging.getLogger(__name__)


class LazyGenerator:
    """A generation backend named by its identity and built only when a generation is really needed."""

    def __init__(self, identity: str, factory: Callable[[], Any]):
        self.fingerprint = identity
        self._factory = factory

    @cached_property
    def backend(self) -> Any:
        return self._factory()

    def generate(self, *args: Any, **kwargs: Any) -> list[list[str]]:
        return self.backend.generate(*args, **kwargs)


@dataclass(frozen=True, eq=False)
class Synthesis(Stage):
    name = "synthesis"
    # 2: the attempt log moved to the stage store; dedup extractor declared; 3: cleaning filter, two-step mode;
    # 4: phase-2 attempts per round sized by what a domain still needs (sampler.DomainState.augment_want)
    version = 4

    domains: tuple[Domain, ...]
    settings: Any  # the synthesis settings section (a frozen dataclass: every field is fingerprinted)
    seed: int
    generator: LazyGenerator | None  # None when every domain has given examples
    dedup: FeatureExtractor | None
    prompt_version: str = PROMPT_VERSION

    def compute(self, runner: StageRunner) -> Artifact:
        log_path = runner.store.workdir(self) / "attempts.jsonl"
        embed = None
        if self.dedup is not None:
            dedup = self.dedup
            dedup.show_progress = False
            embed = lambda samples: dedup([dedup.renderer.render_fields(**x) for x in samples])  # noqa: E731
        states = Synthesizer(list(self.domains), self.generator, embed, self.settings, self.seed, log_path).run(
            progress=lambda msg: log.info("synthesis: %s", msg))
        samples = {n: st.samples for n, st in states.items()}
        summary = [st.summary() for st in states.values()]
        for st, d in zip(summary, self.domains, strict=True):
            st["fallback"] = None
            if not samples[d.name]:
                # Better a centroid from the description than no domain at all; said loudly.
                log.warning("domain '%s' has no usable sample after %d attempts; its centroid comes from its "
                            "description alone. Give examples in domains.yaml or raise --max-attempts",
                            d.name, st["attempts"])
                samples[d.name] = [{"instruction": d.description, "input": "", "output": ""}]
                st["fallback"] = "description"
        return Artifact(meta={"samples": samples, "augmented": {n: st.augmented for n, st in states.items()},
                              "phases": {n: [1] * len(st.seeds) + [2] * len(st.augmented) for n, st in states.items()},
                              "summary": summary, "attempt_log": str(log_path)})
