"""Native kernels daar compiles on first use with the machine's C compiler, and loads with ctypes.

Why our own code: a batch-1 head step is bound by memory traffic, and torch has no fused "outer-product
gradient + Adam" (it writes every weight's gradient, then fused Adam reads it back; torch.compile was
slower here and took 51 s to compile). The kernel (rank1_adam.c) is plain C with no torch headers, so it
compiles in well under a second; the shared object is cached per source, flags, compiler and CPU under
$DAAR_CACHE/native (written atomically). Before any head uses it, `rank1_adam()` steps a small layer with
the kernel and with torch's fused Adam and keeps the kernel only if every weight and moment is bit for bit
the same on this machine; with no compiler, a failed build or a mismatch, heads use torch's path (same
results, slower) and the reason is logged once.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("rank1_adam.c")
# -ffp-contract=off: no fma but the ones the source writes (they are the ones torch's build makes)
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC"]
ENABLED = True  # False: heads use torch's path (tests and benchmarks compare the two)
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which the heads use

_lock = threading.Lock()
_loaded: dict[str, object] = {}


class Rank1Adam:
    """The loaded kernel: `step(desc, coefficients, part, parts)` runs part `part` of `parts` of one step."""

    def __init__(self, lib: ctypes.CDLL):
        self._fn = lib.daar_rank1_adam
        self._fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
        self._fn.restype = None
        lib.daar_rank1_adam_fields.restype = ctypes.c_int64
        self.fields = int(lib.daar_rank1_adam_fields())

    def step(self, desc: np.ndarray, coefficients: np.ndarray, part: int = 0, parts: int = 1) -> None:
        # ctypes releases the GIL for the call, so parts run side by side from Python threads
        self._fn(desc.ctypes.data, desc.shape[0], coefficients.ctypes.data, part, parts)


def adam_coefficients(lr: float, step: int) -> np.ndarray:
    """The per-step constants of torch's fused Adam, computed as it computes them (double, then float)."""
    b1, b2 = BETAS
    bc1 = 1 - b1 ** float(step)
    bc2_sqrt = math.sqrt(1 - b2 ** float(step))
    return np.array([1 - b1, b2, 1 - b2, bc2_sqrt, EPS, -(lr / bc1)], dtype=np.float32)


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _cpu_identity() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))
    except OSError:
        return platform.processor()


def _build(cc: str) -> Path:
    from daar.io import atomic_write
    from daar.models.loading import cache_dir

    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout.split("\n")[0]
    key = hashlib.sha256("\0".join([SOURCE.read_text(), " ".join(FLAGS), version, platform.machine(),
                                    _cpu_identity()]).encode()).hexdigest()[:16]
    out = cache_dir() / "native" / f"rank1_adam-{key}.so"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(prefix="daar-native-") as tmp:
        built = Path(tmp) / out.name
        run = subprocess.run([cc, *FLAGS, "-o", str(built), str(SOURCE), "-lm"], capture_output=True, text=True,
                             timeout=120)
        if run.returncode or not built.exists():
            raise RuntimeError(f"{cc} failed: {run.stderr.strip()[-500:]}")
        # the one atomic writer: another process building the same key at once is harmless
        atomic_write(out, built.read_bytes())
    return out


def same_as_torch(kernel: Rank1Adam, steps: int = 12) -> bool:
    """Whether the kernel steps a [2, 16, 48] stack bit for bit as torch's fused Adam does (gradients of
    six orders of magnitude, from the first step on, so bias correction and the sqrt path are exercised)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    shape, lr = (16, 48), 1e-3
    ref = torch.randn(2, *shape, generator=gen)  # member slices of 768 floats: whole 64-byte lines, aligned
    mine, grad = ref.clone(), torch.zeros_like(ref)
    ref.grad = grad
    opt = torch.optim.Adam([ref], lr=lr, betas=BETAS, eps=EPS, fused=True)
    m, v = torch.zeros_like(ref), torch.zeros_like(ref)
    desc = np.zeros((1, kernel.fields), dtype=np.int64)
    for t in range(1, steps + 1):
        delta = torch.randn(2, 1, shape[0], generator=gen) * 10.0 ** float(t % 6 - 4)
        x = torch.relu(torch.randn(2, 1, shape[1], generator=gen))
        torch.mul(delta.transpose(1, 2), x, out=grad)
        with torch.no_grad():
            opt.step()
        desc[0] = [mine.data_ptr(), m.data_ptr(), v.data_ptr(), shape[0], shape[1], 2, mine.stride(0),
                   delta.data_ptr(), delta.stride(0), x.data_ptr(), x.stride(0)]
        kernel.step(desc, adam_coefficients(lr, t), t % 2, 2)  # both halves, out of order
        kernel.step(desc, adam_coefficients(lr, t), (t + 1) % 2, 2)
    state = opt.state[ref]
    return bool(torch.equal(ref.detach(), mine) and torch.equal(state["exp_avg"], m)
                and torch.equal(state["exp_avg_sq"], v))


def rank1_adam() -> Rank1Adam | None:
    """The fused outer-product Adam kernel, built and checked once per process; None where it cannot be used."""
    if not ENABLED:
        return None
    with _lock:
        if "rank1_adam" not in _loaded:
            _loaded["rank1_adam"] = _load()
        return _loaded["rank1_adam"]  # type: ignore[return-value]


def _load() -> Rank1Adam | None:
    cc = _compiler()
    if cc is None:
        log.info("no C compiler (cc, gcc or $CC): heads train with torch's Adam (same results, slower)")
        return None
    try:
        kernel = Rank1Adam(ctypes.CDLL(str(_build(cc))))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log.warning("the fused head kernel did not build (%s): heads train with torch's Adam (same results, "
                    "slower)", exc)
        return None
    if not same_as_torch(kernel):
        log.warning("the fused head kernel rounds unlike torch's fused Adam on this machine: heads train with "
                    "torch's Adam")
        return None
    return kernel
