"""Small local benchmark files (the same fields as ../shared/data/eval) so no test needs the shared data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path

GSM8K = [
    {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?",
     "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
    {"question": "A box holds 12 eggs. How many eggs are in 2 boxes?", "answer": "12 * 2 = 24\n#### 24"},
    {"question": "Sam had 1,500 dollars and spent 500. How much is left?", "answer": "1500 - 500 = 1000\n#### 1,000"},
    {"question": "What is 9 minus 4?", "answer": "9 - 4 = 5\n#### 5"},
    {"question": "What is 6 times 7?", "answer": "6 * 7 = 42\n#### 42"},
]

HUMANEVAL = [
    {"task_id": f"Toy/{i}", "prompt": f'def {name}(a, b):\n    """{doc}"""\n', "entry_point": name,
     "canonical_solution": f"    return {body}\n",
     "test": f"def check(candidate):\n    assert candidate(2, 3) == {want}\n    assert candidate(0, 1) == {want0}\n"}
    for i, (name, doc, body, want, want0) in enumerate([
        ("add", "Add two numbers.", "a + b", 5, 1),
        ("mul", "Multiply two numbers.", "a * b", 6, 0),
        ("sub", "Subtract b from a.", "a - b", -1, -1),
        ("biggest", "The larger number.", "max(a, b)", 3, 1),
    ])
]

MBPP = [{"text": f"Toy problem {i}.", "code": "def f(x):\r\n  return x", "task_id": i, "test_setup_code": "",
         "test_list": ["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"], "challenge_test_list": []}
        for i in range(1, 16)]

NQ = [{"question": "where is the eiffel tower", "answer": ["Paris", "Paris, France"]},
      {"question": "who wrote hamlet", "answer": ["William Shakespeare"]}]
TRIVIAQA = [{"id": "t1", "question": "Which planet is the red planet?", "golden_answers": ["Mars", "The Red Planet"]}]
HELLASWAG = [{"idx": 0, "activity_label": "Cooking", "ctx": "A man cracks an egg into a pan. He",
              "label": 1, "endings": ["flies away.", "fries the egg.", "sings loudly.", "reads a book."]}]
MMLU = [{"subject": "high_school_geography", "question": "Which continent is Kenya in?",
         "choices": ["Asia", "Africa", "Europe", "Oceania"], "answer": "B"},
        {"subject": "elementary_mathematics", "question": "What is 2 + 2?", "choices": ["3", "5", "4", "22"],
         "answer": "C"}]
MATH = [{"unique_id": "test/algebra/1.json", "problem": "What is $1+1$?", "level": "Level 1", "type": "Algebra",
         "solution": "We have $1+1=\\boxed{2}$."}]

POOL_TEXT = {
    "common_sense": ("Name the capital of France.", "Paris is the capital of France."),
    "mathematics": ("What is 12 times 7?", "12 times 7 is 84. The answer is 84."),
    "coding": ("Write a function that adds two numbers.", "def add(a, b):\n    return a + b"),
}


@pytest.fixture
def eval_data(tmp_path) -> Path:
    """tmp/eval/*.jsonl for every benchmark plus tmp/pool/<domain>.jsonl (4 rows each)."""
    root = tmp_path / "bench"
    ev = root / "eval"
    ev.mkdir(parents=True)
    for name, rows in (("gsm8k_test", GSM8K), ("humaneval", HUMANEVAL), ("mbpp", MBPP), ("nq_open_dev", NQ),
                       ("triviaqa_test_1k", TRIVIAQA), ("hellaswag_val", HELLASWAG), ("math_test", MATH),
                       ("mmlu_test", MMLU)):
        write_jsonl(ev / f"{name}.jsonl", rows)
    pool = root / "pool"
    pool.mkdir()
    for domain, (ins, out) in POOL_TEXT.items():
        write_jsonl(pool / f"{domain}.jsonl", [{"id": f"{domain}-{i}", "instruction": f"{ins} ({i})", "input": "",
                                                "output": out} for i in range(4)])
    return ev
