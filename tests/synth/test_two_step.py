"""Two-step synthesis: question, then answer as an ordinary chat turn; batching per step, the attempt
log, resume, determinism, the stage fingerprint, and the real generation path with a tiny model."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np

from daar.method.synthesis import Synthesis
from daar.settings import SynthesisSettings
from daar.synth.backends import GenerationBackend, HFBackend
from daar.synth.domains import Domain, load_domains
from daar.synth.prompts import QUESTION_LEAD
from daar.synth.sampler import Synthesizer

DOMS = [Domain("a", "first things"), Domain("b", "second things")]


def two_step(**kw) -> SynthesisSettings:
    base = {"synthesis_mode": "two-step", "seeds_per_domain": 2, "samples_per_domain": 2, "counter_examples": 2,
            "max_attempts": 12, "synth_batch": 4, "dedup_center": False, "question_tokens": 12, "answer_tokens": 20}
    return SynthesisSettings(**{**base, **kw})


def _embed(samples):
    """One-hot by the first number in the instruction: equal numbers are near-duplicates."""
    feats = np.zeros((len(samples), 64))
    for j, s in enumerate(samples):
        feats[j, int(re.search(r"\d+", s["instruction"]).group()) % 64] = 1.0
    return feats


class ScriptedBackend(GenerationBackend):
    """Questions and answers from two queues; records every call (prompts, prefix, length)."""

    identity = "scripted"

    def __init__(self, questions, answers):
        self.questions, self.answers, self.calls = list(questions), list(answers), []

    def generate(self, prompts, *, n=1, temperature=0.9, top_p=0.95, max_new_tokens=512, seed=None, prefix=""):
        self.calls.append({"prompts": prompts, "prefix": prefix, "max_new_tokens": max_new_tokens,
                           "temperature": temperature})
        queue = self.questions if prefix else self.answers
        return [[prefix + (queue.pop(0) if queue else "")] for _ in prompts]


class HashBackend(GenerationBackend):
    """Replies that depend only on (seed, position, prompt), like a seeded model, so reruns can be compared."""

    identity = "hash"

    def __init__(self):
        self.calls = 0

    def generate(self, prompts, *, n=1, temperature=0.9, top_p=0.95, max_new_tokens=512, seed=None, prefix=""):
        self.calls += 1
        out = []
        for j, chat in enumerate(prompts):
            h = int(hashlib.sha256(f"{seed}-{j}-{chat[-1]['content']}".encode()).hexdigest(), 16)
            text = f'How would you handle case number {h % 23}?" and then chatter' if prefix else f"Carefully, {h % 7}."
            out.append([prefix + text])
        return out


def _entries(path):
    return [json.loads(line) for line in open(path) if "round_done" not in line]


def test_two_step_asks_then_answers_in_one_batch_per_step_and_logs_every_attempt(tmp_path):
    questions = ['Why do task 1?"', 'Sure! Here is a question: "Why do task 2?"', 'Why do task 3?"',
                 "I'm ready to assist.", 'Why redo task 1?"', 'Why do task 7?"', 'Why do task 8?"', 'Why do task 9?"']
    answers = ["Because of 1.", "Because of 2.", "Because of 3.", "Redone.", "Why do task 7?", "Because of 8.",
               "Because of 9."]
    backend = ScriptedBackend(questions, answers)
    s = two_step()
    states = Synthesizer(DOMS[:1] + [Domain("b", "x", examples=[{"instruction": "task 50", "input": "", "output": "y"}])],
                         backend, _embed, s, 3, tmp_path / "log.jsonl").run()
    a = states["a"]
    assert [x["instruction"] for x in a.seeds] == ["Why do task 1?", "Why do task 2?"]
    assert a.seeds[0] == {"instruction": "Why do task 1?", "input": "", "output": "Because of 1."}
    assert [x["instruction"] for x in a.augmented] == ["Why do task 3?", "Why do task 8?"]
    # round 0: one question call (2 seeds), one answer call; every later round the same pair
    assert [(len(c["prompts"]), c["prefix"], c["max_new_tokens"]) for c in backend.calls[:2]] == [
        (2, QUESTION_LEAD, 12), (2, "", 20)]
    assert backend.calls[1]["prompts"][0] == [{"role": "user", "content": "Why do task 1?"}]
    entries = _entries(tmp_path / "log.jsonl")
    # 2 seeds + 4 phase-2 candidates (two missing at the prior yield of 1/2) + 3 (one missing, 1 of 4 accepted:
    # a yield of (1 + 1) / (4 + 2))
    assert len(entries) == a.attempts == 9
    assert a.augment_attempts == 7
    assert all({"prompt", "raw_question", "raw_answer", "parsed", "error", "similarity", "accepted"} <= set(e)
               for e in entries)
    verdicts = [(e["accepted"], e["error"]) for e in entries]
    assert verdicts[2] == (True, None)  # "Why do task 3?": a phase-2 candidate unlike both seeds
    assert "not a question" in verdicts[3][1] and entries[3]["raw_answer"] is None  # never answered
    assert verdicts[4][0] is False and entries[4]["similarity"] == 1.0  # "redo task 1": too similar
    assert verdicts[5][1] == "answer repeats the question"
    assert verdicts[6:] == [(True, None), (False, "not needed: the domain reached its target in this round"),
                            (False, "empty question")]


def test_phase_two_lists_existing_instructions_only(tmp_path):
    backend = ScriptedBackend(['Why do task 1?"', 'Why do task 2?"', 'Why do task 3?"'],
                              ["SECRET ANSWER one.", "SECRET ANSWER two.", "Fine."])
    Synthesizer(DOMS[:1], backend, _embed, two_step(samples_per_domain=1), 0, tmp_path / "log.jsonl").run()
    phase2 = backend.calls[2]["prompts"][0][-1]["content"]
    assert "- Why do task 1?" in phase2 and "- Why do task 2?" in phase2 and "SECRET" not in phase2


def test_two_questions_of_one_round_are_never_the_same(tmp_path):
    backend = ScriptedBackend(['Why do task 1?"', 'why do TASK 1?"', 'Why do task 2?"'], ["One.", "Two.", "Three."])
    states = Synthesizer(DOMS[:1], backend, _embed, two_step(samples_per_domain=1, max_attempts=3), 0,
                         tmp_path / "log.jsonl").run()
    assert [e["error"] for e in _entries(tmp_path / "log.jsonl")][:2] == [None, "duplicate of an existing sample"]
    assert [x["instruction"] for x in states["a"].seeds] == ["Why do task 1?", "Why do task 2?"]


def test_interrupted_two_step_synthesis_resumes_to_the_same_samples(tmp_path):
    s = two_step(seeds_per_domain=3, samples_per_domain=4, max_attempts=30, tau=0.5)
    full = Synthesizer(DOMS, HashBackend(), _embed, s, 5, tmp_path / "full.jsonl").run()
    lines = open(tmp_path / "full.jsonl").read().splitlines(keepends=True)
    done = [i for i, line in enumerate(lines) if "round_done" in line]
    assert len(done) >= 3
    (tmp_path / "cut.jsonl").write_text("".join(lines[: done[1] + 1]) + lines[done[1] + 1][:25])  # torn line
    backend = HashBackend()
    resumed = Synthesizer(DOMS, backend, _embed, s, 5, tmp_path / "cut.jsonl").run()
    assert backend.calls < 2 * len(done)  # the first two rounds were replayed, not generated
    for name in ("a", "b"):
        assert resumed[name].samples == full[name].samples and resumed[name].attempts == full[name].attempts
    assert open(tmp_path / "cut.jsonl").read() == open(tmp_path / "full.jsonl").read()


def test_new_settings_reach_the_synthesis_fingerprint():
    def fp(**kw):
        return Synthesis(domains=tuple(DOMS), settings=SynthesisSettings(**kw), seed=0, generator=None,
                         dedup=None).fingerprint

    base = fp()
    changed = [fp(synthesis_mode="json"), fp(question_tokens=32), fp(answer_tokens=512), fp(synthesis_chains=3),
               fp(answer_temperature=0.0), fp(answer_temperature=0.5)]
    assert len({base, *changed}) == 7
    assert fp() == base


def test_two_step_with_a_tiny_model_is_deterministic_logs_and_never_crashes(tiny_llama, tmp_path):
    backend = HFBackend(tiny_llama, dtype="float32", batch_size=4)
    doms = load_domains(None)[:2]
    s = two_step(seeds_per_domain=1, samples_per_domain=1, max_attempts=3, question_tokens=8, answer_tokens=8)
    runs = []
    for name in ("one", "two"):
        states = Synthesizer(doms, backend, _embed_any, s, 42, tmp_path / f"{name}.jsonl").run()
        runs.append(({n: st.samples for n, st in states.items()}, _entries(tmp_path / f"{name}.jsonl")))
    (samples, entries), (samples2, entries2) = runs
    assert samples == samples2 and entries == entries2  # same seed, same samples and log
    assert len(entries) == sum(st.attempts for st in states.values())
    assert all(e["accepted"] or e["error"] for e in entries)
    assert all(e["raw_question"].startswith(QUESTION_LEAD) for e in entries)
    assert all((e["raw_answer"] is None) == (e["parsed"] is None) for e in entries)


def _embed_any(samples):
    """Features for arbitrary text: a hashed bag of characters."""
    feats = np.zeros((len(samples), 32))
    for j, s in enumerate(samples):
        for ch in s["instruction"] + s["output"]:
            feats[j, ord(ch) % 32] += 1.0
    return feats


def test_batch_shares_follow_what_each_domain_still_needs():
    from daar.synth.sampler import _shares

    # equal shares of 64, a domain that wants 2 takes 2 and the others split what it leaves
    assert _shares([2, 30, 30, 30], 64) == [2, 21, 21, 20]
    assert _shares([1, 1], 8) == [1, 1]  # nobody is given attempts it does not need: the batch runs smaller
    assert _shares([0, 5], 4) == [0, 4]
    assert _shares([3, 3, 3], 4) == [2, 1, 1]  # fewer slots than domains want: in domain order
    assert sum(_shares([7, 9, 40], 32)) == 32


class CountingBackend(GenerationBackend):
    """A new, distinct question every time (every candidate is accepted), a plain answer."""

    identity = "counting"

    def __init__(self):
        self.n, self.calls = 0, []

    def generate(self, prompts, *, n=1, temperature=0.9, top_p=0.95, max_new_tokens=512, seed=None, prefix=""):
        self.calls.append(len(prompts))
        out = []
        for _ in prompts:
            self.n += 1
            out.append([prefix + (f'Why is item {self.n}?"' if prefix else "Because it is.")])
        return out


def test_a_domain_asks_only_for_what_it_is_missing_over_its_yield(tmp_path):
    s = two_step(seeds_per_domain=1, samples_per_domain=3, synth_batch=16, max_attempts=50)
    states = Synthesizer(DOMS, CountingBackend(), _embed, s, 0, tmp_path / "log.jsonl").run()
    entries = _entries(tmp_path / "log.jsonl")
    # round 1: 3 missing at the prior yield of 1/2 -> 6 candidates each (not the equal share of 8)
    assert [sum(e["round"] == 1 and e["domain"] == d for e in entries) for d in ("a", "b")] == [6, 6]
    assert all(len(st.augmented) == 3 and st.attempts == 7 for st in states.values())
    assert max(e["round"] for e in entries) == 1


class NumberDedup:
    """Stands in for the dedup extractor: one-hot by the first number in each rendered text."""

    fingerprint = "numbers"
    show_progress = False

    def __init__(self):
        from daar.data.render import Renderer

        self.renderer = Renderer()

    def __call__(self, texts):
        return _embed([{"instruction": t} for t in texts])


def _synthesis(tmp_path, chains: int, side_by_side: int = 1):
    from daar.method.stage import StageRunner, StageStore
    from daar.method.synthesis import LazyGenerator

    s = two_step(seeds_per_domain=2, samples_per_domain=3, max_attempts=40, tau=0.5, synthesis_chains=chains)
    stage = Synthesis(domains=tuple(DOMS), settings=s, seed=7, dedup=NumberDedup(),
                      generator=LazyGenerator("hash", HashBackend, concurrency=side_by_side))
    store = StageStore(tmp_path / f"stages{chains}-{side_by_side}")
    return StageRunner(store).run(stage).meta, store.workdir(stage)


def test_independent_chains_pool_their_samples_and_chain_zero_is_the_single_synthesis(tmp_path):
    from daar.method.synthesis import chain_seed

    assert chain_seed(42, 0) == 42 and len({chain_seed(42, 1), chain_seed(42, 2), chain_seed(43, 1)}) == 3
    one, _ = _synthesis(tmp_path, 1)
    two, workdir = _synthesis(tmp_path, 2)
    assert sorted(p.name for p in workdir.glob("attempts*.jsonl")) == ["attempts-chain1.jsonl", "attempts.jsonl"]
    chain1 = {"a": [], "b": []}
    for e in _entries(workdir / "attempts-chain1.jsonl"):
        chain1[e["domain"]] += [(e["phase"], x) for x in e["accepted_samples"]]
    for name in ("a", "b"):
        n_seeds = 2
        single_seeds, single_aug = one["samples"][name][:n_seeds], one["augmented"][name]
        other_seeds = [x for p, x in chain1[name] if p == 1]
        other_aug = [x for p, x in chain1[name] if p == 2]
        assert other_seeds + other_aug != single_seeds + single_aug  # chain 1 drew from its own seed
        # seeds of both chains first, then both chains' phase-2 samples; chain 0 exactly the single synthesis
        assert two["samples"][name] == single_seeds + other_seeds + single_aug + other_aug
        assert two["augmented"][name] == single_aug + other_aug
        assert two["phases"][name] == [1] * 4 + [2] * 6
        summary = next(x for x in two["summary"] if x["domain"] == name)
        assert (summary["seeds"], summary["augmented"]) == (4, 6)
        assert summary["attempts"] == sum(c["attempts"] for c in summary["chains"])


def test_chains_side_by_side_give_exactly_the_samples_and_logs_of_chains_one_by_one(tmp_path):
    one_by_one, dir1 = _synthesis(tmp_path, 3)
    side_by_side, dir2 = _synthesis(tmp_path, 3, side_by_side=2)
    assert side_by_side == {**one_by_one, "attempt_log": str(dir2 / "attempts.jsonl")}
    for name in ("attempts.jsonl", "attempts-chain1.jsonl", "attempts-chain2.jsonl"):
        assert (dir2 / name).read_text() == (dir1 / name).read_text()


def test_a_lazy_generator_is_built_once_by_chains_racing_for_it():
    import threading

    from daar.method.synthesis import LazyGenerator

    built, gate = [], threading.Barrier(4, timeout=10)

    def factory():
        built.append(1)
        return HashBackend()

    lazy = LazyGenerator("hash", factory, concurrency=4)
    seen = []

    def take():
        gate.wait()
        seen.append(lazy.backend)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len({id(b) for b in seen}) == 1


def test_real_model_chains_side_by_side_match_chains_one_by_one(tiny_llama, tmp_path):
    """The real path: one HFBackend and one dedup extractor shared by two chains running at once."""
    from daar.features.extract import FeatureExtractor
    from daar.method.stage import StageRunner, StageStore
    from daar.method.synthesis import LazyGenerator

    backend = HFBackend(tiny_llama, dtype="float32", batch_size=4)
    s = two_step(seeds_per_domain=1, samples_per_domain=1, max_attempts=4, question_tokens=8, answer_tokens=8,
                 synthesis_chains=2, tau=0.99)
    metas, logs = [], []
    for side_by_side in (1, 2):
        dedup = FeatureExtractor(model=tiny_llama, layer=1, dtype="float32")
        stage = Synthesis(domains=tuple(load_domains(None)[:2]), settings=s, seed=3, dedup=dedup,
                          generator=LazyGenerator("tiny", lambda: backend, concurrency=side_by_side))
        store = StageStore(tmp_path / f"stages-{side_by_side}")
        meta = StageRunner(store).run(stage).meta
        metas.append({k: v for k, v in meta.items() if k != "attempt_log"})
        logs.append([(store.workdir(stage) / n).read_text() for n in ("attempts.jsonl", "attempts-chain1.jsonl")])
    assert metas[0] == metas[1] and logs[0] == logs[1]
    assert all(log.count("round_done") >= 1 for log in logs[1])


def test_answers_sample_at_their_own_temperature_and_questions_at_their_phases(tmp_path):
    def temperatures(**kw):
        questions = [f'Why do task {i}?"' for i in range(1, 20)]
        backend = ScriptedBackend(questions, [f"Because of {i}." for i in range(1, 20)])
        s = two_step(seed_temperature=0.7, augment_temperature=0.8, **kw)
        Synthesizer(DOMS[:1], backend, _embed, s, 3, tmp_path / f"log-{len(kw)}.jsonl").run()
        asked = [(c["prefix"] != "", c["temperature"]) for c in backend.calls]
        return [t for q, t in asked if q], [t for q, t in asked if not q]

    questions, answers = temperatures()  # unset: an answer samples at its phase's temperature, as before
    assert questions == answers and questions[0] == 0.7 and set(questions[1:]) == {0.8}
    questions, answers = temperatures(answer_temperature=0.0)
    assert questions[0] == 0.7 and set(questions[1:]) == {0.8}  # the questions are untouched
    assert answers and set(answers) == {0.0}
