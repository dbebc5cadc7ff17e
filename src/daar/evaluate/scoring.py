"""Prompts and scorers for the text benchmarks (NQ, TriviaQA, GSM8K, MATH, HellaSwag, MMLU).

The task YAML files under `tasks/` point at these functions (`!function daar.evaluate.scoring.X`),
so lm-evaluation-harness builds the prompts, runs the model and logs every sample, while the
answer extraction and the metric are ours: small pure functions the tests pin on hand-made
outputs. Metric conventions follow the paper's OpenCompass 0.3.3 configs:

- NQ / TriviaQA: first line of the generation (the part after "answer is" when present),
  SQuAD normalisation (lower case, no punctuation, no articles, single spaces), exact match
  against any gold alias.
- GSM8K: the number after the last "The answer is", else the last number in the generation;
  numeric equality with the number after "####".
- MATH: the "final answer is ..." statement, else the last \\boxed{...}; both sides normalised
  (see `normalize_math`), then string equality or numeric equality.
- HellaSwag: the ending with the lowest perplexity wins (`acc_ppl`: log-likelihood per ending
  token); `acc` (sum log-likelihood) and `acc_norm` (per character) are reported beside it.
- MMLU (out-of-distribution check): the same three rules over the four answer texts (cloze form,
  0-shot). A 135M model sits at chance on the lettered form, so the letter would measure nothing;
  the answer texts' likelihood is where small models score above chance.

Every `score_*` function has lm-eval's `process_results(doc, results)` signature and returns
{metric: value}; given `details`, it also records what it extracted under the doc's row index so
the runner can write it next to the raw generation.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from typing import Any

from daar.evaluate.mathnorm import extract_math_answer, math_equal, normalize_math

__all__ = ["normalize_answer", "qa_prediction", "qa_exact_match", "extract_gsm8k_answer", "gsm8k_gold",
           "numbers_equal", "extract_math_answer", "normalize_math", "math_equal", "math_gold",
           "hellaswag_pick", "add_row_index", "mmlu_prompt", "mmlu_target"]


def add_row_index(dataset: Any) -> Any:
    """process_docs: remember each doc's 0-based row in the local file (lm-eval renumbers subsets)."""
    return dataset.map(lambda _doc, i: {"daar_row": i}, with_indices=True)


def _record(details: dict | None, doc: dict, **info: Any) -> None:
    """Keep what the scorer saw for one doc, by its file row, for the per-sample raw output."""
    if details is not None:
        details[doc.get("daar_row", len(details))] = info


def _exact_match(details: dict | None, doc: dict, correct: bool, **info: Any) -> dict[str, float]:
    """Record one doc's extraction and verdict and return lm-eval's metric: every exact-match task
    (NQ, TriviaQA, GSM8K, MATH) records and scores alike, so a change to either reaches all of them."""
    _record(details, doc, **info, correct=correct)
    return {"exact_match": float(correct)}


# -- NQ / TriviaQA -------------------------------------------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | {"‘", "’", "“", "”", "´", "`"}


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in str(text).lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def qa_prediction(generation: str) -> str:
    """The answer part of a short-answer generation: first non-empty line, after 'answer is' if present."""
    lines = [ln for ln in str(generation).strip().split("\n") if ln.strip()]
    pred = lines[0] if lines else ""
    low = pred.lower()
    if "answer is" in low:
        pred = pred[low.rindex("answer is") + len("answer is"):]
    return pred.strip().lstrip(":").strip()


def qa_exact_match(generation: str, answers: Sequence[str]) -> bool:
    pred = normalize_answer(qa_prediction(generation))
    return any(pred == normalize_answer(a) for a in answers if str(a).strip())


def score_nq(doc: dict, results: list[str], details: dict | None = None) -> dict[str, float]:
    return _score_qa(doc, results, list(doc["answer"]), details)


def score_triviaqa(doc: dict, results: list[str], details: dict | None = None) -> dict[str, float]:
    return _score_qa(doc, results, list(doc["golden_answers"]), details)


def _score_qa(doc: dict, results: list[str], answers: list[str], details: dict | None) -> dict[str, float]:
    return _exact_match(details, doc, qa_exact_match(results[0], answers), extracted=qa_prediction(results[0]))


