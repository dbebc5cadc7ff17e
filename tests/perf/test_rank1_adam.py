"""The fused outer-product Adam kernel (daar/perf/rank1_adam.c) steps weights as torch's fused Adam does.

Tolerance: none. The heads are bit for bit the plain autograd loop (tests/method/test_stacked_heads.py);
the kernel is only allowed to make them faster, so every comparison here is exact equality.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch

from daar.method import mlp
from daar.method.stacked import StackedAdam, StackedMLP, member_stack
from daar.perf import native

needs_cc = pytest.mark.skipif(native._compiler() is None, reason="no C compiler on this machine")


@pytest.fixture
def fresh_kernel(monkeypatch):
    """A clean per-process kernel slot, restored afterwards (other tests keep the real one)."""
    monkeypatch.setattr(native, "_loaded", {})
    return native


@needs_cc
def test_the_kernel_builds_and_passes_its_self_check_here():
    kernel = native.rank1_adam()
    assert kernel is not None, "the kernel did not build or rounds unlike torch here (see the log)"
    assert kernel.fields == 11
    assert native.same_as_torch(kernel, steps=20)


@needs_cc
@pytest.mark.parametrize("parts", [1, 2, 3, 5])
def test_layers_of_several_members_and_parts_equal_torch_fused_adam(parts):
    kernel = native.rank1_adam()
    assert kernel is not None
    gen = torch.Generator().manual_seed(parts)
    shapes, members, lr = [(32, 48), (16, 32), (7, 16)], 3, 3e-3  # 7 rows: parts cut inside and across members
    ref = [member_stack(members, s) for s in shapes]
    for p in ref:
        p.copy_(torch.randn(p.shape, generator=gen))
    mine = [p.clone() for p in ref]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in mine]
    grads = [torch.zeros_like(p) for p in ref]
    for p, g in zip(ref, grads, strict=True):
        p.grad = g
    opt = torch.optim.Adam(ref, lr=lr, betas=native.BETAS, eps=native.EPS, fused=True)
    desc = np.zeros((len(shapes), kernel.fields), dtype=np.int64)
    for t in range(1, 9):
        alive = []  # the operands must outlive the kernel call that reads them through raw pointers
        for row, s, p, (m, v), g in zip(desc, shapes, mine, moments, grads, strict=True):
            # operands as the stacked backward leaves them: [members, 1, n] views with a member stride
            delta = torch.randn(members, 1, s[0] + 3, generator=gen)[:, :, : s[0]] * 10.0 ** float(t % 5 - 3)
            x = torch.relu(torch.randn(members, 1, s[1], generator=gen))
            torch.mul(delta.transpose(1, 2), x, out=g)
            row[:] = [p.data_ptr(), m.data_ptr(), v.data_ptr(), s[0], s[1], members, p.stride(0),
                      delta.data_ptr(), delta.stride(0), x.data_ptr(), x.stride(0)]
            alive.append((delta, x))
        with torch.no_grad():
            opt.step()
        for k in reversed(range(parts)):  # any order: the parts touch disjoint rows
            kernel.step(desc, native.adam_coefficients(lr, t), k, parts)
    for p, q, (m, v) in zip(ref, mine, moments, strict=True):
        state = opt.state[p]
        assert torch.equal(p.detach(), q)
        assert torch.equal(state["exp_avg"], m)
        assert torch.equal(state["exp_avg_sq"], v)


def _heads_with(monkeypatch, enabled: bool, d: int, loss: str):
    monkeypatch.setattr(native, "ENABLED", enabled)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((90, d)) * 2).astype(np.float32)
    labels = (x @ rng.standard_normal((d, 3))).argmax(1).astype(np.int64)
    y, out = (labels, 3) if loss == "ce" else (np.tanh(x[:, 0] - x[:, 1]).astype(np.float32), 1)
    s = mlp.HeadTraining(lr=1e-3, batch_size=1, epochs=2, val_fraction=0.05, seed=4, ensemble=2)
    return mlp._fit_stacked(x, y, out, loss, s, "t", [0, 1])


@needs_cc
@pytest.mark.parametrize(("d", "loss"), [(32, "ce"), (48, "mse"), (30, "ce")])
def test_heads_trained_with_the_kernel_are_the_heads_trained_without(monkeypatch, d, loss):
    """d = 32 and 48: every weight layer goes through the kernel; d = 30: the first layer's member slices end
    mid-vector and stay on torch's Adam, the others take the kernel, in the same step."""
    used = []
    real_init = StackedAdam.__init__

    def spy(self, *a, **k):
        real_init(self, *a, **k)
        used.append(list(self.fused))

    monkeypatch.setattr(StackedAdam, "__init__", spy)
    with_kernel = _heads_with(monkeypatch, True, d, loss)
    assert used and used[0], used  # the kernel really stepped some layers
    if d == 30:
        assert 0 not in used[0]
    without = _heads_with(monkeypatch, False, d, loss)
    assert used[-1] == []
    for a, b in zip(with_kernel, without, strict=True):
        assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
        assert a.history == b.history


def test_no_compiler_or_a_failed_build_falls_back_to_torch(monkeypatch, fresh_kernel, tmp_path, caplog):
    monkeypatch.setenv("DAAR_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "_compiler", lambda: None)
    with caplog.at_level(logging.INFO, logger="daar.perf.native"):
        assert native.rank1_adam() is None
    assert "no C compiler" in caplog.text

    fresh_kernel._loaded.clear()
    monkeypatch.setattr(native, "_compiler", lambda: shutil.which("false") or "/bin/false")
    with caplog.at_level(logging.WARNING, logger="daar.perf.native"):
        assert native.rank1_adam() is None
    assert "did not build" in caplog.text
    assert not list((tmp_path / "native").glob("*.tmp"))  # a failed build leaves no partial file

    net = StackedMLP([mlp._initial_net(16, 3, 0)], product_threads=1, elementwise_threads=1)
    opt = StackedAdam(net, 1e-3, batch_size=1, make_adam=mlp.make_adam)
    assert opt.kernel is None and opt.fused == [] and net.rank_one == set()


@needs_cc
def test_a_kernel_that_rounds_differently_is_refused(monkeypatch, fresh_kernel, tmp_path, caplog):
    monkeypatch.setenv("DAAR_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "same_as_torch", lambda kernel: False)
    with caplog.at_level(logging.WARNING, logger="daar.perf.native"):
        assert native.rank1_adam() is None
    assert "rounds unlike" in caplog.text


@needs_cc
def test_the_built_object_is_cached_per_source(monkeypatch, tmp_path):
    monkeypatch.setenv("DAAR_CACHE", str(tmp_path))
    cc = native._compiler()
    first = native._build(cc)
    stamp = first.stat().st_mtime_ns
    assert native._build(cc) == first and first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert first.is_relative_to(tmp_path / "native")
