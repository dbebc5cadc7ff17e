"""Head-training speed: psi_dom and psi_div at the paper's shape (batch 1, one epoch over a 5,000-record
probe set = ~4,850 steps each), with the roofline, and the check that the fast loop gives the heads the
simple loop gives (same seed).

Features are Gaussian with the bundled model's hidden size (the time of a step does not depend on the
values); labels come from a fixed random linear map, so psi_dom has something to learn and psi_div's
target (psi_dom's entropy) is not constant. The simple loop (`reference_fit`: plain Adam, gradients set
to None, a host read of the loss every step, torch's default threads) is what daar ran before.

With --ensemble M (M > 1) it times the head ensemble instead: for psi_dom, then psi_div, the M members
one after another (`_fit(member=i)`, how ensembles trained before) and stacked (`_fit_stacked`, how they
train now) back to back, each stacked run with every count of --stack-workers (stacks trained at once,
one thread each), the load
average before each, and the largest difference between a member trained both ways.

    python benchmarks/heads.py                       # both heads, 5,000 probe records, + a 600-step check
    python benchmarks/heads.py --n 1000 --check-steps 200
    python benchmarks/heads.py --ensemble 8 --stack-workers 1,2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def reference_fit(x, y, out, loss_name, s):
    """The loop as it was: the same data, split, init and order as daar.method.mlp._fit, member 0."""
    import torch

    from daar.method.mlp import _split, build_mlp

    train_idx, _ = _split(len(x), s)
    mean, std = x[train_idx].mean(0), x[train_idx].std(0) + 1e-6
    z, target = torch.from_numpy((x - mean) / std), torch.from_numpy(y)
    torch.manual_seed(s.seed)
    net = build_mlp(x.shape[1], out)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    loss_fn = torch.nn.CrossEntropyLoss() if loss_name == "ce" else torch.nn.MSELoss()
    gen = torch.Generator().manual_seed(s.seed)
    for _ in range(s.epochs):
        perm = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=gen)]
        for b in range(0, len(perm), s.batch_size):
            idx = perm[b : b + s.batch_size]
            pred = net(z[idx])
            loss = loss_fn(pred, target[idx]) if loss_name == "ce" else loss_fn(pred.squeeze(-1), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def problem(n: int, d: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    labels = (x @ rng.standard_normal((d, k))).argmax(1).astype(np.int64)
    return x, labels


def step_flops(d: int, out: int) -> float:
    """Forward 2, backward 4 FLOPs per weight per sample (batch 1)."""
    dims = [d, 2 * d, d, max(1, d // 2), 256, out]
    return 6.0 * sum(a * b for a, b in zip(dims, dims[1:], strict=False))


def step_bytes(d: int, out: int, kernel: bool) -> float:
    """Memory traffic of one batch-1 step (float32), weights and biases: the forward and the backward
    each read every weight (8 B); the fused kernel reads and writes weight, Adam's m and v (24 B);
    torch's path also writes the weight gradient and reads it back (8 B more)."""
    dims = [d, 2 * d, d, max(1, d // 2), 256, out]
    params = sum(a * b + b for a, b in zip(dims, dims[1:], strict=False))
    return params * (8.0 + 24.0 + (0.0 if kernel else 8.0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=5000, help="probe records (the paper: 5,000)")
    p.add_argument("--d", type=int, default=576, help="feature size (the bundled model's hidden size)")
    p.add_argument("--k", type=int, default=4, help="domains")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--check-steps", type=int, default=600, help="steps of the fast-vs-simple equality check (0: skip)")
    p.add_argument("--ensemble", type=int, default=1, help="members: > 1 times sequential against stacked")
    p.add_argument("--stack-workers", default="1,2", help="comma-separated counts of stacks trained at once "
                   "(each in its own thread with one OpenMP thread) for the stacked runs")
    p.add_argument("--elementwise-threads", default="1,0", help="comma-separated OpenMP thread counts for a single "
                   "head's element-wise work (weight gradients, Adam), each timed; 0: daar's choice (every CPU)")
    p.add_argument("--kernel", default="on,off", help="comma-separated: 'on' steps whole layers with the fused "
                   "outer-product Adam kernel (daar/perf/rank1_adam.c, daar's default), 'off' with torch's fused "
                   "Adam; each is timed with every --elementwise-threads count")
    args = p.parse_args(argv)
    if args.ensemble > 1:
        return ensemble_main(args)

    import torch

    from daar.method.mlp import HeadTraining, entropy, train_classifier, train_regressor
    from daar.perf.roofline import cpu_stream_bandwidth, fraction_line, machine_info, measure_peak

    print(machine_info().line(), flush=True)
    x, labels = problem(args.n, args.d, args.k)
    s = HeadTraining(lr=1e-5, batch_size=1, epochs=1, val_fraction=0.03, seed=args.seed, ensemble=1)
    peak = measure_peak("float32", shapes=[(1, args.d, 2 * args.d), (2048, args.d, 2 * args.d)])
    print(peak.line(), flush=True)
    n_train = args.n - int(round(args.n * s.val_fraction))
    from daar.method import mlp
    from daar.perf import native

    kernel = native.rank1_adam()
    print(f"fused outer-product Adam kernel: {'built and bit-identical to torch here' if kernel else 'unavailable'}")
    bandwidth = cpu_stream_bandwidth()
    print(f"memory: streaming a += b over 512 MiB: {bandwidth:.1f} GB/s (best of 5)", flush=True)
    chosen, heads = mlp._elementwise_threads, {}
    runs = [(k, int(v)) for k in args.kernel.split(",") for v in args.elementwise_threads.split(",")]
    for use_kernel, threads in runs:
        native.ENABLED = use_kernel == "on"
        mlp._elementwise_threads = chosen if threads == 0 else (lambda workers, n=threads: n)
        how = (f"{'fused kernel' if native.ENABLED and kernel else 'torch Adam'}, element-wise on "
               f"{mlp._elementwise_threads(1)} thread(s){' (daar)' if threads == 0 else ''}, {_load()}")
        t0, c0 = time.perf_counter(), time.process_time()
        dom = train_classifier(x, labels, args.k, s)
        t_dom, c_dom = time.perf_counter() - t0, time.process_time() - c0
        target = entropy(dom.predict_proba(x))
        t0, c0 = time.perf_counter(), time.process_time()
        div = train_regressor(x, target, s)
        t_div, c_div = time.perf_counter() - t0, time.process_time() - c0
        for name, sec, cpu, out in (("psi_dom", t_dom, c_dom, args.k), ("psi_div", t_div, c_div, 1)):
            f = step_flops(args.d, out) * n_train
            print(fraction_line(f"[probe {args.n}] {name}, {n_train} batch-1 steps ({1000 * sec / n_train:.2f} ms/step; "
                                f"{how})", sec, f, peak, records=n_train, cpu_seconds=cpu), flush=True)
            moved = step_bytes(args.d, out, bool(native.ENABLED and kernel)) * n_train
            print(f"    memory roofline: {moved / 1e9:.0f} GB moved, {moved / sec / 1e9:.1f} GB/s = "
                  f"{moved / sec / 1e9 / bandwidth:.0%} of the streaming bandwidth; floor if nothing stays in cache "
                  f"{moved / bandwidth / 1e9:.1f} s", flush=True)
        heads[(use_kernel, threads)] = (dom.members[0], div.members[0])
    mlp._elementwise_threads, native.ENABLED = chosen, True
    first = next(iter(heads.values()))
    for (use_kernel, threads), pair in heads.items():
        diff = max(float((a.state[k] - b.state[k]).abs().max()) for a, b in zip(first, pair, strict=True)
                   for k in a.state)
        print(f"kernel {use_kernel}, element-wise threads {threads or 'daar'}: max |weight difference| from the "
              f"first run {diff:.1e}")
    if args.check_steps:
        sub = HeadTraining(lr=1e-5, batch_size=1, epochs=1, val_fraction=0.03, seed=args.seed, ensemble=1)
        xs, ys = x[: args.check_steps], labels[: args.check_steps]
        t0 = time.perf_counter()
        ref = reference_fit(xs, ys, args.k, "ce", sub)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        fast = train_classifier(xs, ys, args.k, sub).members[0]
        t_fast = time.perf_counter() - t0
        diff = max(float((ref[k] - fast.state[k]).abs().max()) for k in ref)
        ref_head = type(fast)(state=ref, d=fast.d, out=fast.out, mean=fast.mean, std=fast.std,
                              train_idx=fast.train_idx, val_idx=fast.val_idx)
        same_argmax = float((ref_head.predict_proba(x).argmax(1) == fast.predict_proba(x).argmax(1)).mean())
        ent_diff = float(np.abs(entropy(ref_head.predict_proba(x)) - entropy(fast.predict_proba(x))).max())
        print(f"check, {len(fast.train_idx)} steps: simple loop {t_ref:.1f} s ({torch.get_num_threads()} threads), "
              f"daar {t_fast:.1f} s -> {t_ref / t_fast:.1f}x; max |weight difference| {diff:.2e}, "
              f"same predicted domain {100 * same_argmax:.2f} %, max |entropy difference| {ent_diff:.2e}")
    return 0


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _load() -> str:
    return "load " + Path("/proc/loadavg").read_text().split(" ", 1)[0]


def ensemble_main(args) -> int:
    """psi_dom and psi_div with `args.ensemble` members: sequential members against the stacked model."""
    from daar.method import mlp
    from daar.perf.roofline import machine_info

    print(machine_info().line(), flush=True)
    threads = [int(t) for t in args.stack_workers.split(",")]
    x, labels = problem(args.n, args.d, args.k)
    s = mlp.HeadTraining(lr=1e-5, batch_size=1, epochs=1, val_fraction=0.03, seed=args.seed, ensemble=args.ensemble)
    n_train = args.n - int(round(args.n * s.val_fraction))
    members = list(range(args.ensemble))
    y, out, loss = labels, args.k, "ce"
    for name in ("psi_dom", "psi_div"):
        load = _load()
        seq, t_seq, c_seq = _timed(lambda: [mlp._fit(x, y, out, loss, s, name, m) for m in members])  # noqa: B023
        print(f"[probe {args.n}] {name} x{args.ensemble}, {n_train} steps each: sequential {t_seq:.1f} s "
              f"(cpu {c_seq:.1f} s, {1000 * t_seq / n_train / args.ensemble:.2f} ms/member-step, {load})", flush=True)
        for n_threads in threads:
            mlp.STACK_WORKERS, load = n_threads, _load()
            stk, t_stk, c_stk = _timed(lambda: mlp._fit_stacked(x, y, out, loss, s, name, members))  # noqa: B023
            diff = max(float((a.state[k] - b.state[k]).abs().max()) for a, b in zip(seq, stk, strict=True)
                       for k in a.state)
            pdiff = max(float(np.abs(a.forward(x) - b.forward(x)).max()) for a, b in zip(seq, stk, strict=True))
            print(f"    stacked, {n_threads} stack(s) at once: {t_stk:.1f} s (cpu {c_stk:.1f} s, "
                  f"{1000 * t_stk / n_train / args.ensemble:.2f} ms/member-step, {load}) -> {t_seq / t_stk:.2f}x, "
                  f"{100 * t_stk / t_seq:.0f} % of sequential; max |weight diff| {diff:.1e}, "
                  f"max |output diff| {pdiff:.1e}", flush=True)
        # psi_div learns the entropy of psi_dom's averaged prediction, as in train_regressor
        y, out, loss = mlp.entropy(mlp.HeadEnsemble(stk).predict_proba(x)).astype(np.float32), 1, "mse"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
