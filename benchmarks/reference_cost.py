"""The authors' compute pattern beside daar's, same model, same process, W-ref (WORKLOADS.md).

Reference (emulated on `--subset` records per pattern, then extrapolated per record): every text padded
to 1024 tokens, batch 1, the model loaded in float32 as a causal LM truncated to 3 layers (so the
49k-vocabulary LM head runs and its logits are discarded), and the frozen model re-run inside every
head-training step. Stages and their record counts on W-ref: psi_dom training (485 steps: one epoch on
the 97 % training split of the 500-record probe set), psi_dom inference over the probe set (500),
psi_div training (485), scoring the pool (2,000).

daar (really run, on all of W-ref): layer-3 features of the probe set and the pool once (fresh feature
store, `--dtype auto`), psi_dom and psi_div trained for daar's default ~5,000 steps each (more steps than
the reference's 485), and the pool scored from the cached features.

    python benchmarks/reference_cost.py               # subset of 6 records per reference pattern
    python benchmarks/reference_cost.py --subset 3 --pool-n 400 --probe-n 100   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def reference_per_record(texts: list[str], train: bool) -> float:
    """Seconds per record of the authors' pattern: pad to 1024, batch 1, fp32 causal LM with its head,
    mean over all positions, then (train) one Adam step of the MLP head or (inference) its forward."""
    import torch

    from daar.method.mlp import build_mlp
    from daar.models.loading import load_model

    lm = load_model("default", layers=3, dtype="float32", device="cpu", causal_lm=True)
    tok, model = lm.tokenizer, lm.model
    head = build_mlp(model.config.hidden_size, 4)
    opt = torch.optim.Adam(head.parameters(), lr=1e-5)
    enc = [tok(t, truncation=True, max_length=1024, padding="max_length", return_tensors="pt") for t in texts]
    with torch.no_grad():  # warm-up (kernel selection), not timed
        model(input_ids=enc[0]["input_ids"], output_hidden_states=True)
    t0 = time.perf_counter()
    for e in enc:
        with torch.no_grad():
            out = model(input_ids=e["input_ids"], output_hidden_states=True)  # logits computed, then unused
            feat = out.hidden_states[-1].mean(1)
        if train:
            loss = torch.nn.functional.cross_entropy(head(feat), torch.zeros(1, dtype=torch.long))
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                head(feat)
    return (time.perf_counter() - t0) / len(enc)


def daar_stages(probe, pool, store: Path) -> dict[str, float]:
    """daar's seconds for the same stages: features once, both heads at the default steps, scoring."""
    from daar.features import FeatureExtractor, FeatureStore
    from daar.method.mlp import HeadTraining, entropy, epochs_for_steps, train_classifier, train_regressor

    ext = FeatureExtractor("default", layer=3, store=FeatureStore(store), show_progress=False)
    ext.loaded  # noqa: B018 -- load the model before the clock, as the reference's load is not timed either
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    x_probe = ext(probe)
    times["probe features (500)"] = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    labels = (x_probe @ rng.standard_normal((x_probe.shape[1], 4))).argmax(1)  # timing does not depend on them
    s = HeadTraining(lr=1e-5, batch_size=1, epochs=epochs_for_steps(len(probe), 0.03, 1), val_fraction=0.03,
                     seed=42, ensemble=1)
    t0 = time.perf_counter()
    dom = train_classifier(x_probe, labels, 4, s)
    times[f"psi_dom training ({s.epochs} epochs, ~5,000 steps)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    div = train_regressor(x_probe, entropy(dom.predict_proba(x_probe)), s)
    times["psi_dom inference + psi_div training"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    div.forward(ext(pool))
    times[f"pool features + scores ({len(pool)})"] = time.perf_counter() - t0
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--subset", type=int, default=6, help="records timed per reference pattern")
    p.add_argument("--pool-n", type=int, default=2000, help="pool records (W-ref: 2,000)")
    p.add_argument("--probe-n", type=int, default=500, help="probe records (W-ref: 500)")
    args = p.parse_args(argv)

    from daar.data import load_records
    from daar.data.render import Renderer
    from daar.data.slices import standard_parts, write_slices
    from daar.perf.roofline import machine_info

    print(machine_info().line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="daar-refcost-") as tmp:
        tmp = Path(tmp)
        data = Path(args.data_dir) / "pool"
        write_slices(standard_parts(data, (0, args.pool_n // 4), label=False), tmp / "pool.jsonl")
        write_slices(standard_parts(data, (5000, 5000 + args.probe_n // 4), label=False), tmp / "probe.jsonl")
        pool, probe = load_records(tmp / "pool.jsonl").records, load_records(tmp / "probe.jsonl").records
        sample = [Renderer().render(r) for r in probe[:: max(1, len(probe) // args.subset)][: args.subset]]
        t_train, t_inf = reference_per_record(sample, True), reference_per_record(sample, False)
        n_train = len(probe) - int(round(len(probe) * 0.03))
        ref = {f"psi_dom training ({n_train})": n_train * t_train, f"psi_dom inference ({len(probe)})": len(probe) * t_inf,
               f"psi_div training ({n_train})": n_train * t_train, f"scoring the pool ({len(pool)})": len(pool) * t_inf}
        ours = daar_stages(probe, pool, tmp / "features")
    print(f"\n### Reference pattern vs daar, W-ref (pool {len(pool)}, probe {len(probe)}), bundled model\n")
    print(f"reference per record: training step {t_train:.3f} s, inference {t_inf:.3f} s (fp32, pad 1024, batch 1, "
          f"LM head; {args.subset} records each, extrapolated)\n")
    print("| stage | reference s (extrapolated) | | daar stage | daar s |\n|---|---:|---|---|---:|")
    for (a, ta), (b, tb) in zip(ref.items(), ours.items(), strict=True):
        print(f"| {a} | {ta:.1f} | | {b} | {tb:.1f} |")
    total_ref, total_ours = sum(ref.values()), sum(ours.values())
    print(f"| **total** | **{total_ref:.1f}** | | | **{total_ours:.1f}** |\n")
    print(f"[W-ref] reference / daar for these stages: {total_ref / total_ours:.1f}x (goal >= 30x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
