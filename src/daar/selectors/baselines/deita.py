"""Deita (Liu et al. 2024, "What Makes Good Data for Alignment?"): complexity and quality scores
from a scorer model, and score-first selection with a redundancy filter.

The paper's scorers are fine-tuned LLaMA models asked for a 1-6 score; the score is the
expectation over the probabilities of the answer tokens "1".."6" at the answer position. Here the
`--scorer-model` (default: the user's `--model`) is *prompted* the same way (our own wording), in one
forward pass per record, no generation. Probabilities are renormalised over the six answers; the
mass the model puts on them at all is reported (`digit_mass`) so a scorer that does not answer
with digits is visible.

`deita` ranks by complexity x quality (the paper's evol score) and walks down the ranking, adding
a record only if its cosine similarity to every record already chosen is below
--similarity-threshold (default 0.9) on the model's features (--layer, centred on the pool mean:
see common.geometry_features; on raw mean-pooled features nearly every pair is above 0.9). If the filter leaves fewer
than the budget, the rest is filled by score (the metadata says how many).
"""

from __future__ import annotations

import numpy as np

from daar.selectors.base import SelectionResult, Selector, register_selector, top_k
from daar.selectors.baselines.common import fill_by_order, geometry_features, judge_cache, option, query_text
from daar.selectors.baselines.lm_scoring import (
    answer_prefix,
    answer_token_groups,
    chat_prompt_ids,
    load_scorer,
    next_token_probs,
    scorer_identity,
    truncate_tokens,
)
from daar.selectors.context import SelectionContext
from daar.selectors.judge_cache import Judgement, judge_all

PROMPT_VERSION = "deita-v2"
ANSWERS = ("1", "2", "3", "4", "5", "6")
ANSWER_PREFIX = "Score:"

COMPLEXITY_PROMPT = (
    "Rate how complex and demanding the following user request is, on a scale from 1 (trivial) to 6 "
    "(very complex: many constraints, several reasoning steps or expert knowledge). "
    "Answer with a single digit.\n\n### Request:\n{query}\n\n### Complexity (1-6)")
QUALITY_PROMPT = (
    "Rate the quality of the response to the question below, on a scale from 1 (poor) to 6 (excellent), "
    "judging helpfulness, relevance, accuracy, depth and level of detail. Answer with a single digit.\n\n"
    "### Question:\n{query}\n\n### Response:\n{response}\n\n### Quality (1-6)")


def deita_scores(ctx: SelectionContext, kind: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(expected 1-6 score, probability mass on the six answers) per record, for kind 'complexity' or
    'quality'; cached per (scorer, prompt version, record)."""
    max_len = int(option(ctx, "scorer_max_length"))
    template = COMPLEXITY_PROMPT if kind == "complexity" else QUALITY_PROMPT
    budget = max_len - 96 if kind == "complexity" else (max_len - 128) // 2  # tokens per inserted text
    queries = [query_text(r) for r in ctx.records]
    responses = [r.output for r in ctx.records]
    inputs = queries if kind == "complexity" else [f"{q}\x00{a}" for q, a in zip(queries, responses, strict=True)]

    def compute(positions: list[int]) -> list[Judgement]:
        loaded = load_scorer(ctx)
        tok = loaded.tokenizer
        prefix = answer_prefix(tok, ANSWER_PREFIX, ANSWERS)
        seqs = []
        for i in positions:
            fields = {"query": truncate_tokens(tok, queries[i], budget)}
            if kind == "quality":
                fields["response"] = truncate_tokens(tok, responses[i], budget)
            seqs.append(chat_prompt_ids(tok, template.format(**fields), prefix))
        probs = next_token_probs(loaded, seqs, answer_token_groups(tok, ANSWERS), batch_size=ctx.cfg.features.batch_size)
        return [Judgement([float(p) for p in row]) for row in probs]

    judged, stats = judge_all(judge_cache(ctx), kind=f"deita-{kind}", model=scorer_identity(ctx),
                              version=f"{PROMPT_VERSION}|len={max_len}", record_ids=[r.id for r in ctx.records],
                              inputs=inputs, compute=compute, batch_size=int(option(ctx, "judge_batch")),
                              time_limit=option(ctx, "judge_time_limit"))
    probs = np.array([j.value for j in judged], dtype=np.float64).reshape(len(judged), len(ANSWERS))
    mass = probs.sum(axis=1)
    values = np.arange(1, len(ANSWERS) + 1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(mass > 0, probs @ values / mass, 1.0)  # no mass at all: the lowest score
    return score, mass, stats.as_dict()


def redundancy_filter(x: np.ndarray, order: np.ndarray, budget: int, threshold: float) -> tuple[list[int], int]:
    """Walk `order`; keep a record if its cosine to every kept one is below `threshold` (x: unit rows).
    Returns the kept records (in walk order, at most `budget`) and how many the filter skipped."""
    kept: list[int] = []
    bank = np.empty((budget, x.shape[1]), dtype=x.dtype)
    skipped = 0
    for i in order:
        if len(kept) >= budget:
            break
        if kept and float(np.max(bank[: len(kept)] @ x[i])) >= threshold:
            skipped += 1
            continue
        bank[len(kept)] = x[i]
        kept.append(int(i))
    return kept, skipped


class _DeitaScoreSelector(Selector):
    kind = ""

    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        score, mass, stats = deita_scores(ctx, self.kind)
        return SelectionResult(selected=top_k(score, budget), scores=score,
                               metadata={"scorer": stats["model"], "judge": stats,
                                         "mean_digit_mass": float(mass.mean())},
                               extra_columns={"digit_mass": mass})


@register_selector("deita-complexity", "Deita complexity: --scorer-model's expected 1-6 complexity of the "
                   "instruction (answer-token probabilities)")
class DeitaComplexitySelector(_DeitaScoreSelector):
    kind = "complexity"


@register_selector("deita-quality", "Deita quality: --scorer-model's expected 1-6 quality of the response "
                   "(answer-token probabilities)")
class DeitaQualitySelector(_DeitaScoreSelector):
    kind = "quality"


@register_selector("deita", "Deita score-first: complexity x quality, skipping records with cosine >= "
                   "--similarity-threshold to one already chosen")
class DeitaSelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        complexity, c_mass, c_stats = deita_scores(ctx, "complexity")
        quality, q_mass, q_stats = deita_scores(ctx, "quality")
        score = complexity * quality
        order = np.argsort(-score, kind="stable")
        threshold = float(ctx.cfg.baselines.similarity_threshold)
        kept, skipped = redundancy_filter(geometry_features(ctx), order, budget, threshold)
        filled = fill_by_order(kept, order, budget)
        return SelectionResult(
            selected=np.array(kept, dtype=np.int64), scores=score,
            metadata={"scorer": c_stats["model"], "judge": {"complexity": c_stats, "quality": q_stats},
                      "similarity_threshold": threshold, "layer": str(ctx.cfg.features.layer),
                      "skipped_as_redundant": skipped, "filled_by_score": filled,
                      "mean_digit_mass": {"complexity": float(c_mass.mean()), "quality": float(q_mass.mean())}},
            extra_columns={"complexity": complexity, "quality": quality})
