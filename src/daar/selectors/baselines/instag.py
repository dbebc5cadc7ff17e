"""InsTag (Lu et al. 2024): an LLM tagger names the fine-grained intentions of each query as
JSON; tags are lowercased and normalised, and tags seen in fewer than alpha records
(--tag-min-count) are dropped as noise.

instag-complexity: most tags first.
instag-diversity: the paper's complexity-first diverse sampling (Algorithm 1): walk the records
sorted by tag count (most first); add a record when its tags bring a tag not yet covered in this
pass; when a pass ends below the budget, start a new pass over the rest with an empty tag set.
When a pass adds nothing (only untagged records are left), fill by tag count.
Ties in tag count are broken by a seeded random order, not pool order: tag counts tie massively
(and a weak tagger leaves many records untagged), and pool order would favour whatever source a
file happens to list first.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np

from daar.selectors.base import SelectionResult, Selector, register_selector
from daar.selectors.baselines.common import clip, option, query_text, rng_for
from daar.selectors.baselines.judging import ask_judge
from daar.selectors.context import SelectionContext

PROMPT_VERSION = "instag-v2"
# v2 frames the query as data and says not to answer it: the bundled 135M model otherwise answers
# the query itself (0 of 8 parseable in a check on W-4k records; 2 of 8 with this wording). An
# in-prompt example answer was worse: the small model copied the example's tags verbatim.
SYSTEM = ("You are a tagging tool for a dataset of user queries. You never answer or solve a query; "
          "you only name the intentions behind it as short tags.")
USER = ("Query to tag:\n<<<\n{query}\n>>>\n\nDo not answer the query. Name 1 to 5 short tags for what it "
        "asks for (task type, topic, skill). Reply with JSON only: a list of objects of the form "
        '{{"tag": "...", "explanation": "..."}}.')

_TAG_FIELD = re.compile(r'"tag"\s*:\s*"((?:[^"\\]|\\.)*)"', re.IGNORECASE)


def normalise_tag(tag: str) -> str:
    tag = re.sub(r"\s+", " ", str(tag)).strip().strip(".,;:!?\"'`*-").strip()
    return tag.lower()


def parse_tags(text: str) -> list[str] | None:
    """Tags from a tagger's answer: a JSON list of {"tag": ...} objects or of strings, also inside
    code fences or surrounded by chatter; falls back to the "tag": "..." fields when the JSON is
    broken (e.g. cut off by the token limit). None when nothing can be read."""
    tags: list[str] | None = None
    start, end = text.find("["), text.rfind("]")
    if start != -1 and end > start:
        try:
            doc = json.loads(text[start : end + 1])
        except json.JSONDecodeError:
            doc = None
        if isinstance(doc, list):
            found = []
            for item in doc:
                if isinstance(item, str):
                    found.append(item)
                elif isinstance(item, dict):
                    value = item.get("tag", item.get("Tag", item.get("name")))
                    if isinstance(value, str):
                        found.append(value)
            tags = found if found or not doc else None
    if tags is None:
        fields = _TAG_FIELD.findall(text)
        if fields:
            tags = [json.loads(f'"{f}"') if "\\" in f else f for f in fields]
    if tags is None:
        return None
    seen: dict[str, None] = {}
    for t in tags:
        n = normalise_tag(t)
        if n:
            seen.setdefault(n, None)
    return list(seen)


def record_tags(ctx: SelectionContext) -> tuple[list[list[str]], dict]:
    """Per record: its normalised tags after dropping those rarer than --tag-min-count; and metadata."""
    max_chars = int(option(ctx, "judge_max_chars"))
    prompts = [[{"role": "system", "content": SYSTEM},
                {"role": "user", "content": USER.format(query=clip(query_text(r), max_chars))}] for r in ctx.records]
    judged, stats = ask_judge(ctx, kind="instag", version=PROMPT_VERSION, prompts=prompts, parse=parse_tags,
                              max_new_tokens=256)
    raw = [list(j.value) if j.ok else [] for j in judged]
    return filter_rare(raw, int(ctx.cfg.baselines.tag_min_count), stats.as_dict())


def filter_rare(raw: list[list[str]], alpha: int, judge: dict | None = None) -> tuple[list[list[str]], dict]:
    counts = Counter(t for tags in raw for t in set(tags))
    kept = [[t for t in tags if counts[t] >= alpha] for tags in raw]
    meta = {"judge": judge, "tag_min_count": alpha, "distinct_tags": len(counts),
            "distinct_tags_kept": sum(1 for c in counts.values() if c >= alpha),
            "top_tags": counts.most_common(20)}
    return kept, meta


def tag_order(tags: list[list[str]], tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Records by tag count, most first; equal counts by `tiebreak` (a rank per record), else pool order."""
    n_tags = np.array([len(t) for t in tags], dtype=np.float64)
    secondary = np.arange(len(tags)) if tiebreak is None else np.asarray(tiebreak)
    return np.lexsort((secondary, -n_tags))


def diverse_sampling(tags: list[list[str]], budget: int,
                     tiebreak: np.ndarray | None = None) -> tuple[list[int], dict]:
    """InsTag's complexity-first diverse sampling; returns picks in order and pass statistics."""
    order = [int(i) for i in tag_order(tags, tiebreak)]
    remaining = order
    picks: list[int] = []
    passes = []
    while len(picks) < budget and remaining:
        covered: set[str] = set()
        left = []
        added = 0
        for i in remaining:
            if len(picks) < budget and not set(tags[i]) <= covered:
                picks.append(i)
                covered |= set(tags[i])
                added += 1
            else:
                left.append(i)
        passes.append(added)
        remaining = left
        if added == 0:
            break
    filled = budget - len(picks)
    picks += remaining[:filled]
    return picks, {"passes": passes, "filled_by_tag_count": filled}


def tiebreak_ranks(ctx: SelectionContext) -> np.ndarray:
    return rng_for(ctx, "instag").permutation(ctx.n)


@register_selector("instag-complexity", "InsTag-C: an LLM tagger (generation backend) tags intents; "
                   "most tags first")
class InsTagComplexitySelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        tags, meta = record_tags(ctx)
        n_tags = np.array([len(t) for t in tags], dtype=np.float64)
        picked = tag_order(tags, tiebreak_ranks(ctx))[:budget]
        return SelectionResult(selected=picked, scores=n_tags, metadata={**meta, "seed": ctx.cfg.run.seed},
                               extra_columns={"tags": np.array(["|".join(t) for t in tags], dtype=object)})


@register_selector("instag-diversity", "InsTag-D: complexity-first diverse sampling, adding records that "
                   "bring intent tags not yet covered")
class InsTagDiversitySelector(Selector):
    def select(self, ctx: SelectionContext, budget: int) -> SelectionResult:
        tags, meta = record_tags(ctx)
        picks, sampling = diverse_sampling(tags, budget, tiebreak_ranks(ctx))
        n_tags = np.array([len(t) for t in tags], dtype=np.float64)
        covered = len({t for i in picks for t in tags[i]})
        return SelectionResult(selected=np.array(picks, dtype=np.int64), scores=n_tags,
                               metadata={**meta, **sampling, "tags_covered": covered, "seed": ctx.cfg.run.seed},
                               extra_columns={"tags": np.array(["|".join(t) for t in tags], dtype=object)})
