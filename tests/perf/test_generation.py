"""The local backend's KV-cache choice changes speed, not text: greedy outputs are identical."""

from __future__ import annotations

import pytest

from daar.synth.backends import HFBackend


@pytest.mark.parametrize("cache", ["static"])
def test_cache_implementation_keeps_greedy_output(tiny_llama, cache):
    chats = [[{"role": "user", "content": "Solve for x: 3x + 5 = 20."}], [{"role": "user", "content": "def add"}]]
    plain = HFBackend(tiny_llama, dtype="float32", device="cpu", batch_size=2)
    other = HFBackend(tiny_llama, dtype="float32", device="cpu", batch_size=2, cache_implementation=cache)
    want = plain.generate(chats, max_new_tokens=12, temperature=0)
    assert other.generate(chats, max_new_tokens=12, temperature=0) == want
    assert all(len(o[0]) > 0 for o in want)
