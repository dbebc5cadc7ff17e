"""HumanEval / MBPP scoring by executing code, and the sandbox's timeout and guards."""

from __future__ import annotations

import time

from daar.evaluate import code
from daar.evaluate.sandbox import run_program

PROBLEM = {"task_id": "Toy/0", "entry_point": "add", "daar_row": 0,
           "prompt": 'def add(a, b):\n    """Add two numbers."""\n',
           "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"}

MBPP_DOC = {"task_id": 11, "text": "Write a function to square a number.", "test_setup_code": "",
            "code": "def square(x):\r\n  return x * x",
            "test_list": ["assert square(2) == 4", "assert square(3) == 9", "assert square(0) == 0"]}


def test_humaneval_passing_completion():
    details: dict = {}
    assert code.score_humaneval(PROBLEM, ["\n    return a + b\n"], details, timeout=5) == {"pass@1": 1.0}
    assert details[0]["status"] == "passed"


def test_humaneval_failing_completion():
    details: dict = {}
    assert code.score_humaneval(PROBLEM, ["\n    return a - b\n"], details, timeout=5) == {"pass@1": 0.0}
    assert details[0]["status"] == "failed" and "AssertionError" in details[0]["detail"]
    assert code.score_humaneval(PROBLEM, ["\n    return a +\n"], timeout=5) == {"pass@1": 0.0}  # syntax error


def test_humaneval_fenced_full_function_is_used_alone():
    fenced = "\n```python\ndef add(a, b):\n    return a + b\n```\n"
    assert code.score_humaneval(PROBLEM, [fenced], timeout=5) == {"pass@1": 1.0}


def test_humaneval_prompt_drops_the_trailing_newline():
    assert code.humaneval_prompt(PROBLEM).endswith('"""')


def test_mbpp_pass_and_fail():
    good = "def square(x):\n    return x * x\n"
    assert code.score_mbpp(MBPP_DOC, [good + "[DONE]"], timeout=5) == {"pass@1": 1.0}
    assert code.score_mbpp(MBPP_DOC, ["def square(x):\n    return x + x\n[DONE]"], timeout=5) == {"pass@1": 0.0}


def test_mbpp_setup_code_runs_after_the_solution():
    doc = {**MBPP_DOC, "test_setup_code": "box = Box(3)", "test_list": ["assert box.v == 3"]}
    gen = "class Box:\n    def __init__(self, v):\n        self.v = v\n[DONE]"
    assert code.score_mbpp(doc, [gen], timeout=5) == {"pass@1": 1.0}


def test_mbpp_code_extraction():
    assert code.extract_mbpp_code("[BEGIN]\n'def f():\n  return 1'\n[DONE] trailing") == "def f():\n  return 1"
    assert code.extract_mbpp_code("```python\ndef f():\n  return 1\n```\n[DONE]") == "def f():\n  return 1"
    prompt = code.mbpp_prompt(MBPP_DOC)
    assert prompt.endswith("assert square(0) == 0\n[BEGIN]\n") and "square a number" in prompt
    assert code.mbpp_target(MBPP_DOC) == "def square(x):\n  return x * x\n[DONE]"


def test_infinite_loop_is_killed_by_the_timeout():
    details: dict = {}
    start = time.perf_counter()
    out = code.score_humaneval(PROBLEM, ["\n    while True:\n        pass\n"], details, timeout=1.0)
    elapsed = time.perf_counter() - start
    assert out == {"pass@1": 0.0}
    assert details[0]["status"] == "timeout"
    assert elapsed < 4.0


def test_sandbox_blocks_network_and_early_exit():
    assert run_program("assert 1 + 1 == 2", timeout=5).passed
    net = run_program("import socket\nsocket.create_connection(('127.0.0.1', 9))", timeout=5)
    assert not net.passed
    early = run_program("import sys\nsys.exit(0)\nassert False", timeout=5)
    assert not early.passed and "SystemExit" in early.detail  # exiting early is not passing
    assert not run_program("x = bytearray(8 << 30)", timeout=5, memory_mb=512).passed  # memory limit
