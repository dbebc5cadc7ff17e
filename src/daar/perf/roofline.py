"""The roofline every speed benchmark prints: the machine's own matrix-product peak, measured in the same
process, beside the FLOPs of the timed work.

Why in the same process: on a shared or throttled machine an absolute records/s says little, but the
ratio of the timed work's FLOP rate to a plain matrix product's, both measured minutes apart under the
same load, says how close the code runs to what the hardware does at that moment. The peak is measured
with `torch.nn.functional.linear` (the kernel a model's Linear layers call) on the model's own shapes
and on square ones, for each dtype asked for, so the fraction is against the fastest kernel the
machine has for that dtype (bf16 on AVX-512 BF16 CPUs and GPUs, fp32 on AVX2-only CPUs).

FLOPs are model FLOPs: 2 x multiply-accumulates of the linear layers for every *real* (unpadded) token,
plus causal attention (QK^T and AV over the positions before each token). Padding, norms and
activations count for nothing, so wasted work lowers the fraction instead of hiding in it.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MachineInfo", "Peak", "machine_info", "measure_peak", "measure_peaks", "best_peak", "model_shapes",
           "decoder_flops", "lm_head_flops", "fraction", "fraction_line", "linear_params_per_layer"]


@dataclass
class MachineInfo:
    cpu_model: str
    cpu_flags: dict[str, bool]
    cpus: int
    affinity: int
    torch_threads: int
    torch_version: str
    transformers_version: str
    gpu: str | None
    load_average: float

    def line(self) -> str:
        flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in self.cpu_flags.items())
        gpu = f"; GPU {self.gpu}" if self.gpu else ""
        return (f"machine: {self.cpu_model} ({flags}); {self.affinity} of {self.cpus} CPUs usable, torch threads "
                f"{self.torch_threads}; torch {self.torch_version}, transformers {self.transformers_version}{gpu}; "
                f"load average {self.load_average:.2f}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpuinfo() -> tuple[str, set[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), set()
    model, flags = platform.processor() or "unknown CPU", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model in ("unknown CPU", "", platform.processor()):
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def machine_info() -> MachineInfo:
    """What the figures were taken on: CPU model and the flags that decide the fast dtype, threads, versions."""
    import torch
    import transformers

    model, flags = _cpuinfo()
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return MachineInfo(cpu_model=model, cpu_flags={f: f in flags for f in ("avx512_bf16", "amx_bf16", "avx2")},
                       cpus=os.cpu_count() or 1, affinity=affinity, torch_threads=torch.get_num_threads(),
                       torch_version=torch.__version__, transformers_version=transformers.__version__, gpu=gpu,
                       load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))


@dataclass
class Peak:
    """The best matrix-product rate measured for one dtype on one device (TFLOP/s), per shape too."""

    dtype: str
    device: str
    tflops: float
    per_shape: dict[str, float] = field(default_factory=dict)
    # per CPU second of the process (all its threads): on a shared CPU the wall rate follows the other
    # jobs, this one much less, so fractions on this basis are the ones to compare across runs
    tflops_cpu: float = 0.0
    bandwidth_gbs: float | None = None  # GPU only: device memory copy bandwidth

    def line(self) -> str:
        shapes = ", ".join(f"{k} {v:.3f}" for k, v in self.per_shape.items())
        bw = f"; memory copy {self.bandwidth_gbs:.0f} GB/s" if self.bandwidth_gbs else ""
        cpu = f", {self.tflops_cpu:.3f} per CPU second" if self.device == "cpu" and self.tflops_cpu else ""
        return f"peak {self.dtype} on {self.device}: {self.tflops:.3f} TFLOP/s{cpu} (m x k x n: {shapes}){bw}"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _time_linear(m: int, k: int, n: int, dtype, device: str, min_seconds: float,
                 repeats: int) -> tuple[float, float]:
    """Best TFLOP/s of `linear(x[m,k], w[n,k])` over `repeats` windows of at least `min_seconds` each:
    per wall second and per CPU second of this process (the second is what a shared CPU still shows)."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(m, k, generator=gen).to(device=device, dtype=dtype)
    w = torch.randn(n, k, generator=gen).to(device=device, dtype=dtype)
    flops = 2.0 * m * k * n
    with torch.inference_mode():
        torch.nn.functional.linear(x, w)  # first call: kernel selection, packing, allocation
        _sync(device)
        best, best_cpu = 0.0, 0.0
        for _ in range(repeats):
            iters, t0, c0 = 0, time.perf_counter(), time.process_time()
            while True:
                torch.nn.functional.linear(x, w)
                iters += 1
                if iters % 4 == 0:
                    _sync(device)
                    elapsed = time.perf_counter() - t0
                    if elapsed >= min_seconds:
                        break
            cpu = max(time.process_time() - c0, 1e-9)
            best, best_cpu = max(best, flops * iters / elapsed / 1e12), max(best_cpu, flops * iters / cpu / 1e12)
    return best, best_cpu


