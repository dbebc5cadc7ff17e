"""Two-phase domain synthesis with rejection sampling (METHOD.md steps 1-2).

Phase 1 asks, per domain, for `seeds_per_domain` samples of that domain only (one per prompt). Phase 2 repeatedly
shows `counter_examples` random existing samples and asks for one clearly different sample; it is
accepted only if its cosine similarity to every existing sample of the domain is below tau.
All active domains are served in one generation batch per round (batched generation is what makes
this affordable on a CPU). Every attempt is logged with prompt, raw output, parse result, nearest
similarity and verdict; a domain stops at `samples_per_domain` accepted samples or at
`max_attempts`, and the cap is reported.

Resumability: each round uses a seed derived from (seed, round), and a round's log lines are
appended together with an end-of-round marker. A rerun replays the complete rounds of the log and
continues from the next round, so an interrupted run ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from daar.io import atomic_write
from daar.synth.backends import GenerationBackend
from daar.synth.domains import Domain
from daar.synth.parse import ParseError, parse_samples
from daar.synth.prompts import augment_prompt, seed_prompt

log = logging.getLogger(__name__)

# The first tokens of the reply, prefilled so small models start the JSON we ask for.
REPLY_PREFIX = {1: '{"instruction": "', 2: '{"instruction": "'}

EmbedFn = Callable[[list[dict[str, str]]], np.ndarray]


class SynthSettings(Protocol):
    """What the sampler reads: the synthesis settings section (defaults are declared there, once)."""

    seeds_per_domain: int
    samples_per_domain: int
    counter_examples: int
    tau: float
    seed_temperature: float
    augment_temperature: float
    top_p: float
    max_new_tokens: int
    max_attempts: int
    synth_batch: int
    dedup_center: bool  # centre features on the mean of all samples before the cosine (see _similarity)


@dataclass
class DomainState:
    domain: Domain
    seeds: list[dict[str, str]] = field(default_factory=list)
    augmented: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    capped: bool = False
    given: bool = False  # examples came from domains.yaml; nothing synthesised

    @property
    def samples(self) -> list[dict[str, str]]:
        return self.seeds + self.augmented

    def phase(self, s: SynthSettings) -> int | None:
        """1 or 2 while work remains, None when the domain is finished."""
        if self.given or self.capped:
            return None
        if len(self.seeds) < s.seeds_per_domain:
            return 1
        return 2 if len(self.augmented) < s.samples_per_domain else None

    def summary(self) -> dict:
        return {"domain": self.domain.name, "seeds": len(self.seeds), "augmented": len(self.augmented),
                "attempts": self.attempts, "capped": self.capped, "given": self.given}


def _cos_max(candidate: np.ndarray, existing: np.ndarray) -> float:
    if len(existing) == 0:
        return 0.0
    a = candidate / max(np.linalg.norm(candidate), 1e-12)
    b = existing / np.maximum(np.linalg.norm(existing, axis=1, keepdims=True), 1e-12)
    return float((b @ a).max())


class Synthesizer:
    def __init__(self, domains: list[Domain], backend: GenerationBackend, embed: EmbedFn,
                 settings: SynthSettings, seed: int, log_path: str | Path):
        self.domains = domains
        self.seed = seed
        self.backend = backend
        self.embed = embed
        self.s = settings
        self.log_path = Path(log_path)
        self.states = {d.name: DomainState(d) for d in domains}
        for d in domains:
            if d.examples:
                self.states[d.name].seeds = list(d.examples)
                self.states[d.name].given = True

    # -- log replay ------------------------------------------------------------------------------
    def _replay(self) -> int:
        """Rebuild state from complete rounds in the log; return the next round number."""
        if not self.log_path.exists():
            return 0
        rounds: dict[int, list[dict]] = {}
        done: set[int] = set()
        with open(self.log_path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    break  # torn last line of an interrupted write
                if "round_done" in entry:
                    done.add(entry["round_done"])
                else:
                    rounds.setdefault(entry["round"], []).append(entry)
        for r in sorted(done):
            for e in rounds.get(r, []):
                self._apply(e)
        # drop anything after the last complete round so the log matches the rebuilt state
        lines = []
        for r in sorted(done):
            lines += [json.dumps(e, ensure_ascii=False) for e in rounds.get(r, [])] + [json.dumps({"round_done": r})]
        atomic_write(self.log_path, "".join(x + "\n" for x in lines))
        return max(done) + 1 if done else 0

    def _apply(self, e: dict) -> None:
        st = self.states[e["domain"]]
        st.attempts += 1
        if e["accepted"]:
            for sample in e["accepted_samples"]:
                (st.seeds if e["phase"] == 1 else st.augmented).append(sample)
        if st.attempts >= self.s.max_attempts and st.phase(self.s) is not None:
            st.capped = True

    # -- one round -------------------------------------------------------------------------------
    def _round(self, r: int) -> list[dict]:
        rng = random.Random(f"{self.seed}-{r}")
        jobs = []  # (domain state, phase, prompt)
        active = [st for st in self.states.values() if st.phase(self.s) is not None]
        per_domain = max(1, self.s.synth_batch // max(1, len(active)))
        for st in active:
            left = self.s.max_attempts - st.attempts
            phase = st.phase(self.s)
            want = self.s.seeds_per_domain - len(st.seeds) if phase == 1 else per_domain
            for _ in range(min(want, left)):
                if phase == 1:
                    prompt = seed_prompt(st.domain, self.domains)
                else:
                    k = min(self.s.counter_examples, len(st.samples))
                    prompt = augment_prompt(st.domain, self.domains, rng.sample(st.samples, k))
                jobs.append((st, phase, prompt))
        by_phase: dict[int, list[int]] = {}
        for i, (_, phase, _) in enumerate(jobs):
            by_phase.setdefault(phase, []).append(i)
        outputs: list[str] = [""] * len(jobs)
        for phase, idx in sorted(by_phase.items()):
            temp = self.s.seed_temperature if phase == 1 else self.s.augment_temperature
            gen = self.backend.generate([jobs[i][2] for i in idx], n=1, temperature=temp, top_p=self.s.top_p,
                                        max_new_tokens=self.s.max_new_tokens, seed=rng.randrange(2**31),
                                        prefix=REPLY_PREFIX[phase])
            for i, outs in zip(idx, gen, strict=True):
                outputs[i] = outs[0] if outs else ""
        entries = []
        for (st, phase, prompt), raw in zip(jobs, outputs, strict=True):
            entry = {"round": r, "domain": st.domain.name, "phase": phase, "prompt": prompt[-1]["content"],
                     "raw": raw, "parsed": None, "error": None, "similarity": None, "accepted": False,
                     "accepted_samples": []}
            try:
                parsed = parse_samples(raw)
            except ParseError as exc:
                entry["error"] = str(exc)
                entries.append(entry)
                self._apply(entry)
                continue
            if phase == 1:
                need = self.s.seeds_per_domain - len(st.seeds)
                known = {json.dumps(x, sort_keys=True) for x in st.samples}
                fresh = [p for p in parsed if json.dumps(p, sort_keys=True) not in known][:need]
                entry.update(parsed=parsed, accepted=bool(fresh), accepted_samples=fresh,
                             error=None if fresh else "only duplicates of existing seeds")
            elif st.phase(self.s) != 2:  # an earlier candidate of this round already reached the target
                entry.update(parsed=parsed[0], error="not needed: the domain reached its target in this round")
            else:
                cand = parsed[0]
                sim = self._similarity(st, cand)
                tau = st.domain.threshold(self.s.tau)
                entry.update(parsed=cand, similarity=round(sim, 6), accepted=sim < tau,
                             accepted_samples=[cand] if sim < tau else [])
            entries.append(entry)
            self._apply(entry)
        return entries

    def _similarity(self, st: DomainState, cand: dict[str, str]) -> float:
        """Highest cosine between the candidate and the domain's existing samples.

        Mean-pooled hidden states of small models share one dominant direction (raw cosines of
        unrelated texts are 0.93-0.99 on SmolLM2-135M's last layer), which makes any fixed tau reject
        everything. With `dedup_center`, features are first centred on the mean of every sample of every
        domain so far, which removes that shared direction and keeps what tells samples apart.
        """
        others = [x for o in self.states.values() if o is not st for x in o.samples] if self.s.dedup_center else []
        feats = self.embed(st.samples + [cand] + others)
        if self.s.dedup_center:
            feats = feats - feats.mean(0, keepdims=True)
        n = len(st.samples)
        return _cos_max(feats[n], feats[:n])

    def run(self, progress: Callable[[str], None] | None = None) -> dict[str, DomainState]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        r = self._replay()
        while any(st.phase(self.s) is not None for st in self.states.values()):
            entries = self._round(r)
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
                         + json.dumps({"round_done": r}) + "\n")
                fh.flush()
            if progress:
                progress(", ".join(f"{n}: {len(st.samples)} ({st.attempts} tries)" for n, st in self.states.items()))
            r += 1
        for st in self.states.values():
            if st.capped:
                log.warning("domain '%s' stopped at the attempt cap (%d): %d seeds + %d accepted samples; raise "
                            "--max-attempts or give examples in domains.yaml", st.domain.name, self.s.max_attempts,
                            len(st.seeds), len(st.augmented))
        return self.states