# -- GSM8K ---------------------------------------------------------------------------------------
_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_ANSWER_IS = re.compile(r"answer is[:\s]*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)


def _clean_number(text: str) -> str:
    text = text.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    return text


def extract_gsm8k_answer(generation: str) -> str | None:
    """'... The answer is 18.' -> '18'; else the last number in the text; None when there is none."""
    text = str(generation).split("Question:")[0]
    found = _ANSWER_IS.findall(text)
    if found:
        return _clean_number(found[-1])
    numbers = _NUMBER.findall(text)
    return _clean_number(numbers[-1]) if numbers else None


def gsm8k_gold(answer: str) -> str:
    """The number after '####' in a GSM8K reference solution."""
    return _clean_number(str(answer).split("####")[-1].strip())


def numbers_equal(a: str | None, b: str | None, tol: float = 1e-6) -> bool:
    if a is None or b is None:
        return False
    try:
        return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))
    except ValueError:
        return a.strip() == b.strip()


def score_gsm8k(doc: dict, results: list[str], details: dict | None = None) -> dict[str, float]:
    pred, gold = extract_gsm8k_answer(results[0]), gsm8k_gold(doc["answer"])
    return _exact_match(details, doc, numbers_equal(pred, gold), extracted=pred, gold=gold)


def gsm8k_target(doc: dict) -> str:
    """Few-shot exemplars carry a worked answer in `cot`; test docs show the reference solution."""
    return doc.get("cot") or doc["answer"]


# -- MATH ----------------------------------------------------------------------------------------
def math_gold(solution: str) -> str | None:
    return extract_math_answer(solution, boxed_only=True)


def math_prompt(doc: dict) -> str:
    return f"Problem:\n{doc['problem']}\n\nSolution:"


def math_target(doc: dict) -> str:
    return doc["solution"]


def score_math(doc: dict, results: list[str], details: dict | None = None) -> dict[str, float]:
    pred, gold = extract_math_answer(results[0]), math_gold(doc["solution"])
    return _exact_match(details, doc, math_equal(pred, gold), extracted=pred, gold=gold)


# -- HellaSwag -----------------------------------------------------------------------------------
def hellaswag_prompt(doc: dict) -> str:
    return f"{doc['activity_label']}: {doc['ctx']}"


def hellaswag_choices(doc: dict) -> list[str]:
    return [str(e) for e in doc["endings"]]


def hellaswag_target(doc: dict) -> int:
    return int(doc["label"])


def hellaswag_pick(loglikelihoods: Sequence[float], lengths: Sequence[float] | None = None) -> int:
    """Index of the best ending: highest log-likelihood, per unit of `lengths` when given.

    With lengths = token counts this is the lowest perplexity (exp of the mean token loss).
    """
    if lengths is None:
        scores = list(loglikelihoods)
    else:
        scores = [ll / max(float(n), 1.0) for ll, n in zip(loglikelihoods, lengths, strict=True)]
    return max(range(len(scores)), key=scores.__getitem__)


def score_hellaswag(doc: dict, results: list[tuple[float, bool]], details: dict | None = None,
                    count_tokens: Callable[[str], int] | None = None) -> dict[str, float]:
    """results: (log-likelihood, is_greedy) per ending, as lm-eval passes them for multiple_choice."""
    return _score_choices(doc, results, hellaswag_choices(doc), hellaswag_target(doc), details, count_tokens)


def _score_choices(doc: dict, results: list[tuple[float, bool]], choices: list[str], gold: int,
                   details: dict | None, count_tokens: Callable[[str], int] | None) -> dict[str, float]:
    """acc (sum), acc_norm (per character) and acc_ppl (per token) of one multiple-choice doc."""
    lls = [float(r[0]) for r in results]
    chars = [len(c) for c in choices]
    tokens = [count_tokens(" " + c) for c in choices] if count_tokens else chars
    picks = {"acc": hellaswag_pick(lls), "acc_norm": hellaswag_pick(lls, chars),
             "acc_ppl": hellaswag_pick(lls, tokens)}
    _record(details, doc, loglikelihoods=lls, ending_tokens=tokens, gold=gold, picks=picks)
    return {name: float(pick == gold) for name, pick in picks.items()}


# -- MMLU ----------------------------------------------------------------------------------------
_LETTERS = "ABCD"


def mmlu_prompt(doc: dict) -> str:
    subject = str(doc.get("subject", "")).replace("_", " ")
    return f"The following is a question about {subject}.\nQuestion: {doc['question']}\nAnswer:"


def mmlu_choices(doc: dict) -> list[str]:
    return [str(c) for c in doc["choices"]]


def mmlu_target(doc: dict) -> int:
    """The gold answer's index; the file stores a letter (A-D), some copies store the index."""
    answer = doc["answer"]
    if isinstance(answer, int):
        return answer
    return _LETTERS.index(str(answer).strip().upper())


def score_mmlu(doc: dict, results: list[tuple[float, bool]], details: dict | None = None,
               count_tokens: Callable[[str], int] | None = None) -> dict[str, float]:
    return _score_choices(doc, results, mmlu_choices(doc), mmlu_target(doc), details, count_tokens)
