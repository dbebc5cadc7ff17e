"""Instruction-Following Difficulty (Cherry LLM, Li et al. 2024; Superfiltering, Li et al. 2024).

IFD(x) = loss(response | instruction) / loss(response), each the mean next-token cross-entropy over
the response tokens only: how much the instruction helps the scorer predict the answer. IFD >= 1
means the instruction does not help at all (the pair is probably mismatched), so those records are
dropped; the rest are ranked by IFD, highest first (hardest to follow, still coherent).

Both passes score exactly the same response tokens: the conditional pass sees
[start] + prompt + response, the unconditional one [start] + response, where prompt is the record
rendered up to {output} by the one renderer. The prompt keeps at most half of --scorer-max-length
tokens (its end, nearest the response), the response the rest. Losses are cached in the judgement
cache, so reruns and `daar compare` reuse them.
If fewer records than the budget have IFD < 1, the rest is filled with the lowest IFD >= 1 and the
metadata says how many.
"""

from __future__ import annotations

import numpy as np

from daar.selectors.base import SelectionResult, Selector, register_selector
from daar.selectors.baselines.common import judge_cache, option
from daar.selectors.baselines.lm_scoring import load_scorer, scorer_identity, span_losses, start_token
from daar.selectors.context import SelectionContext
from daar.selectors.judge_cache import Judgement, judge_all

PROMPT_VERSION = "ifd-v1"


def ifd_losses(ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray, dict]:
    """(conditional loss, unconditional loss) per record, NaN where the response is empty."""
    max_len = int(option(ctx, "scorer_max_length"))
    prompts = [ctx.renderer.render_prompt(r) + "\n" for r in ctx.records]
    inputs = [f"{p}\x00{r.output}" for p, r in zip(prompts, ctx.records, strict=True)]

    def compute(positions: list[int]) -> list[Judgement]:
        loaded = load_scorer(ctx)
        tok, start = loaded.tokenizer, start_token(loaded.tokenizer)
        seqs, spans = [], []
        for i in positions:
            prompt = tok.encode(prompts[i], add_special_tokens=False)[-(max_len // 2):]
            resp = tok.encode(ctx.records[i].output, add_special_tokens=False)[: max(max_len - 1 - len(prompt), 0)]
            seqs += [[start, *prompt, *resp], [start, *resp]]
            spans += [(1 + len(prompt), 1 + len(prompt) + len(resp)), (1, 1 + len(resp))]
        losses = span_losses(loaded, seqs, spans, batch_size=ctx.cfg.features.batch_size)
        return [Judgement([_f(losses[2 * k]), _f(losses[2 * k + 1])], raw="", ok=True) for k in range(len(positions))]

    version = f"{PROMPT_VERSION}|len={max_len}|{ctx.renderer.fingerprint}"
    judged, stats = judge_all(judge_cache(ctx), kind="ifd", model=scorer_identity(ctx), version=version,
                              record_ids=[r.id for r in ctx.records], inputs=inputs, compute=compute,
                              batch_size=int(option(ctx, "judge_batch")),
                              time_limit=option(ctx, "judge_time_limit"))
    cond = np.array([np.nan if j.value[0] is None else j.value[0] for j in judged], dtype=np.float64)
    alone = np.array([np.nan if j.value[1] is None else j.value[1] for j in judged], dtype=np.float64)
    return cond, alone, stats.as_dict()


def _f(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


@register_selector("ifd", "Superfiltering/Cherry IFD = loss(response | instruction) / loss(response) on "
                   "--scorer-model; drop IFD >= 1, keep the highest")
class IFDSelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        cond, alone, stats = ifd_losses(ctx)
        with np.errstate(divide="ignore", invalid="ignore"):
            ifd = np.where(alone > 0, cond / alone, np.nan)
        valid = np.isfinite(ifd)
        keep = valid & (ifd < 1.0)
        order_keep = np.flatnonzero(keep)[np.argsort(-ifd[keep], kind="stable")]
        picked = list(order_keep[:budget])
        rest = np.flatnonzero(valid & ~keep)
        rest = rest[np.argsort(ifd[rest], kind="stable")]  # least bad first
        n_ge1 = min(len(rest), budget - len(picked))
        picked += list(rest[:n_ge1])
        no_response = np.flatnonzero(~valid)
        n_nan = budget - len(picked)
        picked += list(no_response[:n_nan])
        return SelectionResult(
            selected=np.array(picked, dtype=np.int64), scores=ifd,
            metadata={"scorer": stats["model"], "judge": stats, "ifd_below_1": int(keep.sum()),
                      "ifd_at_least_1": int((valid & ~keep).sum()), "no_response": int((~valid).sum()),
                      "filled_with_ifd_at_least_1": int(n_ge1), "filled_without_response": int(max(n_nan, 0))},
            extra_columns={"loss_conditional": cond, "loss_response_only": alone})
