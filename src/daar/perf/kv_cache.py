"""A KV cache for the decoding loop that writes each new token in place instead of re-concatenating.

Why our own layer: transformers' DynamicLayer appends a token with `torch.cat`, which copies the whole
cache of every layer at every step (for 49 rows, ~250 positions and 30 layers that is ~0.5 GB read and
written per token; the profiler put `aten::cat` at 16 % of a synthesis batch). Its StaticCache avoids
the copy but attends over its full preallocated length at every step and cannot drop ended rows. This
layer keeps one buffer per layer with room for the whole prompt plus the new tokens, writes each step
into the next free position, and hands attention a view of the filled part: the same values, the same
lengths, so the model computes exactly what it computes with DynamicLayer (tests/perf/test_kv_cache.py
checks the tokens and logits). Rows that end are dropped as before (`batch_select_indices`).
"""

from __future__ import annotations

from typing import Any

try:
    from transformers.cache_utils import Cache, DynamicLayer
except ImportError:  # transformers < 4.56: caches are lists of tensors, not layers (DynamicCache is kept there)
    Cache = DynamicLayer = None


def growing_cache(model_config: Any, capacity: int) -> Any | None:
    """A cache of GrowingLayer (room for `capacity` positions per row, more if needed), or None where this
    transformers has no pluggable cache layers or the model has sliding-window layers (the caller keeps
    DynamicCache there)."""
    if DynamicLayer is None:
        return None
    cfg = model_config.get_text_config(decoder=True) if hasattr(model_config, "get_text_config") else model_config
    if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
        return None  # sliding-window layers crop their cache: DynamicCache knows how
    if set(getattr(cfg, "layer_types", None) or ["full_attention"]) != {"full_attention"}:
        return None  # hybrid stacks (linear attention, state-space layers) keep caches of their own kinds
    try:
        return Cache(layers=[GrowingLayer(capacity) for _ in range(cfg.num_hidden_layers)])
    except TypeError:  # a Cache constructor of another shape
        return None


class GrowingLayer(DynamicLayer or object):
    """One layer's keys and values in a [rows, heads, capacity, dim] buffer; `keys`/`values` are views of
    the first `length` positions (what DynamicLayer would hold as fresh tensors)."""

    def __init__(self, capacity: int, **kwargs):
        super().__init__(**kwargs)
        self.capacity, self.length = capacity, 0
        self._k = self._v = None

    def lazy_initialization(self, key_states, value_states) -> None:
        self.device = key_states.device
        self.is_initialized = True

    def _room(self, need: int, key_states, value_states) -> None:
        if self._k is not None and need <= self._k.shape[-2]:
            return
        cap = max(need, self.capacity, 2 * (self._k.shape[-2] if self._k is not None else 0))
        k = key_states.new_empty((*key_states.shape[:2], cap, key_states.shape[-1]))
        v = value_states.new_empty((*value_states.shape[:2], cap, value_states.shape[-1]))
        if self.length:
            k[:, :, : self.length].copy_(self._k[:, :, : self.length])
            v[:, :, : self.length].copy_(self._v[:, :, : self.length])
        self._k, self._v = k, v

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n, new = self.length, key_states.shape[-2]
        self._room(n + new, key_states, value_states)
        self._k[:, :, n : n + new].copy_(key_states)
        self._v[:, :, n : n + new].copy_(value_states)
        self.length = n + new
        self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def reset(self) -> None:
        self._k = self._v = self.keys = self.values = None
        self.length, self.is_initialized = 0, False

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0 or not self.is_initialized:
            raise ValueError("GrowingLayer.crop takes a negative count of tokens to remove")
        self.length = max(0, self.length + tokens_to_remove)
        self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("GrowingLayer is for daar's decoding loop (no beam search)")

    def batch_select_indices(self, indices) -> None:
        """Keep rows `indices`: their filled positions move into a buffer of the same capacity."""
        if not self.length:
            return
        k = self._k.new_empty((len(indices), *self._k.shape[1:]))
        v = self._v.new_empty((len(indices), *self._v.shape[1:]))
        k[:, :, : self.length].copy_(self.keys.index_select(0, indices))
        v[:, :, : self.length].copy_(self.values.index_select(0, indices))
        self._k, self._v = k, v
        self.keys, self.values = k[:, :, : self.length], v[:, :, : self.length]
