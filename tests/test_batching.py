"""The shared length-bucketed batcher gives exactly the batches the per-module copies it replaced gave.

Feature extraction, LM scoring and held-out loss each had their own batcher; a different batch
changes padding and so (slightly) the numbers, so the shared one must cut the same batches.
"""

from __future__ import annotations

import random

from daar.batching import by_length, length_batches, longest_first


def _old_extract_batches(lengths, batch_size, max_tokens):
    """features/extract.py `_batches` before daar.batching (input sorted by length)."""
    out, cur, cur_max = [], [], 0
    for i, n in enumerate(lengths):
        new_max = max(cur_max, n)
        if cur and (len(cur) >= batch_size or (max_tokens and new_max * (len(cur) + 1) > max_tokens)):
            out.append(cur)
            cur, new_max = [], n
        cur.append(i)
        cur_max = new_max
    if cur:
        out.append(cur)
    return out


def _old_lm_scoring_batches(lengths, batch_size, max_tokens=8192):
    """selectors/baselines/lm_scoring.py `_batches` before daar.batching (sorts for itself)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    out, cur = [], []
    for i in order:
        if cur and (len(cur) >= batch_size or lengths[cur[0]] * (len(cur) + 1) > max_tokens):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def test_batches_group_by_size_and_token_budget():
    lengths = [50, 40, 30, 20, 10, 5, 5]
    assert length_batches(lengths, 3) == [[0, 1, 2], [3, 4, 5], [6]]
    # the first member is the longest, so a batch of b rows costs b * first_length padded tokens
    assert length_batches(lengths, 10, 100) == [[0, 1], [2, 3, 4], [5, 6]]
    assert length_batches([500, 10], 4, 100) == [[0], [1]]  # a single over-long row still gets its own batch
    assert length_batches([], 4) == []
    assert by_length([], 4) == []


def test_longest_first_is_stable():
    assert longest_first([3, 7, 3, 7, 1]) == [1, 3, 0, 2, 4]


def test_same_batches_as_the_replaced_copies():
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randrange(0, 60)
        lengths = [rng.choice([0, 1, 1, 2, 5, 17, 64, 300, 2048]) if rng.random() < 0.3 else rng.randrange(1, 600)
                   for _ in range(n)]
        batch_size = rng.randrange(1, 20)
        max_tokens = rng.choice([None, 0, 512, 4096, 16384])
        # feature extraction: its own longest-first order, then cut (as embed_token_ids does)
        order = sorted(range(n), key=lambda i: -lengths[i])
        assert longest_first(lengths) == order
        sorted_lengths = [lengths[i] for i in order]
        assert length_batches(sorted_lengths, batch_size, max_tokens) == _old_extract_batches(
            sorted_lengths, batch_size, max_tokens)
        # LM scoring: unsorted lengths in, batches of original positions out
        cap = rng.choice([8192, 512])
        assert by_length(lengths, batch_size, cap) == _old_lm_scoring_batches(lengths, batch_size, cap)
        # held-out loss: ascending order, fixed-size chunks
        asc = sorted(lengths)
        assert length_batches(asc, batch_size) == [list(range(i, min(i + batch_size, n)))
                                                    for i in range(0, n, batch_size)]
