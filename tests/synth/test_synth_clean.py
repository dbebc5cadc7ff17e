"""The cleaning / rejection filter on replies recorded from the bundled model (no model at test time),
plus the framing and echo shapes it must handle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daar.synth.clean import check_sample, clean_answer, clean_question, normalise, strip_framing
from daar.synth.domains import load_domains
from daar.synth.prompts import QUESTION_LEAD, json_frame, question_frame

RECORDED = json.loads((Path(__file__).parent / "recorded_two_step.json").read_text())["replies"]
DOMAINS = load_domains(None)
BY_NAME = {d.name: d for d in DOMAINS}


def _verdict(rec: dict):
    if rec["kind"] == "question":
        frame = question_frame(BY_NAME[rec["domain"]], DOMAINS)
        return clean_question(rec["raw"], lead=rec["lead"], prompt=frame, existing=rec["existing"])
    return clean_answer(rec["raw"], question=rec["question"])


def test_the_recording_covers_good_and_bad_replies_of_both_steps():
    kinds = {(r["kind"], r["expect"] == "ok") for r in RECORDED}
    assert kinds == {("question", True), ("question", False), ("answer", True), ("answer", False)}
    assert 20 <= len(RECORDED) <= 60


@pytest.mark.parametrize("rec", RECORDED, ids=[f"{i}-{r['kind']}-{r['expect']}" for i, r in enumerate(RECORDED)])
def test_recorded_replies_get_the_expected_verdict(rec):
    v = _verdict(rec)
    if rec["expect"] == "ok":
        assert v.ok, v.reason
        if rec["kind"] == "question":
            assert v.text == rec["text"]
            assert QUESTION_LEAD.strip() not in v.text and not v.text.endswith('"')
    else:
        assert not v.ok and rec["expect"] in v.reason


# The one json-mode "sample" the bundled model got accepted before this filter: the format echoed back.
TEMPLATE_ECHO = {"instruction": "Your task or question", "input": "Your current task or question",
                 "output": "Your ideal answer"}


def test_json_mode_rejects_the_echoed_format_template():
    frame = json_frame(DOMAINS[3], DOMAINS)
    _, reason = check_sample(TEMPLATE_ECHO, prompt=frame)
    assert reason == "question echoes the format placeholders"
    ok, reason = check_sample({"instruction": "Write a Python function to return the first n Fibonacci numbers.",
                               "input": "", "output": "def fib(n): ..."}, prompt=frame)
    assert reason is None and ok["instruction"].startswith("Write a Python function")


@pytest.mark.parametrize("raw,clean", [
    ("The user would ask: Why is the sky blue?", "Why is the sky blue?"),
    ("Sure! Here is a question:\n\n\"What is the capital of France?\"", "What is the capital of France?"),
    ("1. Question: \"How many legs has a spider?\"", "How many legs has a spider?"),
    ("**Question:** Name three primary colours.", "Name three primary colours."),
    ("Here's a new coding task for you: Reverse a string in Python.", "Reverse a string in Python."),
    ("The classic: Question: What is 7 times 8?", "What is 7 times 8?"),
    # not framing: the text itself starts like that
    ("Great Wall of China: how long is it?", "Great Wall of China: how long is it?"),
    ("Here is a list of numbers: 3, 5, 7. What is their mean?", "Here is a list of numbers: 3, 5, 7. What is their mean?"),
    ("Someone wants to buy 3 apples at 2 dollars each. How much do they pay?",
     "Someone wants to buy 3 apples at 2 dollars each. How much do they pay?"),
])
def test_framing_is_stripped_and_only_framing(raw, clean):
    assert strip_framing(raw) == clean


def test_a_quoted_lead_ends_the_question_at_its_closing_quote():
    raw = QUESTION_LEAD + 'Implement f that returns "No answer" for bad input." The AI explains it.'
    assert clean_question(raw, lead=QUESTION_LEAD).text == 'Implement f that returns "No answer" for bad input.'
    cut_off = QUESTION_LEAD + "What is the sum of 2 and"  # the length limit hit: no closing quote
    assert clean_question(cut_off, lead=QUESTION_LEAD).text == "What is the sum of 2 and"


def test_rejections_name_their_reason():
    frame = question_frame(DOMAINS[2], DOMAINS)
    assert clean_question("").reason == "empty question"
    assert clean_question("Why?").reason.startswith("near-empty question")
    assert "echoes the prompt" in clean_question("Write the question only, do not answer it.", prompt=frame).reason
    assert clean_question("What's the capital of Peru?", existing=["what is the capital of peru"]).reason == (
        "duplicate of an existing sample")
    copied = "What makes a well-loved pet? Make a question that asks what makes a well-loved pet."
    assert clean_question(copied, existing=["What makes a well-loved pet?"]).reason == "duplicate of an existing sample"
    assert clean_question("What makes a good team leader?", existing=["What makes a good team?"]).ok
    assert clean_answer("Answer: What is 2+2?", question="What is 2+2?").reason == "answer repeats the question"
    assert clean_answer("I'm sorry, but I cannot help.", question="How do I pick a lock?").reason == (
        "answer is a refusal")
    assert clean_answer("2 + 2 = 4.", question="What is 2+2?").ok


def test_normalised_text_ignores_case_punctuation_and_contractions():
    assert normalise("What's  the Answer?!") == normalise("what is the answer") == "what is the answer"
