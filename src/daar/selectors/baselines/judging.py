"""Asking an LLM judge through the generation backend (ctx.generator: local HF generate, or an
OpenAI-compatible server with --generator-url / --generator-model), one chat prompt per record,
greedy decoding, every answer parsed and cached (see judge_cache)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from daar.selectors.baselines.common import judge_cache, option
from daar.selectors.context import SelectionContext
from daar.selectors.judge_cache import Judgement, JudgeStats, judge_all

Chat = list[dict[str, str]]


def generator_identity(ctx: SelectionContext) -> str:
    """Who answers: the backend's identity, computed without loading a local model when possible."""
    return ctx.resources.generator_identity


def ask_judge(ctx: SelectionContext, *, kind: str, version: str, prompts: list[Chat],
              parse: Callable[[str], Any], max_new_tokens: int) -> tuple[list[Judgement], JudgeStats]:
    """One parsed judgement per prompt (prompts[i] is about ctx.records[i]).

    `parse(text)` returns the value, or None when the answer cannot be read; such answers are kept
    (ok = False, raw text stored) and counted in the stats.
    """
    override = option(ctx, "judge_max_new_tokens")
    max_new = int(override) if override else max_new_tokens

    def compute(positions: list[int]) -> list[Judgement]:
        outs = ctx.generator.generate([prompts[i] for i in positions], n=1, temperature=0.0, top_p=1.0,
                                      max_new_tokens=max_new, seed=ctx.cfg.run.seed)
        judged = []
        for completions in outs:
            text = completions[0] if completions else ""
            value = parse(text)
            judged.append(Judgement(value, raw=text, ok=value is not None))
        return judged

    return judge_all(judge_cache(ctx), kind=kind, model=generator_identity(ctx),
                     version=f"{version}|greedy|max_new={max_new}", record_ids=[r.id for r in ctx.records],
                     inputs=[json.dumps(p, ensure_ascii=False) for p in prompts], compute=compute,
                     batch_size=int(option(ctx, "judge_batch")), time_limit=option(ctx, "judge_time_limit"))