def _bandwidth(device: str, mib: int = 1024) -> float | None:
    """Device memory bandwidth (GB/s, read + write) of a large copy; GPUs only (CPU figures mislead here)."""
    if not device.startswith("cuda"):
        return None
    import torch

    a = torch.empty(mib * 2**20, dtype=torch.uint8, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    torch.cuda.synchronize()
    t0, iters = time.perf_counter(), 10
    for _ in range(iters):
        b.copy_(a)
    torch.cuda.synchronize()
    return 2 * a.numel() * iters / (time.perf_counter() - t0) / 1e9


def cpu_stream_bandwidth(mib: int = 512, repeats: int = 5) -> float:
    """The machine's streaming memory bandwidth (GB/s, read + write) for a float32 a += b over arrays
    far larger than any cache, the access pattern of an Adam pass; the best of `repeats`. Unlike a
    copy (`_bandwidth`, GPUs), it is the figure to set a CPU optimiser's streaming passes against."""
    import torch

    a = torch.zeros(mib * 2**18)
    b = torch.ones_like(a)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a.add_(b)
        best = max(best, 3 * a.numel() * 4 / (time.perf_counter() - t0) / 1e9)  # read a, read b, write a
    return best


def model_shapes(config, tokens: int = 2048) -> list[tuple[int, int, int]]:
    """The (m, k, n) products a decoder layer runs on `tokens` rows: MLP up/gate, MLP down, attention out."""
    h = int(config.hidden_size)
    i = int(getattr(config, "intermediate_size", 4 * h) or 4 * h)
    return [(tokens, h, i), (tokens, i, h), (tokens, h, h)]


DEFAULT_SQUARE = (1024, 2048)


def measure_peak(dtype: str, device: str = "cpu", shapes: Iterable[tuple[int, int, int]] = (),
                 min_seconds: float = 0.25, repeats: int = 3) -> Peak:
    """Matrix-product peak of `dtype` on `device`: the best over square shapes and the given model shapes."""
    import torch

    tdtype = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}[dtype]
    per_shape: dict[str, float] = {}
    best_cpu = 0.0
    all_shapes = [(s, s, s) for s in DEFAULT_SQUARE] + list(shapes)
    if device.startswith("cuda"):  # a GPU needs big products to fill; the CPU's peak is reached by 1024
        all_shapes += [(8192, 8192, 8192)]
    for m, k, n in dict.fromkeys(all_shapes):
        per_shape[f"{m}x{k}x{n}"], cpu = _time_linear(m, k, n, tdtype, device, min_seconds, repeats)
        best_cpu = max(best_cpu, cpu)
    return Peak(dtype=dtype, device=device, tflops=max(per_shape.values()), per_shape=per_shape,
                tflops_cpu=best_cpu, bandwidth_gbs=_bandwidth(device))


def measure_peaks(dtypes: Sequence[str], device: str = "cpu", shapes: Iterable[tuple[int, int, int]] = (),
                  min_seconds: float = 0.25, repeats: int = 3) -> dict[str, Peak]:
    shapes = list(shapes)
    return {d: measure_peak(d, device, shapes, min_seconds, repeats) for d in dtypes}


def best_peak(peaks: dict[str, Peak]) -> Peak:
    """The fastest dtype's peak: what the machine can do at all, so the one to compare with."""
    return max(peaks.values(), key=lambda p: p.tflops)


def linear_params_per_layer(config) -> int:
    """Weights of one decoder layer's linear maps (q, k, v, o and a gated MLP), from the config."""
    h = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    kv = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or h // heads)
    i = int(getattr(config, "intermediate_size", 4 * h) or 4 * h)
    attention = h * heads * head_dim + 2 * h * kv * head_dim + heads * head_dim * h
    return attention + 3 * h * i  # gate, up, down (Llama / Qwen2 / Mistral family)


def decoder_flops(config, lengths: Sequence[int], layers: int | None = None) -> float:
    """Model FLOPs of running `layers` decoder layers (default: the config's) over sequences of `lengths`
    real tokens each: linear layers on every token plus causal attention (each token attends to itself
    and the tokens before it)."""
    n_layers = int(config.num_hidden_layers if layers is None else layers)
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or int(config.hidden_size) // heads)
    tokens = sum(int(n) for n in lengths)
    pairs = sum(int(n) * (int(n) + 1) // 2 for n in lengths)
    linear = 2.0 * linear_params_per_layer(config) * tokens
    attention = 2.0 * 2 * heads * head_dim * pairs  # QK^T and AV
    return n_layers * (linear + attention)


def lm_head_flops(config, positions: int) -> float:
    """The vocabulary projection over `positions` (what a causal-LM forward computes even when discarded)."""
    return 2.0 * int(config.hidden_size) * int(config.vocab_size) * positions


def fraction(seconds: float, flops: float, peak: Peak) -> float:
    """Achieved FLOP rate of the timed work over the peak (both per wall second)."""
    return flops / seconds / 1e12 / peak.tflops


def fraction_line(label: str, seconds: float, flops: float, peak: Peak, *, records: int | None = None,
                  tokens: int | None = None, cpu_seconds: float | None = None) -> str:
    """`label: records/s, tokens/s, achieved TFLOP/s = x % of the peak` (the one format every benchmark prints);
    with `cpu_seconds` (the process CPU time of the timed work) also the fraction per CPU second."""
    parts = [f"{seconds:.2f} s"]
    if records:
        parts.append(f"{records / seconds:.1f} records/s")
    if tokens:
        parts.append(f"{tokens / seconds:.0f} tokens/s")
    achieved = flops / seconds / 1e12
    parts.append(f"{achieved:.3f} TFLOP/s = {100 * achieved / peak.tflops:.1f} % of the {peak.dtype} peak "
                 f"{peak.tflops:.3f}")
    if cpu_seconds and peak.tflops_cpu:
        parts.append(f"per CPU second {100 * flops / cpu_seconds / 1e12 / peak.tflops_cpu:.1f} %")
    return f"{label}: " + ", ".join(parts)
