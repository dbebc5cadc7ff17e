"""M copies of one ReLU MLP trained side by side as one stacked model (the head ensemble of mlp.py).

Layer l of every member becomes one weight [M, out, in] (member m's slice is its nn.Linear weight, the
same layout) and one bias [M, out]; a step takes one batch per member, [M, B, d], and each member's
gradient comes from its own batch and its own loss alone. One Adam steps every member: Adam is
element-wise, so nothing couples them.

Each member is bit for bit what training it alone gives (tests/method/test_stacked_heads.py), not just
close: batch-1 training at lr 1e-5 turns rounding differences into real ones (a version with batched
products, ~1e-7 apart per step, was 4e-3 apart in weights after 4,850 steps). So every product is the call
autograd makes for that member alone (addmm forward; mm for the input gradient; the weight gradient of a
batch of 1 is an exact outer product), the loss gradients are autograd's kernels, every member slice is
64-byte aligned like a tensor of its own (MKL rounds by alignment), and no Adam vector spans two members
(its scalar tail code rounds unlike its vector code: see parameters()).

Why stacking pays while the products stay per member: a batch-1 step is memory-bound, and the stack
removes the passes autograd adds over every weight (a fresh weight gradient added into .grad, .grad
zeroed each step), writes the outer products of all members in one broadcast multiply, steps Adam once
for all members, and pays the Python and autograd overhead once per step instead of once per member.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch

ALIGN_BYTES = 64  # torch's CPU allocator starts every tensor on a 64-byte boundary


def member_stack(members: int, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """An uninitialised [members, *shape] whose member slices are contiguous and each start on a 64-byte
    boundary, as a tensor of that shape alone does: MKL's products can round differently with other
    alignments (seen with d = 30), which a member trained alone would not see."""
    n = math.prod(shape)
    per = ALIGN_BYTES // torch.empty((), dtype=dtype).element_size()
    return torch.empty(members, -(-n // per) * per, dtype=dtype)[:, :n].unflatten(1, shape)


def _stacked(tensors: list[torch.Tensor]) -> torch.Tensor:
    out = member_stack(len(tensors), tuple(tensors[0].shape), tensors[0].dtype)
    for slot, t in zip(out, tensors, strict=True):
        slot.copy_(t)
    return out


def _whole(n: int, dtype=torch.float32) -> bool:
    """Whether a member slice of n elements is a whole number of 64-byte lines: then a plain stack is
    already aligned, and fused Adam's vectors never straddle two members or leave a member a scalar tail."""
    return (n * torch.empty((), dtype=dtype).element_size()) % ALIGN_BYTES == 0


def _aligned(t: torch.Tensor) -> torch.Tensor:
    """t [M, ...] as is where its member slices are already aligned, else an aligned copy."""
    if t.is_contiguous() and t.data_ptr() % ALIGN_BYTES == 0 and _whole(t[0].numel(), t.dtype):
        return t
    return _stacked(list(t))


