"""Pooling of token states into one vector per sequence."""

from __future__ import annotations

POOLINGS = ("mean", "last", "mean-padded")


def pool(hidden, mask, how: str):
    """hidden: [B, T, D] float tensor; mask: [B, T] 0/1 (1 = real token). Returns [B, D].

    mean: average over real tokens only. last: the last real token, wherever the padding sits
    (left or right). mean-padded: average over every position, pads included, as the reference
    scripts do (only meaningful when sequences are padded to a fixed length).
    """
    import torch

    if how == "mean":
        m = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    if how == "last":
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = (positions * mask.long()).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if how == "mean-padded":
        return hidden.mean(1)
    raise ValueError(f"unknown pooling '{how}'; use one of {', '.join(POOLINGS)}")
