"""Golden tests for the model-free baselines: random, random-balanced and the length heuristics."""

from __future__ import annotations

import numpy as np
import pytest
from selector_helpers import make_rows

from daar.errors import ConfigError
from daar.selectors.base import get_selector
from daar.selectors.baselines.common import equal_shares

GOLDEN_BALANCED = [1, 2, 5, 7, 8, 9, 10, 11]  # seed 42: a = rows 0-5, b = 6-9, c = 10-11
ROWS = [
    {"instruction": "one two three", "input": "four", "output": "a"},  # 4 words / 1
    {"instruction": "one", "input": "", "output": "a b c d e"},  # 1 / 5
    {"instruction": "one two three four five", "input": "", "output": "a b"},  # 5 / 2
    {"instruction": "one two", "input": "three four", "output": "a b c d e"},  # 4 / 5
    {"instruction": "x", "input": "y", "output": "a b c"},  # 2 / 3
]


def test_random_is_seeded_and_golden(make_ctx):
    ctx = make_ctx(make_rows(12), seed=42)
    first = get_selector("random").select(ctx, 5)
    assert first.selected.tolist() == [0, 1, 2, 4, 8]
    assert get_selector("random").select(ctx, 5).selected.tolist() == [0, 1, 2, 4, 8]
    other = make_ctx(make_rows(12), seed=7)
    assert get_selector("random").select(other, 5).selected.tolist() != [0, 1, 2, 4, 8]


def test_instruction_length_golden(make_ctx):
    ctx = make_ctx(ROWS)
    r = get_selector("instruction-length").select(ctx, 3)
    # words of instruction + input: 4, 1, 5, 4, 2 -> 5 (row 2), then the tie 4/4 in pool order
    assert r.selected.tolist() == [0, 2, 3]
    assert r.scores.tolist() == [4, 1, 5, 4, 2]


def test_output_length_golden(make_ctx):
    ctx = make_ctx(ROWS)
    r = get_selector("output-length").select(ctx, 2)
    assert r.selected.tolist() == [1, 3]
    assert get_selector("output-length").select(ctx, 3).selected.tolist() == [1, 3, 4]


def test_equal_shares_exact_and_redistributes():
    assert equal_shares(np.array([4, 4, 4]), 7).tolist() == [3, 2, 2]  # remainder to the first group
    assert equal_shares(np.array([5, 3, 1]), 8).tolist() == [4, 3, 1]  # the small group's shortfall moves on
    assert equal_shares(np.array([0, 10, 2]), 9).tolist() == [0, 7, 2]
    with pytest.raises(ConfigError):
        equal_shares(np.array([1, 1]), 3)


def test_random_balanced_with_label_field(make_ctx):
    rows = make_rows(12)
    for r, src in zip(rows, "aaaaaabbbbcc", strict=True):
        r["source"] = src
    ctx = make_ctx(rows, label_field="source", seed=42)
    res = get_selector("random-balanced").select(ctx, 8)
    assert res.metadata["quotas"] == [3, 3, 2]
    groups = np.array(list("aaaaaabbbbcc"))[res.selected]
    assert sorted(groups.tolist()) == ["a"] * 3 + ["b"] * 3 + ["c"] * 2
    again = get_selector("random-balanced").select(ctx, 8)
    assert again.selected.tolist() == res.selected.tolist()
    assert res.selected.tolist() == GOLDEN_BALANCED


def test_random_balanced_small_group_gives_shortfall(make_ctx):
    rows = make_rows(9)
    for r, src in zip(rows, "aaaaabbbc", strict=True):
        r["source"] = src
    ctx = make_ctx(rows, label_field="source")
    res = get_selector("random-balanced").select(ctx, 8)
    assert res.metadata["quotas"] == [4, 3, 1]
    assert len(res.selected) == 8


def test_label_field_missing_is_a_clear_error(make_ctx):
    ctx = make_ctx(make_rows(6), label_field="nope")
    with pytest.raises(ConfigError, match="--label-field 'nope' is missing"):
        get_selector("random-balanced").select(ctx, 3)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown method 'nope'.*list-selectors"):
        get_selector("nope")