class StackedMLP:
    """Stacked Linear / ReLU / ... / Linear members, initialised from `nets` (nn.Sequential, same shapes).

    The products run on `product_threads` OpenMP threads (their rounding depends on the count), the
    element-wise work (weight gradients, and the optimiser step inside elementwise()) on
    `elementwise_threads`, exact at any count. None leaves the caller's thread setting alone.
    """

    def __init__(self, nets: list, product_threads: int | None = None, elementwise_threads: int | None = None):
        self.product_threads, self.elementwise_threads = product_threads, elementwise_threads
        kinds = [type(mod).__name__ for mod in nets[0]]
        if kinds[0::2] != ["Linear"] * len(kinds[0::2]) or set(kinds[1::2]) - {"ReLU"} or kinds[-1] != "Linear":
            raise ValueError(f"StackedMLP needs Linear, ReLU, ..., Linear; got {kinds}")
        self.names = [name for name, mod in nets[0].named_children() if type(mod).__name__ == "Linear"]
        layers = [[mod for mod in net if type(mod).__name__ == "Linear"] for net in nets]
        with torch.no_grad():
            self.weights = [_stacked([m[i].weight for m in layers]) for i in range(len(self.names))]
            self.biases = [_stacked([m[i].bias for m in layers]) for i in range(len(self.names))]
        # preallocated gradients, written in place every step and read by the optimiser
        self.weight_grads = [member_stack(len(nets), tuple(w.shape[1:])).zero_() for w in self.weights]
        self.bias_grads = [member_stack(len(nets), tuple(b.shape[1:])).zero_() for b in self.biases]
        # each member's operands as nn.Linear passes them to addmm (views: Adam's in-place updates show)
        self._w_t = [[w[m].t() for m in range(len(nets))] for w in self.weights]
        self._w = [list(w) for w in self.weights]  # and as the backward product reads them
        self._b = [list(b) for b in self.biases]
        self._workspaces: dict[int, _Workspace] = {}
        # layers whose batch-1 weight gradient the optimiser forms itself from (delta, input): gradients()
        # leaves their weight_grads alone and keeps the two operands of the last step here
        self.rank_one: set[int] = set()
        self.rank_one_operands: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def members(self) -> int:
        return self.weights[0].shape[0]

    def parameters(self, skip_weights: frozenset[int] = frozenset()) -> list[torch.Tensor]:
        """What the optimiser steps, each with its gradient: a layer's whole stack where a member slice is a
        whole number of 64-byte lines, else one view per member. Fused Adam runs a tensor's last
        numel % vector-width elements through scalar code that rounds unlike its vector code, so a member
        whose slice ends mid-vector must be its own tensor, as it is alone (seen on the 4 logits' biases);
        fewer tensors make each step's optimiser overhead smaller. `skip_weights`: layers whose weights
        another optimiser steps (StackedAdam's fused kernel).
        """
        params = []
        for stack, grads in ((self.weights, self.weight_grads), (self.biases, self.bias_grads)):
            for i, (w, g) in enumerate(zip(stack, grads, strict=True)):
                if stack is self.weights and i in skip_weights:
                    continue
                pairs = [(w, g)] if _whole(w[0].numel(), w.dtype) else list(zip(w, g, strict=True))
                for p, grad in pairs:
                    p.grad = grad
                    params.append(p)
        return params

    def _workspace(self, batch: int) -> _Workspace:
        ws = self._workspaces.get(batch)
        if ws is None:
            ws = self._workspaces[batch] = _Workspace(self.members, batch, [tuple(w.shape[1:]) for w in self.weights])
        return ws

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output for x [M, B, d]: post-ReLU for the hidden layers, the raw output last. The
        outputs are this stack's buffers for batch size B, overwritten by the next call with that size."""
        ws = self._workspace(x.shape[1])
        ws.x.copy_(x)  # each member's batch aligned as its own tensor would be
        inputs = ws.x_members
        last = len(self.weights) - 1
        for i, (w_t, b) in enumerate(zip(self._w_t, self._b, strict=True)):
            outs = ws.out_members[i]
            for m in range(self.members):  # nn.Linear's own call (addmm), so each member rounds as it would alone
                torch.addmm(b[m], inputs[m], w_t[m], out=outs[m])
            if i < last:
                torch.relu_(ws.outs[i])
            inputs = outs
        return ws.outs

    @contextmanager
    def _threads(self, n: int | None):
        if n is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(n)  # ~0.3 us: cheap enough to switch twice a step
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def elementwise(self):
        """A context for element-wise work on this stack's tensors (the optimiser step) at its thread count."""
        return self._threads(self.elementwise_threads)

    @torch.no_grad()
    def gradients(self, x: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
        """Fill the gradient buffers with each member's gradient of its mean batch loss; return the losses [M].

        loss "ce": cross-entropy of the logits against integer targets [M, B]; "mse": squared error of the
        single output against float targets [M, B] (what nn.CrossEntropyLoss / nn.MSELoss give, mean over B).
        The products first (forward, then every layer's output gradient, top down), then every weight
        gradient: two thread switches a step instead of two a layer; each value is what autograd computes.
        """
        with self._threads(self.product_threads):
            outs = self.forward(x)
            ws = self._workspace(x.shape[1])
            x = ws.x  # the aligned copy forward() ran on
            delta, losses = _loss_gradient(outs[-1], target, loss)
            deltas = [_aligned(delta)]  # deltas[j]: the gradient of layer (L-1-j)'s output
            for i in range(len(self.weights) - 1, 0, -1):
                # the gradient of layer i's input, as autograd's addmm backward computes it, then ReLU's
                w, nxt, top = self._w[i], ws.deltas[i - 1], deltas[-1]
                nxt_members = ws.delta_members[i - 1]
                for m in range(self.members):
                    torch.mm(top[m], w[m], out=nxt_members[m])
                torch.le(outs[i - 1], 0.0, out=ws.masks[i - 1])
                deltas.append(nxt.masked_fill_(ws.masks[i - 1], 0.0))
            if x.shape[1] > 1:  # weight gradients of a batch are products too
                for i, delta in zip(range(len(self.weights) - 1, -1, -1), deltas, strict=True):
                    h = outs[i - 1] if i else x
                    for m in range(self.members):
                        torch.mm(delta[m].t(), h[m], out=self.weight_grads[i][m])
                        torch.sum(delta[m], 0, out=self.bias_grads[i][m])
                return losses
        self.rank_one_operands = {}
        with self.elementwise():  # batch 1: outer products, every element one exact product, as autograd's
            for i, delta in zip(range(len(self.weights) - 1, -1, -1), deltas, strict=True):
                h = outs[i - 1] if i else x
                if i in self.rank_one:  # the optimiser forms this gradient itself (StackedAdam)
                    self.rank_one_operands[i] = (delta, h)
                else:
                    torch.mul(delta.transpose(1, 2), h, out=self.weight_grads[i])
                self.bias_grads[i].copy_(delta[:, 0])
        return losses

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Member m's weights as the state dict of its nn.Sequential (copies, not views of the stack)."""
        out = []
        for m in range(self.members):
            state = {}
            for n, w, b in zip(self.names, self.weights, self.biases, strict=True):  # nn.Sequential's key order
                state[f"{n}.weight"], state[f"{n}.bias"] = w[m].clone(), b[m].clone()
            out.append(state)
        return out


class _Workspace:
    """A stack's per-step buffers for one batch size (inputs, layer outputs, output gradients, ReLU masks),
    allocated once: allocating and slicing them anew took ~0.4 ms of a ~3 ms batch-1 step."""

    def __init__(self, members: int, batch: int, shapes: list[tuple[int, int]]):
        self.x = member_stack(members, (batch, shapes[0][1]))
        self.outs = [member_stack(members, (batch, out)) for out, _ in shapes]
        self.deltas = [member_stack(members, (batch, out)) for out, _ in shapes[:-1]]
        self.masks = [torch.empty(o.shape, dtype=torch.bool) for o in self.outs[:-1]]
        self.x_members = list(self.x)
        self.out_members = [list(o) for o in self.outs]
        self.delta_members = [list(d) for d in self.deltas]


class StackedAdam:
    """Adam (torch's defaults) over a StackedMLP: what torch's fused Adam gives, bit for bit, faster.

    At batch 1 a layer's weight gradient is the outer product of its output gradient and its input. For every
    layer whose member slices are whole 16-float vectors, the native kernel (daar/perf/rank1_adam.c) forms
    that product element by element inside its Adam loop instead of torch writing the gradient and fused Adam
    reading it back: 6 passes over the layer's memory instead of 8, in one loop (benchmarks/heads.py). Its
    arithmetic is fused Adam's (checked on this machine before use, daar.perf.native.same_as_torch), so the
    weights are bit for bit the same. Biases, other layers, batches of more than one, and machines where the
    kernel cannot be built go through torch's fused Adam as before, built by `make_adam(params, lr)` (the
    heads' own, daar.method.mlp.make_adam). `threads` > 1 splits the kernel's rows over that many threads
    (element-wise: exact at any count).
    """

    def __init__(self, net: StackedMLP, lr: float, *, batch_size: int, make_adam, threads: int = 1):
        from daar.perf import native

        self.net, self.lr, self.steps, self.threads = net, lr, 0, max(1, threads)
        self._coefficients = native.adam_coefficients  # looked up once, not on every step
        self.kernel = native.rank1_adam() if batch_size == 1 else None
        fused = [i for i, w in enumerate(net.weights) if self.kernel and _whole(w[0].numel(), w.dtype)
                 and w.dtype == torch.float32]
        net.rank_one = set(fused)
        self.fused = fused
        rest = net.parameters(skip_weights=frozenset(fused))
        self.torch_adam = make_adam(rest, lr) if rest else None
        self._moments = [(torch.zeros_like(net.weights[i]), torch.zeros_like(net.weights[i])) for i in fused]
        self._desc = np.zeros((len(fused), self.kernel.fields if self.kernel else 0), dtype=np.int64)
        for row, i, (m, v) in zip(self._desc, fused, self._moments, strict=True):
            w = net.weights[i]
            row[:7] = [w.data_ptr(), m.data_ptr(), v.data_ptr(), w.shape[1], w.shape[2], w.shape[0], w.stride(0)]
        self._pool = None
        if self.fused and self.threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self.threads - 1, thread_name_prefix="daar-adam")

    def step(self) -> None:
        self.steps += 1
        if self.fused:
            for row, i in zip(self._desc, self.fused, strict=True):
                delta, h = self.net.rank_one_operands[i]
                row[7:] = [delta.data_ptr(), delta.stride(0), h.data_ptr(), h.stride(0)]
            coefficients = self._coefficients(self.lr, self.steps)
            if self._pool is None:
                self.kernel.step(self._desc, coefficients)
            else:
                parts = [self._pool.submit(self.kernel.step, self._desc, coefficients, k, self.threads)
                         for k in range(1, self.threads)]
                self.kernel.step(self._desc, coefficients, 0, self.threads)
                for f in parts:
                    f.result()
        if self.torch_adam is not None:
            self.torch_adam.step()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _loss_gradient(out: torch.Tensor, target: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient of each member's mean batch loss with respect to the last layer's output, and the losses,
    with the kernels autograd runs for nn.CrossEntropyLoss (log-softmax backward) and nn.MSELoss."""
    batch = out.shape[1]
    if loss == "ce":
        logp = torch.log_softmax(out, dim=-1)
        picked = logp.gather(2, target.unsqueeze(-1))
        grad = torch.zeros_like(logp).scatter_(2, target.unsqueeze(-1), -1.0 / batch)  # nll_loss's backward
        return torch._log_softmax_backward_data(grad, logp, 2, logp.dtype), -picked.squeeze(-1).mean(1)
    if loss == "mse":
        diff = out.squeeze(-1) - target
        return (diff * (2.0 / batch)).unsqueeze(-1), diff.square().mean(1)
    raise ValueError(f"unknown loss {loss!r} (ce or mse)")
