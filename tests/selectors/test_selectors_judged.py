"""LLM-judged baselines (alpagasus, instag-*) with a fake judge: parsing, golden selections,
unparseable answers counted, and the judgement cache (a second run does not call the judge)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from selector_helpers import FakeJudge, make_rows

from daar.selectors.base import get_selector
from daar.selectors.baselines.alpagasus import parse_rating
from daar.selectors.baselines.instag import diverse_sampling, filter_rare, parse_tags
from daar.selectors.judge_cache import JudgeCache, Judgement, JudgeTimeLimit, judge_all


def task_number(prompt: str) -> int:
    return int(re.search(r"Task (\d+)", prompt).group(1))


RATINGS = ["Score: 5\nAccurate.", "Score: 4", "5 out of 5", "**4.5**/5 good", "I cannot rate this.",
           "Rating: 3", "Score: 7", "score: 5"]


@pytest.mark.parametrize("text, value", [
    ("Score: 4\nbecause", 4.0), ("score:4.5", 4.5), ("**Score:** 3", 3.0), ("3 out of 5", 3.0), ("4/5", 4.0),
    ("5\nThe response is right.", 5.0), ("Rating: 2", 2.0), ("Score: 9", None), ("no idea", None), ("", None)])
def test_parse_rating(text, value):
    assert parse_rating(text) == value


@pytest.mark.parametrize("text, tags", [
    ('[{"tag": "Python Programming", "explanation": "x"}, {"tag": "sorting"}]', ["python programming", "sorting"]),
    ('```json\n["Math", "math ", "Word Problem."]\n```', ["math", "word problem"]),
    ('Sure! [{"tag": "a"}, {"tag": "b"', ["a", "b"]),  # cut off by the token limit
    ("[]", []),
    ("I don't know", None),
])
def test_parse_tags(text, tags):
    assert parse_tags(text) == tags


def test_alpagasus_golden_and_unparseable_counted(make_ctx):
    judge = FakeJudge(lambda p: RATINGS[task_number(p)])
    ctx = make_ctx(make_rows(8), generator=judge, seed=42)
    r = get_selector("alpagasus").select(ctx, 4)
    assert r.scores.tolist() == [5, 4, 5, 4.5, -1, 3, -1, 5]
    assert r.selected.tolist() == [0, 2, 3, 7]  # all the 5s and the single 4.5
    assert r.metadata["judge"]["unparseable"] == 2
    assert {e["raw"] for e in r.metadata["judge"]["unparseable_examples"]} == {"I cannot rate this.", "Score: 7"}
    two = get_selector("alpagasus").select(ctx, 2)  # random draw among the three 5s
    assert set(two.selected.tolist()) <= {0, 2, 7} and two.metadata["drawn_at_random_from_boundary"] == 2
    assert two.selected.tolist() == get_selector("alpagasus").select(ctx, 2).selected.tolist()
    seven = get_selector("alpagasus").select(ctx, 7)
    assert set(seven.selected.tolist()) >= {0, 1, 2, 3, 5, 7} and seven.metadata["boundary_rating"] == -1.0


def test_judgements_are_cached_across_runs_and_contexts(make_ctx):
    judge = FakeJudge(lambda p: RATINGS[task_number(p)])
    ctx = make_ctx(make_rows(8), generator=judge)
    get_selector("alpagasus").select(ctx, 3)
    assert judge.prompts == 8
    calls = judge.calls
    r = get_selector("alpagasus").select(ctx, 3)
    assert judge.calls == calls and r.metadata["judge"]["from_cache"] == 8
    fresh_judge = FakeJudge(lambda p: RATINGS[task_number(p)])
    again = make_ctx(make_rows(8), generator=fresh_judge)  # new context, same cache root
    get_selector("alpagasus").select(again, 3)
    assert fresh_judge.calls == 0


def test_changed_content_under_the_same_id_is_judged_again(make_ctx):
    rows = [{**r, "id": f"r{i}"} for i, r in enumerate(make_rows(4))]
    judge = FakeJudge(lambda p: "Score: 3")
    get_selector("alpagasus").select(make_ctx(rows, generator=judge), 2)
    rows[1] = {**rows[1], "output": "a different answer"}
    judge2 = FakeJudge(lambda p: "Score: 3")
    get_selector("alpagasus").select(make_ctx(rows, generator=judge2), 2)
    assert judge2.prompts == 1


# -- InsTag ------------------------------------------------------------------------------------------
TAGS = [["a", "b", "c"], ["a", "b"], ["d"], ["a"], ["e", "f"], [], ["c", "g"]]


def tagger(prompt: str) -> str:
    return json.dumps([{"tag": t.upper(), "explanation": "..."} for t in TAGS[task_number(prompt)]])


def test_instag_complexity_golden(make_ctx):
    ctx = make_ctx(make_rows(7), generator=FakeJudge(tagger), seed=42)
    r = get_selector("instag-complexity").select(ctx, 3)
    assert r.scores.tolist() == [3, 2, 1, 1, 2, 0, 2]
    # 3 tags (row 0), then two of the 2-tag rows 1, 4, 6: ties go by a seeded random order
    assert r.selected.tolist() == [0, 1, 6]
    assert get_selector("instag-complexity").select(ctx, 3).selected.tolist() == [0, 1, 6]
    assert get_selector("instag-complexity").select(ctx, 4).selected.tolist() == [0, 1, 4, 6]
    alpha2 = make_ctx(make_rows(7), generator=FakeJudge(tagger), tag_min_count=2, seed=42)
    r2 = get_selector("instag-complexity").select(alpha2, 3)
    assert r2.scores.tolist() == [3, 2, 0, 1, 0, 0, 1]  # only a, b, c occur in >= 2 records
    assert r2.selected.tolist()[:2] == [0, 1] and len(set(r2.selected.tolist()) & {3, 6}) == 1


def test_instag_diversity_golden(make_ctx):
    judge = FakeJudge(tagger)
    ctx = make_ctx(make_rows(7), generator=judge)
    r = get_selector("instag-diversity").select(ctx, 4)
    # sorted by tag count: 0, {1, 4, 6}, {2, 3}, 5; pass 1 keeps those bringing a new tag
    assert r.selected.tolist() == [0, 2, 4, 6]
    assert r.metadata["passes"] == [4] and r.metadata["tags_covered"] == 7
    assert get_selector("instag-diversity").select(ctx, 5).selected.tolist() == [0, 1, 2, 4, 6]
    calls = judge.calls
    get_selector("instag-complexity").select(ctx, 2)  # shares the tag judgements
    assert judge.calls == calls


def test_instag_diverse_sampling_passes_and_fill():
    picks, meta = diverse_sampling(TAGS, 7)
    assert picks == [0, 4, 6, 2, 1, 3, 5]
    assert meta == {"passes": [4, 1, 1, 0], "filled_by_tag_count": 1}


def test_filter_rare_tags():
    kept, meta = filter_rare(TAGS, 2)
    assert kept == [["a", "b", "c"], ["a", "b"], [], ["a"], [], [], ["c"]]
    assert meta["distinct_tags"] == 7 and meta["distinct_tags_kept"] == 3


# -- the cache itself ------------------------------------------------------------------------------
def test_judge_all_time_limit_then_resume(tmp_path):
    cache = JudgeCache(tmp_path)
    seen = []

    def compute(pos):
        seen.extend(pos)
        return [Judgement(float(i)) for i in pos]

    ids, inputs = [f"r{i}" for i in range(6)], [f"text {i}" for i in range(6)]
    with pytest.raises(JudgeTimeLimit, match="rerun to continue"):
        judge_all(cache, kind="k", model="m", version="v", record_ids=ids, inputs=inputs, compute=compute,
                  batch_size=2, time_limit=0.0, progress=False)
    assert seen == [0, 1] and cache.count("k") == 2
    judged, stats = judge_all(cache, kind="k", model="m", version="v", record_ids=ids, inputs=inputs,
                              compute=compute, batch_size=2, progress=False)
    assert [j.value for j in judged] == [0, 1, 2, 3, 4, 5]
    assert stats.from_cache == 2 and stats.computed == 4 and seen == [0, 1, 2, 3, 4, 5]
    _, stats = judge_all(cache, kind="k", model="other-model", version="v", record_ids=ids, inputs=inputs,
                         compute=compute, batch_size=6, progress=False)
    assert stats.computed == 6  # another judge model is another key


def test_unparseable_judgements_get_the_lowest_score(make_ctx):
    ctx = make_ctx(make_rows(5), generator=FakeJudge(lambda p: "???"))
    r = get_selector("alpagasus").select(ctx, 2)
    assert np.all(r.scores == -1) and r.metadata["judge"]["unparseable"] == 5 and len(r.selected) == 2
