"""Stage 1-2 (METHOD.md): domain seeds and diversity-augmented samples, written by a generator model.

Declared inputs: the domains (names, descriptions, given examples, per-domain tau), the synthesis
settings, the seed, the generator's identity, the prompt version and the dedup feature extractor
(its FeatureSpec: model, full-depth layer, pooling, renderer, max length, dtype), so a change of
any of them is a new synthesis. The attempt log lives in the stage store's work folder for this
fingerprint, so an interrupted synthesis resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daar.features.extract import FeatureExtractor
from daar.method.stage import Artifact, Stage, StageRunner
from daar.perf.side_by_side import run_side_by_side
from daar.synth.domains import Domain
from daar.synth.prompts import PROMPT_VERSION
from daar.synth.sampler import Synthesizer

log = logging.getLogger(__name__)


class LazyGenerator:
    """A generation backend named by its identity and built only when a generation is really needed.

    `concurrency`: how many generate calls the backend runs usefully side by side (its `concurrent_calls`,
    known before it is built); the synthesis runs that many chains at once."""

    def __init__(self, identity: str, factory: Callable[[], Any], concurrency: int = 1):
        self.fingerprint = identity
        self.concurrency = max(1, int(concurrency))
        self._factory = factory
        self._backend: Any = None
        self._build_lock = threading.Lock()  # chains side by side must not build (load) it twice

    @property
    def backend(self) -> Any:
        with self._build_lock:
            if self._backend is None:
                self._backend = self._factory()
            return self._backend

    def generate(self, *args: Any, **kwargs: Any) -> list[list[str]]:
        return self.backend.generate(*args, **kwargs)


@dataclass(frozen=True, eq=False)
class Synthesis(Stage):
    name = "synthesis"
    # 2: the attempt log moved to the stage store; dedup extractor declared; 3: cleaning filter, two-step mode;
    # 4: phase-2 attempts per round sized by what a domain still needs (sampler.DomainState.augment_want),
    # independent chains (synthesis_chains)
    version = 4

    domains: tuple[Domain, ...]
    settings: Any  # the synthesis settings section (a frozen dataclass: every field is fingerprinted)
    seed: int
    generator: LazyGenerator | None  # None when every domain has given examples
    dedup: FeatureExtractor | None
    prompt_version: str = PROMPT_VERSION

    def compute(self, runner: StageRunner) -> Artifact:
        workdir = runner.store.workdir(self)
        embed = None
        if self.dedup is not None:
            dedup, lock = self.dedup, threading.Lock()
            dedup.show_progress = False

            def embed(samples):
                # one extractor (its feature store, its tokenizer) for every chain: one call at a time
                with lock:
                    return dedup([dedup.renderer.render_fields(**x) for x in samples])

        def chain_job(chain: int):
            return lambda: Synthesizer(list(self.domains), self.generator, embed, self.settings,
                                       chain_seed(self.seed, chain), workdir / attempt_log_name(chain)).run(
                progress=lambda msg: log.info("synthesis%s: %s", f" chain {chain}" if chain else "", msg))

        n = self.settings.synthesis_chains
        # chains are independent: side by side where the backend gains from it (one per CPU core on a CPU;
        # each draws from its own seeded generator, so the samples are those of chains run one by one)
        workers = min(n, self.generator.concurrency if self.generator is not None else 1)
        if workers > 1:
            log.info("synthesis: %d chains, %d side by side", n, workers)
        chains = run_side_by_side([chain_job(c) for c in range(n)], workers, name="daar-synthesis")
        seeds, augmented, samples, summary = {}, {}, {}, []
        for d in self.domains:
            per_chain = [states[d.name] for states in chains]
            # given examples are the domain's samples once, not once per chain
            pooled = per_chain[:1] if per_chain[0].given else per_chain
            # seeds of every chain first, then their phase-2 samples (the phase-1/phase-2 order outputs rely on)
            seeds[d.name] = [x for st in pooled for x in st.seeds]
            augmented[d.name] = [x for st in pooled for x in st.augmented]
            samples[d.name] = seeds[d.name] + augmented[d.name]
            st = {"domain": d.name, "seeds": len(seeds[d.name]), "augmented": len(augmented[d.name]),
                  "attempts": sum(c.attempts for c in per_chain), "capped": any(c.capped for c in per_chain),
                  "given": per_chain[0].given, "fallback": None}
            if len(chains) > 1:
                st["chains"] = [{k: c.summary()[k] for k in ("seeds", "augmented", "attempts", "capped")}
                                for c in per_chain]
            if not samples[d.name]:
                # Better a centroid from the description than no domain at all; said loudly.
                log.warning("domain '%s' has no usable sample after %d attempts; its centroid comes from its "
                            "description alone. Give examples in domains.yaml or raise --max-attempts",
                            d.name, st["attempts"])
                samples[d.name] = [{"instruction": d.description, "input": "", "output": ""}]
                st["fallback"] = "description"
            summary.append(st)
        return Artifact(meta={"samples": samples, "augmented": augmented,
                              "phases": {n: [1] * len(seeds[n]) + [2] * len(augmented[n]) for n in seeds},
                              "summary": summary, "attempt_log": str(workdir / attempt_log_name(0))})


def chain_seed(seed: int, chain: int) -> int:
    """Chain 0 draws from the run's seed (one chain is the synthesis as it always was); every further chain
    from a seed derived from (seed, chain), far from neighbouring run seeds so no two runs share a chain."""
    if chain == 0:
        return seed
    return int(hashlib.sha256(f"daar-synthesis-{seed}-chain-{chain}".encode()).hexdigest()[:8], 16)


def attempt_log_name(chain: int) -> str:
    """The attempt log of a chain in the stage's work folder: attempts.jsonl, attempts-chain1.jsonl, ..."""
    return "attempts.jsonl" if chain == 0 else f"attempts-chain{chain}.jsonl"
