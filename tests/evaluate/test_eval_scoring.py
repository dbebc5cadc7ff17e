"""Answer extraction and metrics of the text benchmarks, on hand-made model outputs."""

from __future__ import annotations

import pytest

from daar.evaluate import scoring
from daar.evaluate.mathnorm import extract_math_answer, math_equal, normalize_math

GSM_DOC = {"question": "q", "answer": "She makes 9 * 2 = <<9*2=18>>18 dollars.\n#### 18", "daar_row": 7}


def test_gsm8k_correct_answer_scores_one():
    details: dict = {}
    out = scoring.score_gsm8k(GSM_DOC, ["She sells 16 - 3 - 4 = 9 eggs. 9 * 2 = 18. The answer is 18."], details)
    assert out == {"exact_match": 1.0}
    assert details[7] == {"extracted": "18", "gold": "18", "correct": True}


def test_gsm8k_wrong_answer_scores_zero():
    assert scoring.score_gsm8k(GSM_DOC, ["16 - 3 = 13. The answer is 13."]) == {"exact_match": 0.0}
    assert scoring.score_gsm8k(GSM_DOC, ["I do not know."]) == {"exact_match": 0.0}


@pytest.mark.parametrize("text,want", [
    ("The answer is $1,000.", "1000"),
    ("so 7 + 11 = 18 dollars", "18"),  # no "The answer is": the last number
    ("The answer is 18. Question: what is 5 + 5? The answer is 10.", "18"),  # the next question is cut off
    ("The answer is -3.5.", "-3.5"),
])
def test_gsm8k_extraction(text, want):
    assert scoring.extract_gsm8k_answer(text) == want


def test_gsm8k_numbers_compare_by_value():
    assert scoring.numbers_equal("18.00", "18")
    assert scoring.gsm8k_gold("x\n#### 1,000") == "1000"
    assert not scoring.numbers_equal(None, "18")


@pytest.mark.parametrize("generation,answers,ok", [
    (" The Eiffel Tower.", ["Eiffel Tower"], True),  # article, punctuation, case
    (" paris\nQuestion: next", ["Paris, France", "Paris"], True),  # first line only, any answer
    (" The answer is: William Shakespeare", ["william shakespeare"], True),
    (" London", ["Paris"], False),
    (" Paris is the capital", ["Paris"], False),  # exact match, not containment
])
def test_qa_exact_match_with_normalisation(generation, answers, ok):
    assert scoring.qa_exact_match(generation, answers) is ok


def test_nq_and_triviaqa_scorers_read_their_answer_fields():
    assert scoring.score_nq({"question": "q", "answer": ["Mars"]}, [" mars"]) == {"exact_match": 1.0}
    assert scoring.score_triviaqa({"question": "q", "golden_answers": ["Mars", "Red Planet"]},
                                  [" the red planet."]) == {"exact_match": 1.0}
    assert scoring.score_triviaqa({"question": "q", "golden_answers": ["Mars"]}, [" Venus"]) == {"exact_match": 0.0}


MATH_DOC = {"problem": "p", "solution": "Thus $\\frac{a}{b} = \\boxed{-\\frac{2}{3}}$."}


def test_math_boxed_answer_is_scored_after_normalisation():
    gen = "We find $a/b = -\\dfrac{2}{3}$, so the result is $\\boxed{-\\dfrac23}$."
    assert scoring.score_math(MATH_DOC, [gen]) == {"exact_match": 1.0}
    final = "...\nFinal Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct."
    assert scoring.score_math(MATH_DOC, [final]) == {"exact_match": 1.0}
    assert scoring.score_math(MATH_DOC, ["The final answer is $\\frac{2}{3}$."]) == {"exact_match": 0.0}
    assert scoring.score_math(MATH_DOC, ["no answer here"]) == {"exact_match": 0.0}


def test_math_final_answer_statement_forms():
    assert extract_math_answer("Final Answer: The final answer is $\\$15,\\!000$. I hope it is correct.") == \
        "\\$15,\\!000"
    assert math_equal("\\$15,\\!000", "15000")
    # a prose "The final answer is positive" in a solution does not hide its boxed answer
    assert extract_math_answer("so $\\boxed{\\frac{130}{231}}$. The final answer is positive, because ...") == \
        "\\frac{130}{231}"


@pytest.mark.parametrize("a,b", [("\\frac12", "0.5"), ("x = 5", "5"), ("5 \\text{ cm}", "5"), ("\\$1,000", "1000"),
                                 ("90^\\circ", "90"), ("\\left(2, 5\\right)", "(2,5)"), ("\\sqrt3", "\\sqrt{3}"),
                                 ("3/4", "\\tfrac{3}{4}"), ("10\\%", "10")])
def test_math_equivalent_forms(a, b):
    assert math_equal(a, b), (normalize_math(a), normalize_math(b))


def test_math_extraction_handles_nested_braces():
    assert extract_math_answer("so $\\boxed{\\frac{1}{\\sqrt{2}}}$") == "\\frac{1}{\\sqrt{2}}"
    assert extract_math_answer(MATH_DOC["solution"], boxed_only=True) == "-\\frac{2}{3}"
    assert not math_equal("2", "3")


def test_hellaswag_pick_prefers_the_best_loglikelihood():
    lls = [-12.0, -4.5, -9.0, -30.0]
    assert scoring.hellaswag_pick(lls) == 1
    # per token (lowest perplexity): ending 3 is long but has the lowest loss per token
    assert scoring.hellaswag_pick(lls, [2, 1, 3, 20]) == 3


def test_hellaswag_scorer_reports_sum_char_and_token_normalised_accuracy():
    doc = {"activity_label": "a", "ctx": "c", "label": 3, "endings": ["x", "yy", "zzz", "a much longer ending"]}
    results = [(-12.0, False), (-4.5, True), (-9.0, False), (-30.0, False)]
    details: dict = {}
    out = scoring.score_hellaswag({**doc, "daar_row": 0}, results, details,
                                  count_tokens=lambda text: {" x": 2, " yy": 1, " zzz": 3}.get(text, 20))
    assert out == {"acc": 0.0, "acc_norm": 1.0, "acc_ppl": 1.0}
    assert details[0]["picks"] == {"acc": 1, "acc_norm": 3, "acc_ppl": 3}


def test_mmlu_scorer_reads_the_letter_and_scores_the_answer_texts():
    doc = {"subject": "x", "question": "q", "choices": ["a", "bb", "ccc", "dddd"], "answer": "C", "daar_row": 4}
    assert scoring.mmlu_target(doc) == 2 and scoring.mmlu_target({**doc, "answer": 1}) == 1
    details: dict = {}
    out = scoring.score_mmlu(doc, [(-9.0, False), (-8.0, False), (-3.0, True), (-20.0, False)], details)
    assert out == {"acc": 1.0, "acc_norm": 1.0, "acc_ppl": 1.0}
    assert details[4]["gold"] == 2
    wrong = scoring.score_mmlu({**doc, "answer": "A"}, [(-9.0, False), (-8.0, False), (-3.0, True), (-20.0, False)])
    assert wrong == {"acc": 0.0, "acc_norm": 0.0, "acc_ppl": 0.0}
