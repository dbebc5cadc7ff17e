"""The MLP heads psi_dom and psi_div (METHOD.md steps 5-7), trained on cached features.

The frozen LLM never runs inside a training loop: features are computed once and cached, and the
heads train on those arrays. Shape and optimiser follow the method: MLP d -> 2d -> d -> d/2 -> 256
-> out with ReLU, Adam lr 1e-5, batch 1, 1 epoch, 97/3 train/validation split (all options).
Features are standardised with the training split's mean and std (stored with the head), which
makes the tiny learning rate usable across models whose hidden states differ in scale; psi_div's target
is too (train_regressor), and its outputs are mapped back to entropy units. Heads train as
stacked models (daar.method.stacked): a single head is a stack of one, an ensemble (--head-ensemble N)
one stack per CPU; every member is bit for bit what the plain autograd loop gives it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadTraining:
    """How a head is trained. No defaults here: they are declared once, in the probes settings."""

    lr: float
    batch_size: int
    epochs: int
    val_fraction: float
    seed: int
    ensemble: int  # members trained from different initialisations and orders; predictions averaged
    standardize: bool = True  # not a user setting: the heads always train on standardised features

    @classmethod
    def from_settings(cls, cfg, n_probe: int) -> HeadTraining:
        """The probes settings for a probe set of `n_probe` records (--probe-epochs unset: the method's steps)."""
        p = cfg.probes
        epochs = p.probe_epochs or epochs_for_steps(n_probe, p.val_fraction, p.probe_batch_size)
        return cls(lr=p.probe_lr, batch_size=p.probe_batch_size, epochs=epochs, val_fraction=p.val_fraction,
                   seed=cfg.run.seed if p.head_seed is None else p.head_seed, ensemble=p.head_ensemble)


METHOD_STEPS = 5000  # the paper: one epoch over 5,000 probe records at batch size 1


def epochs_for_steps(n_probe: int, val_fraction: float, batch_size: int, steps: int = METHOD_STEPS) -> int:
    """Fewest epochs that give at least `steps` optimiser steps on the training split of the probe set."""
    n_train = max(1, n_probe - int(round(n_probe * val_fraction)))
    per_epoch = -(-n_train // batch_size)
    return max(1, -(-steps // per_epoch))


def build_mlp(d: int, out: int):
    import torch.nn as nn

    return nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, d), nn.ReLU(),
                         nn.Linear(d, max(1, d // 2)), nn.ReLU(), nn.Linear(max(1, d // 2), 256), nn.ReLU(),
                         nn.Linear(256, out))


@dataclass
class TrainedHead:
    state: dict
    d: int
    out: int
    mean: np.ndarray
    std: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    history: list[float] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    # a regressor trains on its target standardised with the training split's mean and std; its outputs
    # are mapped back to the target's units (0 and 1: a classifier, or a target used as it is)
    target_mean: float = 0.0
    target_std: float = 1.0

    def module(self):
        net = build_mlp(self.d, self.out)
        net.load_state_dict(self.state)
        return net.eval()

    def forward(self, x: np.ndarray, batch: int = 4096) -> np.ndarray:
        import torch

        net = self.module()
        z = (np.asarray(x, dtype=np.float32) - self.mean) / self.std
        outs = []
        with torch.inference_mode():
            for s in range(0, len(z), batch):
                outs.append(net(torch.from_numpy(z[s : s + batch])).numpy())
        out = np.concatenate(outs) if outs else np.zeros((0, self.out), dtype=np.float32)
        if (self.target_mean, self.target_std) != (0.0, 1.0):
            out = out * np.float32(self.target_std) + np.float32(self.target_mean)
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = self.forward(x).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def entropy(p: np.ndarray) -> np.ndarray:
    """Natural-log entropy of each row of a probability matrix, in [0, ln K]."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def _split(n: int, s: HeadTraining) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(s.seed)
    order = rng.permutation(n)
    n_val = int(round(n * s.val_fraction)) if n > 1 else 0
    n_val = min(n_val, n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# Head training is batch-1 matrix-vector work plus an Adam update of every weight: memory-bound small ops.
# The products (addmm, mm) always run on one OpenMP thread: their rounding depends on how many threads
# split them, and batch-1 training at lr 1e-5 turns rounding differences into real ones over ~5,000 steps,
# so the heads would depend on the machine's core count. The element-wise work (the weight gradients'
# outer products and fused Adam, ~70 % of a step) is exact at any thread count (every element computed
# alone; fused Adam splits its work on 64-byte lines, so no vector straddles two threads), and runs on
# the CPUs the stacks leave free (see _elementwise_threads).
PRODUCT_THREADS = 1


@contextmanager
def _torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(n, before)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_adam(params, lr: float):
    """Adam with the fused kernel where torch has it for these tensors (one pass over each weight instead
    of ~10 element-wise ops); the same update up to float rounding (tests/perf: <= 1e-6 after thousands of
    steps, the same rankings)."""
    import torch

    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # an older torch or a device without the fused kernel
        return torch.optim.Adam(params, lr=lr, foreach=True)


def _standardizer(x: np.ndarray, train_idx: np.ndarray, s: HeadTraining) -> tuple[np.ndarray, np.ndarray]:
    """The training split's mean and std, the same for every member of an ensemble."""
    mean = x[train_idx].mean(0) if s.standardize else np.zeros(x.shape[1], np.float32)
    std = (x[train_idx].std(0) + 1e-6) if s.standardize else np.ones(x.shape[1], np.float32)
    return mean, std


def _fit(x: np.ndarray, y: np.ndarray, out: int, loss_name: str, s: HeadTraining, desc: str,
         member: int = 0) -> TrainedHead:
    """One head. `member` > 0 changes the initialisation and the data order, never the validation split.
    It trains as a stack of one: bit for bit what the plain autograd loop gives (tests/method/
    test_stacked_heads.py keeps that loop as the reference), without autograd's extra passes over every
    weight."""
    return _fit_stacked(x, y, out, loss_name, s, desc, [member])[0]


class HeadEnsemble:
    """Heads trained on the same data from different initialisations and orders; predictions averaged.

    With one member it is that head exactly. Averaging removes the part of the ranking that comes
    from one initialisation and one pass order (batch 1, one epoch, lr 1e-5 leaves a lot of it).
    """

    def __init__(self, members: list[TrainedHead], metrics: dict | None = None):
        self.members = members
        self.metrics = metrics or {}
        self.train_idx, self.val_idx = members[0].train_idx, members[0].val_idx

    def forward(self, x: np.ndarray) -> np.ndarray:
        if len(self.members) == 1:
            return self.members[0].forward(x)
        return np.mean([m.forward(x) for m in self.members], axis=0)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if len(self.members) == 1:
            return self.members[0].predict_proba(x)
        return np.mean([m.predict_proba(x) for m in self.members], axis=0)


def _members(x: np.ndarray, y: np.ndarray, out: int, loss_name: str, s: HeadTraining, desc: str) -> HeadEnsemble:
    return HeadEnsemble(_fit_stacked(x, y, out, loss_name, s, desc, list(range(s.ensemble))))


# An ensemble trains as stacked members (daar.method.stacked): one step moves every member by one batch,
# the gradients skip autograd's extra passes over the weights, one Adam call steps all members, and each
# member is bit for bit what _fit(member=i) gives. benchmarks/heads.py --ensemble 8 (d = 576, 4,850
# steps, 2 shared cores): 0.6x the sequential time (CPU 62-64 %). A stack's products stay per member, as
# small as one head's, so a second OpenMP thread inside a stack gains little and changes the rounding;
# instead the members are split into one stack per CPU, each trained in its own Python thread with one
# OpenMP thread (torch's kernels release the GIL): the same members bit for bit, ~1.8x faster on 2 quiet
# cores (8 members of d = 576, 970 steps: 33.1 s in one stack, 18.2 s in two).
STACK_WORKERS: int | None = None  # stacks trained at once; None: the CPUs torch may use (torch.get_num_threads())
# Stacks are cut into groups of members whose weights, gradients and Adam moments (4 copies) fit here, all
# stacks trained at once together, so a large model's features (d = 3584: ~0.9 GiB a member) cannot take
# 8x one head's memory.
STACK_BYTES = 2 << 30


def _stack_workers(members: int) -> int:
    import torch

    return max(1, min(members, STACK_WORKERS or torch.get_num_threads()))


def _elementwise_threads(workers: int) -> int:
    """OpenMP threads for each stack's element-wise work: the CPUs torch may use, shared by the stacks
    trained at once (a single head gets them all; 8 members on 2 CPUs train as 2 stacks of 1 thread each)."""
    import torch

    return max(1, torch.get_num_threads() // workers)


def _stack_groups(members: list[int], d: int, out: int, workers: int = 1) -> list[list[int]]:
    """Members cut into stacks: as even as `workers` stacks trained at once allow, each within its share of
    STACK_BYTES."""
    dims = [d, 2 * d, d, max(1, d // 2), 256, out]  # build_mlp's layers
    per_member = 16 * sum((a + 1) * b for a, b in zip(dims, dims[1:], strict=False))  # 4 float32 copies
    size = max(1, min(STACK_BYTES // workers // per_member, -(-len(members) // workers)))
    return [members[i : i + size] for i in range(0, len(members), size)]


def _fit_stacked(x: np.ndarray, y: np.ndarray, out: int, loss_name: str, s: HeadTraining, desc: str,
                 members: list[int]) -> list[TrainedHead]:
    """The members `members` of an ensemble (seeds as _fit's `member`), on the one split and standardisation."""
    from tqdm.auto import tqdm

    from daar.perf.side_by_side import run_side_by_side

    x = np.asarray(x, dtype=np.float32)
    train_idx, val_idx = _split(len(x), s)
    mean, std = _standardizer(x, train_idx, s)
    z = (x - mean) / std
    seeds = {m: member_seed(s, m) for m in members}
    nets = {m: _initial_net(x.shape[1], out, seeds[m]) for m in members}  # global RNG: here, in member order
    workers = _stack_workers(len(members))
    groups = _stack_groups(members, x.shape[1], out, workers)
    workers = min(workers, len(groups))  # fewer groups than CPUs (one member: one stack)
    threads = _elementwise_threads(workers)
    steps = s.epochs * int(np.ceil(len(train_idx) / s.batch_size))
    label = f"{desc} x{len(members)}" + (f" in {len(groups)} stacks" if len(groups) > 1 else "")

    with tqdm(total=steps * len(groups), desc=label, unit="step", leave=False, mininterval=1.0) as bar:
        def train(group: list[int]) -> tuple[list[dict], list[list[float]]]:
            # torch.set_num_threads is per thread, and a new thread starts at the default: set it here
            with _torch_threads(threads):
                return _train_stacked(z, y, loss_name, s, train_idx, nets=[nets[m] for m in group],
                                      seeds=[seeds[m] for m in group], bar=bar, elementwise_threads=threads)

        # one stack per thread (one after another in this thread when workers is 1); a stack's error is re-raised here
        results = run_side_by_side([lambda g=g: train(g) for g in groups], workers, name="daar-heads")
    heads = []
    for states, histories in results:
        heads += [TrainedHead(state=st, d=x.shape[1], out=out, mean=mean.astype(np.float32),
                              std=std.astype(np.float32), train_idx=train_idx, val_idx=val_idx, history=h)
                  for st, h in zip(states, histories, strict=True)]
    return heads


def member_seed(s: HeadTraining, member: int) -> int:
    """The seed of an ensemble member's initialisation and pass order (member 0: the method's single head)."""
    return s.seed + 7919 * member


def _initial_net(d: int, out: int, seed: int):
    """A member's initial MLP, from torch's global generator seeded with the member's seed (single heads and
    stacks alike)."""
    import torch

    torch.manual_seed(seed)
    return build_mlp(d, out)


def _train_stacked(z: np.ndarray, y: np.ndarray, loss_name: str, s: HeadTraining, train_idx: np.ndarray, *,
                   nets: list, seeds: list[int], bar=None, elementwise_threads: int = 1
                   ) -> tuple[list[dict], list[list[float]]]:
    """The optimiser steps of len(seeds) members at once, from their initial `nets`: member i's pass order
    is a permutation drawn from its own generator seeded with seeds[i], each epoch; its loss history is the
    mean loss of every 200 steps, summed tensor-side (no host read in between). Uses no global RNG, so
    stacks can train in threads side by side. Products run on PRODUCT_THREADS, the element-wise work on
    `elementwise_threads` (exact either way)."""
    import torch

    from daar.method.stacked import StackedAdam, StackedMLP

    z_t, target = torch.from_numpy(np.ascontiguousarray(z)), torch.from_numpy(y)
    net = StackedMLP(nets, product_threads=PRODUCT_THREADS, elementwise_threads=elementwise_threads)
    opt = StackedAdam(net, s.lr, batch_size=s.batch_size, make_adam=make_adam, threads=elementwise_threads)
    try:
        return _steps(net, opt, z_t, target, loss_name, s, train_idx, seeds, bar)
    finally:
        opt.close()


def _steps(net, opt, z_t, target, loss_name: str, s: HeadTraining, train_idx: np.ndarray, seeds: list[int],
           bar) -> tuple[list[dict], list[list[float]]]:
    import torch

    gens = [torch.Generator().manual_seed(seed) for seed in seeds]
    train = torch.from_numpy(train_idx)
    histories: list[list[float]] = [[] for _ in seeds]
    batches = len(range(0, len(train_idx), s.batch_size))  # steps per epoch
    for _ in range(s.epochs):
        perm = torch.stack([train[torch.randperm(len(train), generator=g)] for g in gens])  # [members, n]
        running = torch.zeros(len(seeds), dtype=torch.float64)
        for i, b in enumerate(range(0, perm.shape[1], s.batch_size)):
            idx = perm[:, b : b + s.batch_size]
            running += net.gradients(z_t[idx], target[idx], loss_name)
            with net.elementwise():
                opt.step()
            if (i + 1) % 200 == 0:
                for h, v in zip(histories, (running / 200).tolist(), strict=True):
                    h.append(v)
                running.zero_()
                if bar is not None:
                    bar.update(200)
                    bar.set_postfix(loss=f"{np.mean([h[-1] for h in histories]):.4f}")
        if bar is not None:
            bar.update(batches % 200)
    return net.state_dicts(), histories


def train_classifier(x: np.ndarray, labels: np.ndarray, k: int, s: HeadTraining) -> HeadEnsemble:
    """psi_dom: cross-entropy on pseudo-labels; reports validation accuracy and confusion matrix."""
    head = _members(x, np.asarray(labels, dtype=np.int64), k, "ce", s, "psi_dom")
    if len(head.val_idx):
        pred = head.predict_proba(x[head.val_idx]).argmax(1)
        truth = np.asarray(labels)[head.val_idx]
        conf = np.zeros((k, k), dtype=int)
        np.add.at(conf, (truth, pred), 1)
        head.metrics = {"val_accuracy": float((pred == truth).mean()), "val_n": int(len(truth)),
                        "confusion": conf.tolist()}
    return head


def train_regressor(x: np.ndarray, target: np.ndarray, s: HeadTraining) -> HeadEnsemble:
    """psi_div: MSE against the entropy of psi_dom's prediction, standardised with the training split's
    mean and std (predictions come back in entropy units).

    Why standardised: the entropy spans ~0.3 nats (std) about ~0.7, the scale of a freshly initialised
    MLP's own output, and at lr 1e-5 the heads then spend their steps undoing their initial function,
    which differs per seed. On W-4k with the pseudo-labels fixed (4-member ensembles, two head seeds) the
    top-20 % selections overlapped 86.3 % on the raw target and 90.3 % on the standardised one (README)."""
    target = np.asarray(target, dtype=np.float32)
    train_idx, _ = _split(len(target), s)
    t_mean = float(target[train_idx].mean()) if len(train_idx) else 0.0
    t_std = float(target[train_idx].std()) if len(train_idx) else 0.0
    t_std = t_std if t_std > 1e-12 else 1.0  # a constant target: nothing to scale
    head = _members(x, ((target - t_mean) / t_std).astype(np.float32), 1, "mse", s, "psi_div")
    for member in head.members:
        member.target_mean, member.target_std = t_mean, t_std
    if len(head.val_idx):
        pred = head.forward(x[head.val_idx])[:, 0]
        truth = np.asarray(target)[head.val_idx]
        corr = float(np.corrcoef(pred, truth)[0, 1]) if len(truth) > 2 and truth.std() > 0 else float("nan")
        head.metrics = {"val_mse": float(((pred - truth) ** 2).mean()), "val_pearson": corr, "val_n": int(len(truth))}
    return head


def head_to_arrays(head: HeadEnsemble, prefix: str) -> dict[str, np.ndarray]:
    """Flatten heads into named arrays (member 0 under `prefix`, member i under `prefix#i`)."""
    arrays: dict[str, np.ndarray] = {}
    for i, member in enumerate(head.members):
        arrays.update(_member_arrays(member, prefix if i == 0 else f"{prefix}#{i}"))
    return arrays


def _member_arrays(head: TrainedHead, prefix: str) -> dict[str, np.ndarray]:
    arrays = {f"{prefix}.w.{k}": v.numpy() for k, v in head.state.items()}
    arrays.update({f"{prefix}.mean": head.mean, f"{prefix}.std": head.std, f"{prefix}.train_idx": head.train_idx,
                   f"{prefix}.val_idx": head.val_idx, f"{prefix}.shape": np.array([head.d, head.out]),
                   f"{prefix}.target": np.array([head.target_mean, head.target_std], dtype=np.float64)})
    return arrays


def head_from_arrays(arrays: dict[str, np.ndarray], prefix: str, metrics: dict | None = None) -> HeadEnsemble:
    members, i = [_member_from_arrays(arrays, prefix)], 1
    while f"{prefix}#{i}.shape" in arrays:
        members.append(_member_from_arrays(arrays, f"{prefix}#{i}"))
        i += 1
    return HeadEnsemble(members, metrics)


def _member_from_arrays(arrays: dict[str, np.ndarray], prefix: str) -> TrainedHead:
    import torch

    state = {k[len(prefix) + 3 :]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
             if k.startswith(f"{prefix}.w.")}
    d, out = (int(x) for x in arrays[f"{prefix}.shape"])
    t_mean, t_std = (float(v) for v in arrays.get(f"{prefix}.target", (0.0, 1.0)))
    return TrainedHead(state=state, d=d, out=out, mean=arrays[f"{prefix}.mean"], std=arrays[f"{prefix}.std"],
                       train_idx=arrays[f"{prefix}.train_idx"], val_idx=arrays[f"{prefix}.val_idx"],
                       target_mean=t_mean, target_std=t_std)
