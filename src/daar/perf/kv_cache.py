"""A KV cache for the decoding loop that writes each new token in place instead of re-concatenating.

Why our own layer: transformers' DynamicLayer appends a token with `torch.cat`, which copies the whole
cache of every layer at every step (for 49 rows, ~250 positions and 30 layers that is ~0.5 GB read and
written per token; the profiler put `aten::cat` at 16 % of a synthesis batch). Its StaticCache avoids
the copy but attends over its full preallocated length at every step and cannot drop ended rows. This
layer keeps one buffer per layer with room for the whole prompt plus the new tokens, writes each step
into the next free position, and hands attention a view of the filled part: the same values, the same
lengths, so the model computes exactly what it computes with DynamicLayer (tests/perf/test_generation.py
checks the decoded tokens against DynamicCache, and each step's keys and values against DynamicLayer's).
Rows that end are dropped as before (`batch_select_indices`).
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

    def _hold(self, keys, values, cap: int) -> None:
        """New buffers with room for `cap` positions, holding `keys`/`values` (the filled positions) first."""
        self._k = keys.new_empty((*keys.shape[:2], cap, keys.shape[-1]))
        self._v = values.new_empty((*values.shape[:2], cap, values.shape[-1]))
        self._k[:, :, : keys.shape[-2]].copy_(keys)
        self._v[:, :, : values.shape[-2]].copy_(values)
        self._show()

    def _show(self) -> None:
        self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n, new = self.length, key_states.shape[-2]
        if self._k is None or n + new > self._k.shape[-2]:  # grow: at least double, so appends stay amortised
            cap = max(n + new, self.capacity, 2 * (self._k.shape[-2] if self._k is not None else 0))
            filled = (self.keys, self.values) if self._k is not None else (key_states[:, :, :0], value_states[:, :, :0])
            self._hold(*filled, cap)
        self._k[:, :, n : n + new].copy_(key_states)
        self._v[:, :, n : n + new].copy_(value_states)
        self.length = n + new
        self._show()
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
        self._show()

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("GrowingLayer is for daar's decoding loop (no beam search)")

    def batch_select_indices(self, indices) -> None:
        """Keep rows `indices`: their filled positions move into a buffer of the same capacity."""
        if not self.length:
            return
        self._hold(self.keys.index_select(0, indices), self.values.index_select(0, indices), self._k.shape[-2])
