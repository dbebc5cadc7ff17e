"""Synthesis: robust parsing of recorded noisy outputs, rejection sampling, caps, resume, and the real
generation path with a tiny random model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from daar.settings import SynthesisSettings
from daar.synth.backends import GenerationBackend, HFBackend
from daar.synth.domains import Domain, load_domains
from daar.synth.parse import JsonCloseScanner, ParseError, json_complete, parse_samples
from daar.synth.sampler import Synthesizer

# Outputs recorded from small instruct models (shapes we have seen), with what the parser must find.
RECORDED = [
    ('Sure! Here are the samples:\n```json\n[{"instruction": "Add 2 and 3", "input": "", "output": "5"},\n'
     ' {"instruction": "Halve 10", "input": "", "output": "5"},]\n```', 2),
    ('{"Instruction": "Name a fruit", "Input": "", "Output": "Apple"}', 1),
    ('{"question": "What is 2+2?", "answer": "4"} and also {"question": "What is 3+3?", "answer": "6"}', 2),
    ('{"samples": [{"instruction": "Reverse a list", "output": "xs[::-1]"}]}', 1),
    ("Instruction: Explain rain\nInput:\nOutput: Water falls from clouds.\n"
     "Instruction: Explain snow\nOutput: Frozen rain.", 2),
    ('{"instruction": "Say \\"hi\\" {politely}", "input": "", "output": "Hello [there]"}', 1),
]
BROKEN = ["", "I cannot help with that.", '{"instruction": "no output here"}', '[{"instruction": "x", "output": ']


@pytest.mark.parametrize("text,n", RECORDED)
def test_parser_finds_samples_in_noisy_outputs(text, n):
    samples = parse_samples(text)
    assert len(samples) == n
    assert all(s["instruction"] and s["output"] and set(s) == {"instruction", "input", "output"} for s in samples)


@pytest.mark.parametrize("text", [
    'Sure! {"instruction": "Add [1, 2]", "input": "", "output": "say \\"}\\" then {x}"} and more {',
    '[{"a": "]"}, {"b": 2}] trailing',
    'no json here "{" at all',
    '{"nested": {"deep": [1, {"x": "\\\\"}]}, "open": "',
])
def test_incremental_close_scanner_agrees_with_json_complete_on_every_prefix(text):
    # the generation stopper feeds one token's text at a time; it must stop exactly where the
    # whole-text check would, whatever the chunking
    for step in (1, 3, 7):
        scanner, done_at = JsonCloseScanner(), None
        for end in range(step, len(text) + step, step):
            if scanner.feed(text[end - step : end]) and done_at is None:
                done_at = end
        first_true = next((k for k in range(len(text) + 1) if json_complete(text[:k])), None)
        if first_true is None:
            assert done_at is None
        else:  # the scanner notices at the end of the chunk holding the closing bracket
            assert done_at == min(len(text), -(-first_true // step) * step)


@pytest.mark.parametrize("text", BROKEN)
def test_parser_rejects_unusable_outputs_with_a_reason(text):
    with pytest.raises(ParseError):
        parse_samples(text)


class RecordedBackend(GenerationBackend):
    """Replays recorded generations in order (the real interface, fed from a list)."""

    identity = "recorded"

    def __init__(self, outputs):
        self.outputs = list(outputs)
        self.calls = 0

    def generate(self, prompts, *, n=1, temperature=0.9, top_p=0.95, max_new_tokens=512, seed=None, prefix=""):
        out = []
        for _ in prompts:
            self.calls += 1
            out.append([self.outputs.pop(0) if self.outputs else "nothing useful"])
        return out


def _sample(i, verb="do"):
    """A valid JSON sample; another verb gives a near-duplicate (same features, other text)."""
    return json.dumps({"instruction": f"{verb} task number {i}", "input": "", "output": f"answer {i}"})


def _embed(samples):
    """Deterministic features: one-hot by the number in the instruction, so equal numbers are duplicates."""
    feats = np.zeros((len(samples), 64))
    for j, s in enumerate(samples):
        feats[j, int(s["instruction"].split()[-1]) % 64] = 1.0
    return feats


def test_rejection_sampling_accepts_only_dissimilar_samples_and_logs_every_attempt(tmp_path):
    doms = [Domain("a", "first"), Domain("b", "second", examples=[{"instruction": "task 50", "input": "", "output": "x"}])]
    seeds = "[" + ",".join(_sample(i) for i in range(2)) + "]"
    outputs = [seeds, "garbage", _sample(1, "redo"), _sample(7), _sample(7, "redo"), _sample(8)]
    s = SynthesisSettings(synthesis_mode="json", seeds_per_domain=2, samples_per_domain=2, counter_examples=1, max_attempts=20, synth_batch=1,
                      dedup_center=False)
    log_path = tmp_path / "attempts.jsonl"
    states = Synthesizer(doms, RecordedBackend(outputs), _embed, s, 1, log_path).run()
    a = states["a"]
    assert [x["instruction"] for x in a.seeds] == ["do task number 0", "do task number 1"]
    assert [x["instruction"] for x in a.augmented] == ["do task number 7", "do task number 8"]
    assert a.attempts == 6 and not a.capped
    assert states["b"].given and states["b"].attempts == 0
    entries = [json.loads(line) for line in open(log_path) if "round_done" not in line]
    assert [e["accepted"] for e in entries] == [True, False, False, True, False, True]
    assert "no JSON" in entries[1]["error"]
    assert entries[2]["similarity"] == pytest.approx(1.0) and entries[3]["similarity"] == pytest.approx(0.0)
    assert all(e["prompt"] and "raw" in e for e in entries)


def test_centring_removes_a_shared_direction_before_the_threshold(tmp_path):
    """Features with a large common offset: raw cosines are all ~1 (everything rejected); centred, a
    duplicate is still rejected and a new sample accepted."""
    def shifted(samples):
        return _embed(samples) + 10.0

    doms = [Domain("a", "first"), Domain("b", "second", examples=[{"instruction": f"task {i}", "input": "", "output": "x"}
                                                                 for i in (40, 41, 42)])]
    outputs = ["[" + _sample(0) + "," + _sample(1) + "]", _sample(1, "redo"), _sample(9)]
    raw = Synthesizer(doms, RecordedBackend(outputs), shifted,
                      SynthesisSettings(synthesis_mode="json", seeds_per_domain=2, samples_per_domain=1, max_attempts=3, synth_batch=1,
                                        dedup_center=False), 42, tmp_path / "raw.jsonl").run()
    assert raw["a"].augmented == []
    centred = Synthesizer(doms, RecordedBackend(outputs), shifted,
                          SynthesisSettings(synthesis_mode="json", seeds_per_domain=2, samples_per_domain=1, max_attempts=3, synth_batch=1),
                          42, tmp_path / "centred.jsonl").run()
    assert [x["instruction"] for x in centred["a"].augmented] == ["do task number 9"]


def test_a_round_never_accepts_more_than_the_target(tmp_path):
    doms = [Domain("a", "first")]
    outputs = ["[" + _sample(0) + "]", _sample(5), _sample(6), _sample(7), _sample(8)]
    s = SynthesisSettings(synthesis_mode="json", seeds_per_domain=1, samples_per_domain=2, max_attempts=10, synth_batch=4, dedup_center=False)
    states = Synthesizer(doms, RecordedBackend(outputs), _embed, s, 42, tmp_path / "log.jsonl").run()
    assert [x["instruction"] for x in states["a"].augmented] == ["do task number 5", "do task number 6"]
    entries = [json.loads(line) for line in open(tmp_path / "log.jsonl") if "round_done" not in line]
    assert [e["error"] for e in entries[-2:]] == ["not needed: the domain reached its target in this round"] * 2


def test_attempt_cap_stops_a_domain_and_is_reported(tmp_path):
    doms = [Domain("a", "first"), Domain("b", "second")]
    s = SynthesisSettings(synthesis_mode="json", seeds_per_domain=1, samples_per_domain=3, max_attempts=4, synth_batch=2)
    states = Synthesizer(doms, RecordedBackend([]), _embed, s, 42, tmp_path / "log.jsonl").run()
    assert all(st.capped and st.attempts == 4 and not st.samples for st in states.values())


def test_interrupted_synthesis_resumes_to_the_same_samples(tmp_path):
    doms = [Domain("a", "first")]
    outputs = ["[" + _sample(0) + "]", _sample(3), _sample(3, "redo"), _sample(4), _sample(5)]
    s = SynthesisSettings(synthesis_mode="json", seeds_per_domain=1, samples_per_domain=3, counter_examples=1, max_attempts=10, synth_batch=1)
    full = Synthesizer(doms, RecordedBackend(outputs), _embed, s, 42, tmp_path / "full.jsonl").run()
    # keep two complete rounds plus a torn line, as a kill mid-write would leave it
    lines = open(tmp_path / "full.jsonl").read().splitlines(keepends=True)
    done = [i for i, line in enumerate(lines) if "round_done" in line]
    (tmp_path / "cut.jsonl").write_text("".join(lines[: done[1] + 1]) + lines[done[1] + 1][:20])
    backend = RecordedBackend(outputs[2:])
    resumed = Synthesizer(doms, backend, _embed, s, 42, tmp_path / "cut.jsonl").run()
    assert backend.calls == 3
    assert resumed["a"].samples == full["a"].samples and resumed["a"].attempts == full["a"].attempts


def test_generation_path_with_a_tiny_model_logs_and_never_crashes(tiny_llama, tmp_path):
    backend = HFBackend(tiny_llama, dtype="float32", batch_size=4)
    outs = backend.generate([[{"role": "user", "content": "Write JSON"}]] * 2, n=2, max_new_tokens=8, seed=0)
    assert len(outs) == 2 and all(len(o) == 2 and all(isinstance(t, str) for t in o) for o in outs)
    doms = load_domains(None)[:2]
    s = SynthesisSettings(synthesis_mode="json", seeds_per_domain=1, samples_per_domain=1, max_new_tokens=8, max_attempts=2, synth_batch=4)
    states = Synthesizer(doms, backend, _embed, s, 42, tmp_path / "log.jsonl").run()
    entries = [json.loads(line) for line in open(tmp_path / "log.jsonl") if "round_done" not in line]
    assert len(entries) == sum(st.attempts for st in states.values()) == 4
    assert all(e["error"] for e in entries if not e["accepted"])  # random text fails parsing, logged
