"""Length-bucketed batches: the one batcher every forward pass over many sequences uses.

A padded batch costs (rows x its longest member) token cells, so sequences of similar length go
together and each batch pads only to its own longest member. `max_tokens` also caps that product,
so a few very long sequences come in small batches instead of one batch too big for memory.
Feature extraction, LM scoring and held-out loss all cut their batches here, so a change to the
rule (and its effect on speed or memory) shows up in every one of them at once.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["length_batches", "longest_first", "by_length"]


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Positions 0..n-1 cut, in order, into runs of at most `batch_size` whose padded size
    (rows x longest member) stays within `max_tokens` (None or 0: no cap; a single sequence longer
    than the cap still gets a batch of its own).

    Cuts only between neighbours, so sort `lengths` first (`longest_first`) to bucket by length.
    """
    out: list[list[int]] = []
    cur: list[int] = []
    cur_max = 0
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


def longest_first(lengths: Sequence[int]) -> list[int]:
    """Positions sorted by length, longest first, ties in input order (a stable, reproducible order).

    Longest first puts the biggest batch at the start, so an out-of-memory error comes at once.
    """
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def by_length(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Batches of positions into `lengths` (any order): sorted longest first, then `length_batches`."""
    order = longest_first(lengths)
    return [[order[p] for p in batch] for batch in length_batches([lengths[i] for i in order], batch_size,
                                                                  max_tokens)]
