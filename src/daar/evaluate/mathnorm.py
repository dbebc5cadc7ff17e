"""MATH answers: find the final answer in a solution and normalise LaTeX so equal answers compare equal.

The normalisation follows the idea of the MATH paper's `strip_string` (our own code): drop
spacing commands, `\\left`/`\\right`, degree marks, dollar signs, trailing units and percent
signs; `\\dfrac`/`\\tfrac` -> `\\frac`; `\\frac12` -> `\\frac{1}{2}`; `\\sqrt3` -> `\\sqrt{3}`;
`a/b` -> `\\frac{a}{b}` for integers; "x = 5" -> "5"; then all spaces removed. Two answers are
equal when their normal forms are equal or both are numbers with the same value.
"""

from __future__ import annotations

import re

_MINERVA = re.compile(r"final answer:\s*the final answer is", re.IGNORECASE)  # the 4-shot exemplars' format
_FINAL = re.compile(r"final answer is", re.IGNORECASE)
_ANSWER_IS = re.compile(r"answer is", re.IGNORECASE)


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox{...}, or '\\boxed 5'); None when there is none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:]
    if rest.startswith("\\boxed "):
        return rest[len("\\boxed "):].split("$")[0].strip()
    brace = rest.find("{")
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(rest)):
        if rest[i] == "{":
            depth += 1
        elif rest[i] == "}":
            depth -= 1
            if depth == 0:
                return rest[brace + 1:i]
    return None


def _statement(text: str, pattern: re.Pattern) -> str | None:
    matches = list(pattern.finditer(text))
    if not matches:
        return None
    tail = text[matches[-1].end():].split("I hope it is correct")[0].strip()
    tail = tail.split("\n")[0].strip()
    boxed = last_boxed(tail)
    if boxed is not None:
        return boxed
    tail = tail.rstrip(".").strip()
    if tail.startswith("$") and tail.rfind("$") > 0:  # "$\\$15,\\!000$": up to the last dollar
        tail = tail[1:tail.rfind("$")]
    return tail.strip() or None


def extract_math_answer(text: str, boxed_only: bool = False) -> str | None:
    """The final answer of a MATH solution or generation.

    Generations: the "Final Answer: The final answer is $X$" statement (the 4-shot format), else the
    last \\boxed{}, else a "final answer is X" or "answer is X" statement. References
    (boxed_only): the last \\boxed{}.
    """
    text = str(text)
    if boxed_only:
        return last_boxed(text)
    text = text.split("Problem:")[0]
    found = _statement(text, _MINERVA)
    if found is not None:
        return found
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    found = _statement(text, _FINAL)
    return found if found is not None else _statement(text, _ANSWER_IS)


def _fix_fracs(s: str) -> str:
    """\\frac12 -> \\frac{1}{2} and \\frac1{2} -> \\frac{1}{2}; braced numerators are left alone."""
    parts = s.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part.startswith("{") or len(part) < 2:
            out += part
        else:
            a, b, rest = part[0], part[1], part[2:]
            out += "{" + a + "}" + (b + rest if b == "{" else "{" + b + "}" + rest)
    return out


def _fix_sqrt(s: str) -> str:
    return re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)


def _fix_slash(s: str) -> str:
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    return f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}" if m else s


def normalize_math(answer: str | None) -> str:
    """A canonical string for a LaTeX answer (see the module docstring for the rules)."""
    if answer is None:
        return ""
    s = str(answer).strip().replace("\n", "").replace("\\!", "")
    s = s.replace("\\\\", "\\").replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("°", "")
    s = s.replace("\\$", "").replace("$", "")
    if "\\text{ " in s:  # trailing units: "5 \\text{ cm}"
        s = s.split("\\text{ ")[0]
    s = re.sub(r"\\(?:text|textbf|mbox|mathrm)\{(.*?)\}", r"\1", s)
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace("\\,", "").replace("\\;", "").replace("\\ ", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if s.startswith("."):
        s = "0" + s
    if s.count("=") == 1 and len(s.split("=")[0].strip()) <= 2:
        s = s.split("=")[1]
    s = _fix_sqrt(s).replace(" ", "")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    s = _fix_slash(s).rstrip(".")
    return s


def _as_number(s: str) -> float | None:
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s)
    if m:
        den = float(m.group(3))
        return None if den == 0 else (-1 if m.group(1) else 1) * float(m.group(2)) / den
    try:
        return float(s)
    except ValueError:
        return None


def math_equal(prediction: str | None, gold: str | None) -> bool:
    if prediction is None or gold is None:
        return False
    a, b = normalize_math(prediction), normalize_math(gold)
    if a == b:
        return bool(a)
    x, y = _as_number(a), _as_number(b)
    return x is not None and y is not None and abs(x - y) <= 1e-6 * max(1.0, abs(y))
