"""Two-phase domain synthesis with rejection sampling (METHOD.md steps 1-2).

Phase 1 asks, per domain, for `seeds_per_domain` samples of that domain only (one per prompt). Phase 2
repeatedly shows `counter_examples` random existing samples and asks for one clearly different sample; it is
accepted only if its cosine similarity to every existing sample of the domain is below tau.

Two ways to ask (`synthesis_mode`): json mode wants one instruction/input/output object per reply
(the method's form; strong generators manage it). Two-step mode asks for one plain-text question
(the reply prefilled with a short lead, phase 2 listing existing instructions), then sends each
clean question back as an ordinary user turn and takes the reply as the output: small models that
cannot keep a JSON object valid still write a question, and answer one well. Both modes clean
every text and reject framing-only, echoed, duplicated or question-repeating ones (synth/clean.py).

All active domains are served in one generation batch per step and phase per round (batched
generation is what makes this affordable on a CPU). Every attempt is logged with prompt, raw
output(s), cleaned sample or reason, nearest similarity and verdict; a domain stops at
`samples_per_domain` accepted samples or at `max_attempts`, and the cap is reported.

Resumability: each round uses a seed derived from (seed, round), and a round's log lines are
appended together with an end-of-round marker. A rerun replays the complete rounds of the log and
continues from the next round, so an interrupted run ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from daar.io import atomic_write
from daar.synth.backends import Chat, GenerationBackend
from daar.synth.clean import check_sample, clean_answer, clean_question, normalise
from daar.synth.domains import Domain
from daar.synth.parse import ParseError, parse_samples
from daar.synth.prompts import (
    QUESTION_LEAD,
    answer_prompt,
    augment_prompt,
    json_frame,
    question_frame,
    question_prompt,
    seed_prompt,
)

log = logging.getLogger(__name__)

# The first tokens of a json-mode reply, prefilled so small models start the JSON we ask for.
REPLY_PREFIX = '{"instruction": "'

EmbedFn = Callable[[list[dict[str, str]]], np.ndarray]


class SynthSettings(Protocol):
    """What the sampler reads: the synthesis settings section (defaults are declared there, once)."""

    seeds_per_domain: int
    samples_per_domain: int
    counter_examples: int
    tau: float
    seed_temperature: float
    augment_temperature: float
    answer_temperature: float | None  # two-step answers; None: the phase's temperature
    top_p: float
    synthesis_mode: str  # "two-step" or "json"
    max_new_tokens: int  # json mode
    question_tokens: int  # two-step mode
    answer_tokens: int  # two-step mode
    max_attempts: int
    synth_batch: int
    dedup_center: bool  # centre features on the mean of all samples before the cosine (see _similarity)


@dataclass
class DomainState:
    domain: Domain
    seeds: list[dict[str, str]] = field(default_factory=list)
    augmented: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    augment_attempts: int = 0  # phase-2 attempts: with len(augmented), the domain's phase-2 yield so far
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

    def augment_want(self, s: SynthSettings) -> int:
        """Phase-2 attempts this round may use: the missing samples over the domain's yield so far.

        The yield is (accepted + 1) / (attempts + 2) of its phase-2 attempts (1/2 before the first), so
        a domain one sample short asks for ~2 candidates, not a whole share of the batch; the rest of
        the batch goes to domains that still need many (`_shares`). Never more than the attempt cap."""
        need = s.samples_per_domain - len(self.augmented)
        rate = (len(self.augmented) + 1) / (self.augment_attempts + 2)
        return max(0, min(s.max_attempts - self.attempts, math.ceil(need / rate)))


@dataclass
class Job:
    """One attempt of a round: whose it is, in which phase, and the prompt that asks for it."""

    st: DomainState
    phase: int
    prompt: Chat


def _shares(wants: list[int], capacity: int) -> list[int]:
    """Split `capacity` batch slots: equal shares, none above a domain's want, what a domain leaves
    handed on to those that want more (in domain order, so a round's jobs are deterministic)."""
    shares = [0] * len(wants)
    remaining = capacity
    open_ = [i for i, w in enumerate(wants) if w > 0]
    while remaining > 0 and open_:
        each = max(1, remaining // len(open_))
        for i in list(open_):
            give = min(each, wants[i] - shares[i], remaining)
            shares[i] += give
            remaining -= give
            if shares[i] >= wants[i]:
                open_.remove(i)
            if remaining == 0:
                break
    return shares


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
        self.two_step = settings.synthesis_mode == "two-step"
        frame = question_frame if self.two_step else json_frame
        self.frames = {d.name: frame(d, domains) for d in domains}  # a prompt's own wording, for echo checks
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
        st.augment_attempts += e["phase"] == 2
        if e["accepted"]:
            for sample in e["accepted_samples"]:
                (st.seeds if e["phase"] == 1 else st.augmented).append(sample)
        if st.attempts >= self.s.max_attempts and st.phase(self.s) is not None:
            st.capped = True

    # -- one round -------------------------------------------------------------------------------
    def _jobs(self, rng: random.Random) -> list[Job]:
        """This round's attempts: the missing seeds of phase-1 domains; for phase 2, each domain's share
        of the batch (an equal share each, less for a domain that needs fewer, the rest to the others)."""
        jobs = []
        active = [st for st in self.states.values() if st.phase(self.s) is not None]
        per_domain = max(1, self.s.synth_batch // max(1, len(active)))
        augmenting = [st for st in active if st.phase(self.s) == 2]
        shares = _shares([st.augment_want(self.s) for st in augmenting], per_domain * len(augmenting))
        share = {st.domain.name: n for st, n in zip(augmenting, shares, strict=True)}
        for st in active:
            left = self.s.max_attempts - st.attempts
            phase = st.phase(self.s)
            want = self.s.seeds_per_domain - len(st.seeds) if phase == 1 else share[st.domain.name]
            for _ in range(min(want, left)):
                k = min(self.s.counter_examples, len(st.samples))
                shown = rng.sample(st.samples, k) if phase == 2 else []
                if self.two_step:
                    prompt = question_prompt(st.domain, self.domains, [x["instruction"] for x in shown])
                elif phase == 1:
                    prompt = seed_prompt(st.domain, self.domains)
                else:
                    prompt = augment_prompt(st.domain, self.domains, shown)
                jobs.append(Job(st, phase, prompt))
        return jobs

    def _generate(self, jobs: list[Job], chats: list[Chat], rng: random.Random, max_new_tokens: int,
                  prefix: str, temperature: float | None = None) -> list[str]:
        """One reply per chat, all domains in one generate() call per phase (the phases sample at their
        own temperatures, so only a round that mixes phases makes two calls). `temperature`, where given,
        replaces both phases' (the two-step answers' own setting)."""
        by_phase: dict[int, list[int]] = {}
        for i, job in enumerate(jobs):
            by_phase.setdefault(job.phase, []).append(i)
        outputs: list[str] = [""] * len(jobs)
        for phase, idx in sorted(by_phase.items()):
            temp = self.s.seed_temperature if phase == 1 else self.s.augment_temperature
            temp = temp if temperature is None else temperature
            gen = self.backend.generate([chats[i] for i in idx], n=1, temperature=temp, top_p=self.s.top_p,
                                        max_new_tokens=max_new_tokens, seed=rng.randrange(2**31), prefix=prefix)
            for i, outs in zip(idx, gen, strict=True):
                outputs[i] = outs[0] if outs else ""
        return outputs

    def _round(self, r: int) -> list[dict]:
        rng = random.Random(f"{self.seed}-{r}")
        jobs = self._jobs(rng)
        return self._two_step_round(r, rng, jobs) if self.two_step else self._json_round(r, rng, jobs)

    def _entry(self, r: int, job: Job, **raw: str | None) -> dict:
        return {"round": r, "domain": job.st.domain.name, "phase": job.phase, "mode": self.s.synthesis_mode,
                "prompt": job.prompt[-1]["content"], **raw, "parsed": None, "error": None, "similarity": None,
                "accepted": False, "accepted_samples": []}

    def _known(self) -> set[str]:
        """Normalised instructions of every sample so far: a new one must not repeat any of them."""
        return {normalise(x["instruction"]) for st in self.states.values() for x in st.samples}

    def _json_round(self, r: int, rng: random.Random, jobs: list[Job]) -> list[dict]:
        """One JSON reply per attempt, parsed, cleaned, then judged."""
        outputs = self._generate(jobs, [j.prompt for j in jobs], rng, self.s.max_new_tokens, REPLY_PREFIX)
        entries = []
        for job, raw in zip(jobs, outputs, strict=True):
            entry = self._entry(r, job, raw=raw)
            try:
                parsed = parse_samples(raw)
            except ParseError as exc:
                parsed, entry["error"] = [], str(exc)
            known, fresh, reasons = self._known(), [], []
            for sample in parsed:
                cleaned, reason = check_sample(sample, prompt=self.frames[job.st.domain.name], existing=known)
                if reason is None:
                    fresh.append(cleaned)
                    known.add(normalise(cleaned["instruction"]))
                else:
                    reasons.append(reason)
            if parsed and not fresh:
                entry.update(parsed=parsed if job.phase == 1 else parsed[0], error=reasons[0])
            elif fresh:
                self._judge(entry, job, fresh, parsed=fresh if job.phase == 1 else fresh[0])
            entries.append(entry)
            self._apply(entry)
        return entries

    def _two_step_round(self, r: int, rng: random.Random, jobs: list[Job]) -> list[dict]:
        """Questions for every attempt in one batch; the clean ones are answered in a second batch."""
        raw_questions = self._generate(jobs, [j.prompt for j in jobs], rng, self.s.question_tokens,
                                       QUESTION_LEAD)
        known, verdicts = self._known(), []
        for job, raw in zip(jobs, raw_questions, strict=True):
            verdict = clean_question(raw, lead=QUESTION_LEAD, prompt=self.frames[job.st.domain.name],
                                     existing=known)
            if verdict.ok:
                known.add(normalise(verdict.text))  # two attempts of one round must not ask the same question
            verdicts.append(verdict)
        asked = [i for i, v in enumerate(verdicts) if v.ok]
        answers = self._generate([jobs[i] for i in asked], [answer_prompt(verdicts[i].text) for i in asked],
                                 rng, self.s.answer_tokens, "", temperature=self.s.answer_temperature)
        raw_answers = dict(zip(asked, answers, strict=True))
        entries = []
        for i, (job, question) in enumerate(zip(jobs, verdicts, strict=True)):
            entry = self._entry(r, job, raw_question=raw_questions[i], raw_answer=raw_answers.get(i))
            if not question.ok:
                entry["error"] = question.reason
            else:
                answer = clean_answer(raw_answers[i], question=question.text)
                sample = {"instruction": question.text, "input": "", "output": answer.text}
                if answer.ok:
                    self._judge(entry, job, [sample], parsed=sample)
                else:
                    entry.update(parsed=sample, error=answer.reason)
            entries.append(entry)
            self._apply(entry)
        return entries

    def _judge(self, entry: dict, job: Job, candidates: list[dict[str, str]], parsed: object) -> None:
        """Accept clean candidates: phase 1 up to the missing seeds, phase 2 one that is below tau."""
        st = job.st
        entry["parsed"] = parsed
        if st.phase(self.s) != job.phase:  # an earlier attempt of this round already reached the target
            entry["error"] = "not needed: the domain reached its target in this round"
        elif job.phase == 1:
            fresh = candidates[: self.s.seeds_per_domain - len(st.seeds)]
            entry.update(accepted=True, accepted_samples=fresh)
        else:
            cand = candidates[0]
            sim = self._similarity(st, cand)
            ok = sim < st.domain.threshold(self.s.tau)
            entry.update(similarity=round(sim, 6), accepted=ok, accepted_samples=[cand] if ok else [])

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
