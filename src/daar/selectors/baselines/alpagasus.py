"""AlpaGasus (Chen et al. 2024): an LLM judge rates each (instruction, input, response) 0-5 for
accuracy; training uses the top-rated records. With a fixed budget: take the rating levels from
the top down, and at the level where the budget runs out draw the remaining records at random
(seeded) from that level. Unreadable ratings score -1, below the scale, so they come last.
"""

from __future__ import annotations

import re

import numpy as np

from daar.selectors.base import SelectionResult, Selector, register_selector
from daar.selectors.baselines.common import clip, option, rng_for, sample_within
from daar.selectors.baselines.judging import ask_judge
from daar.selectors.context import SelectionContext

PROMPT_VERSION = "alpagasus-v1"
UNPARSEABLE = -1.0
SYSTEM = ("You review training data for an AI assistant. You are strict, fair and concise, and you "
          "judge only what is asked.")
USER = (
    "Here is an instruction, its optional input, and a response written by an assistant.\n\n"
    "Instruction: {instruction}\nInput: {input}\nResponse: {response}\n\n"
    "How accurate is the response for this instruction and input? Give a score from 0 to 5, where 5 "
    "means completely accurate and helpful and 0 means wrong or useless. Write the score alone on the "
    "first line as 'Score: <number>', then one short sentence explaining it.")

_NUM = r"(\d+(?:\.\d+)?)"
_PATTERNS = [
    re.compile(r"score\s*(?:is|of)?\s*[:=]?\s*\**\s*" + _NUM, re.IGNORECASE),
    re.compile(_NUM + r"\s*(?:/|out of)\s*5\b", re.IGNORECASE),
    re.compile(r"^\s*\**\s*" + _NUM + r"\b"),  # a bare number opening the answer
    re.compile(r"rat(?:e|ing)\s*(?:is|of)?\s*[:=]?\s*\**\s*" + _NUM, re.IGNORECASE),
]


def parse_rating(text: str) -> float | None:
    """The 0-5 rating in a judge's answer ('Score: 4', '**4.5**/5', '3 out of 5', '5\\n...'), or None."""
    for pattern in _PATTERNS:
        m = pattern.search(text)
        if m:
            value = float(m.group(1))
            return value if 0.0 <= value <= 5.0 else None
    return None


def alpagasus_prompts(ctx: SelectionContext) -> list[list[dict[str, str]]]:
    max_chars = int(option(ctx, "judge_max_chars"))
    return [[{"role": "system", "content": SYSTEM},
             {"role": "user", "content": USER.format(instruction=clip(r.instruction, max_chars),
                                                     input=clip(r.input, max_chars) or "(none)",
                                                     response=clip(r.output, max_chars))}]
            for r in ctx.records]


def top_levels_then_random(ratings: np.ndarray, budget: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """All records of the best rating levels, then a random draw from the level where the budget ends."""
    chosen: list[np.ndarray] = []
    have = 0
    boundary, drawn = None, 0
    for level in sorted(set(ratings.tolist()), reverse=True):
        members = np.flatnonzero(ratings == level)
        if have + len(members) <= budget:
            chosen.append(members)
            have += len(members)
        else:
            boundary, drawn = level, budget - have
            chosen.append(sample_within(rng, members, drawn))
            have = budget
        if have >= budget:
            break
    picked = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return picked, {"boundary_rating": boundary, "drawn_at_random_from_boundary": int(drawn)}


@register_selector("alpagasus", "AlpaGasus: an LLM judge (generation backend) rates each record 0-5; "
                   "top ratings first, random among ties at the cut")
class AlpaGasusSelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        judged, stats = ask_judge(ctx, kind="alpagasus", version=PROMPT_VERSION, prompts=alpagasus_prompts(ctx),
                                  parse=parse_rating, max_new_tokens=16)
        ratings = np.array([j.value if j.ok else UNPARSEABLE for j in judged], dtype=np.float64)
        picked, meta = top_levels_then_random(ratings, budget, rng_for(ctx, "alpagasus"))
        levels, counts = np.unique(ratings, return_counts=True)
        return SelectionResult(
            selected=picked, scores=ratings,
            metadata={"judge": stats.as_dict(), "seed": ctx.cfg.run.seed, "unparseable_score": UNPARSEABLE,
                      "rating_counts": {str(float(v)): int(c) for v, c in zip(levels, counts, strict=True)}, **meta})
