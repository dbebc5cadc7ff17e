"""The roofline's FLOP counts (hand-computed for a small config) and its peak measurement."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from daar.perf.roofline import (
    decoder_flops,
    fraction,
    fraction_line,
    linear_params_per_layer,
    lm_head_flops,
    machine_info,
    measure_peak,
)

CFG = SimpleNamespace(hidden_size=8, num_attention_heads=2, num_key_value_heads=1, intermediate_size=16,
                      num_hidden_layers=3, vocab_size=100)


def test_linear_params_of_a_gqa_layer():
    # q 8x8, k and v 8x4 each (one KV head of dim 4), o 8x8, gate/up/down 8x16 each
    assert linear_params_per_layer(CFG) == 64 + 32 + 32 + 64 + 3 * 128


def test_decoder_flops_counts_real_tokens_and_causal_pairs():
    per_layer_linear = 2 * 576 * (3 + 5)  # 2 x params x tokens
    attention = 2 * 2 * 2 * 4 * (3 * 4 // 2 + 5 * 6 // 2)  # 2 x (QK + AV) x heads x head_dim x pairs
    assert decoder_flops(CFG, [3, 5]) == 3 * (per_layer_linear + attention)
    assert decoder_flops(CFG, [3, 5], layers=1) == per_layer_linear + attention
    assert lm_head_flops(CFG, 10) == 2 * 8 * 100 * 10


def test_peak_and_fraction_line():
    peak = measure_peak("float32", shapes=[(64, 32, 48)], min_seconds=0.01, repeats=1)
    assert peak.tflops > 0 and peak.tflops_cpu > 0 and "64x32x48" in peak.per_shape
    line = fraction_line("x", 2.0, 1e12, peak, records=10, tokens=100, cpu_seconds=4.0)
    assert "5.0 records/s" in line and "50 tokens/s" in line and "% of the float32 peak" in line
    assert fraction(2.0, 1e12, peak) == pytest.approx(0.5 / peak.tflops)
    info = machine_info()
    assert set(info.cpu_flags) == {"avx512_bf16", "amx_bf16", "avx2"} and info.torch_threads >= 1
    assert "torch" in info.line()
