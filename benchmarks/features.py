"""Feature-extraction speed on W-1k with the bundled model (prints figures; not a timed test).

Measured in one process, each configuration into its own fresh temporary feature store (so nothing is
served from a cache; the converted model folder in the normal cache is reused):

1. `--layer 3` vs full depth (`--layer 30` for SmolLM2-135M), mask-aware mean, length-bucketed
   dynamic batching: records/s and tokens/s (real, unpadded tokens) on all of W-1k (or, with
   `--full-n`, full depth on an evenly spaced subset, compared with layer 3 on the same subset).
2. The reference scripts' behaviour (every record padded to 1024 tokens, batch size 1, mean over all
   positions, layer 3) vs dynamic batching at layer 3, both on the same evenly spaced subset of W-1k
   (the reference is slow; its cost does not depend on the text length, dynamic batching's does).
   Evenly spaced subsets take records from all four domains in their W-1k proportions.

Model loading is excluded from the timings (it is done, and a short warm-up run, before the clock
starts); tokenisation, forward passes, pooling and the store writes are included.

    python benchmarks/features.py                     # W-1k, reference on 100 records
    python benchmarks/features.py --full-n 200                # full depth on 200 of the 1,000
    python benchmarks/features.py --n 200 --reference-n 20   # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DOMAINS = ("common_sense", "reasoning", "mathematics", "coding")
WORKLOAD = "W-1k"


@dataclass
class Result:
    name: str
    records: int
    tokens: int  # real (unpadded) tokens embedded
    processed: int  # token positions the model ran over (padded for the reference behaviour)
    seconds: float
    fraction: float | None = None  # of the matrix-product peak of the run's dtype, measured in this process

    @property
    def rps(self) -> float:
        return self.records / self.seconds

    @property
    def tps(self) -> float:
        return self.tokens / self.seconds


def write_workload(data_dir: Path, per_domain: int, path: Path) -> int:
    """Rows 0..per_domain of each pool file, concatenated in the WORKLOADS.md order."""
    from daar.data.slices import standard_parts, write_slices

    return write_slices(standard_parts(data_dir / "pool", (0, per_domain), label=False), path)


def evenly(records: list, k: int | None) -> list:
    """k records spread evenly over the list (all of them when k is None or >= the list)."""
    if k is None or k >= len(records):
        return list(records)
    return [records[i * len(records) // k] for i in range(k)]


PEAK = None  # the Peak every fraction is taken against (measured in main, in this process)


def flops_of(ext, records) -> float:
    """Model FLOPs of the layers run over the real tokens of `records` (perf/roofline.py)."""
    from daar.perf.roofline import decoder_flops

    if ext.layer == "embedding":
        return 0.0
    lengths = [len(x) for x in ext.loaded.tokenizer(ext.texts_for(records), truncation=True,
                                                     max_length=ext.max_length)["input_ids"]]
    return decoder_flops(ext.loaded.model.config, lengths)


def measure(name: str, records, store_root: Path, *, layer, pooling="mean", batch_size=None, max_length=None,
            dtype="auto", model="default") -> Result:
    from daar.features import FeatureExtractor, FeatureStore
    from daar.features.extract import embed_token_ids

    ext = FeatureExtractor(model, layer=layer, pooling=pooling, batch_size=batch_size, max_length=max_length,
                           dtype=dtype, store=FeatureStore(tempfile.mkdtemp(dir=store_root)), show_progress=True)
    loaded = ext.loaded  # load outside the timed region
    warm = loaded.tokenizer(["warm-up text " * 8] * 2)["input_ids"]
    embed_token_ids(loaded, warm, ext.layer, pooling, ext.max_length, batch_size)
    flops = flops_of(ext, records)
    t0, c0 = time.perf_counter(), time.process_time()
    feats = ext(records)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    stats = ext.stats
    assert stats.n_cached == 0 and stats.n_computed == len(records), "the store was not fresh"
    assert feats.shape[0] == len(records)
    processed = len(records) * ext.max_length if pooling == "mean-padded" else stats.n_tokens
    res = Result(name, len(records), stats.n_tokens, processed, seconds)
    print(f"[{WORKLOAD}] {name}: {res.records} records, {res.tokens} tokens ({res.processed} processed) in "
          f"{seconds:.1f} s -> {res.rps:.2f} records/s, {res.tps:.0f} tokens/s", flush=True)
    if PEAK is not None and flops:
        from daar.perf.roofline import fraction, fraction_line

        res.fraction = fraction(seconds, flops, PEAK)
        print("    " + fraction_line("roofline", seconds, flops, PEAK, records=res.records, tokens=res.tokens,
                                     cpu_seconds=cpu), flush=True)
    return res


def whole_command(pool_file: Path, store_root: Path, dtype: str, layer: int = 3) -> Result:
    """`daar embed --layer 3` in this process, from reading the file to writing features.npy: model load,
    tokenisation, forward passes, store and output writes all inside the clock (imports are not)."""
    from daar.features.job import run_embed
    from daar.settings import Config

    out = Path(tempfile.mkdtemp(dir=store_root))
    cfg = Config(data=str(pool_file), layer=str(layer), dtype=dtype, out=str(out / "embed"),
                 feature_cache=str(out / "features")).validate()
    t0, c0 = time.perf_counter(), time.process_time()
    summary = run_embed(cfg)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    res = Result(f"whole `daar embed --layer {layer}` command", summary["embedded"], summary["tokens"],
                 summary["tokens"], seconds)
    print(f"[{WORKLOAD}] {res.name}: {res.records} records in {seconds:.1f} s -> {res.rps:.2f} records/s, "
          f"{res.tps:.0f} tokens/s", flush=True)
    if PEAK is not None:
        from daar.data import load_records
        from daar.features import FeatureExtractor, FeatureStore
        from daar.perf.roofline import fraction, fraction_line

        ext = FeatureExtractor("default", layer=layer, dtype=dtype, store=FeatureStore(out / "flops"),
                               show_progress=False)
        flops = flops_of(ext, load_records(pool_file).records)
        res.fraction = fraction(seconds, flops, PEAK)
        print("    " + fraction_line("roofline", seconds, flops, PEAK, records=res.records, tokens=res.tokens,
                                     cpu_seconds=cpu), flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"), help="the shared real-data pack")
    p.add_argument("--n", type=int, default=1000, help="records of W-1k to use (n/4 from each domain)")
    p.add_argument("--full-n", type=int, default=None, help="records for the full-depth run (default: all --n)")
    p.add_argument("--reference-n", type=int, default=100, help="records for the slow reference comparison")
    p.add_argument("--full-layer", type=int, default=None, help="full depth (default: the model's layer count)")
    p.add_argument("--batch-size", type=int, default=None, help="row cap of a batch (default: the token budget only)")
    p.add_argument("--dtype", default="measured", choices=["measured", "auto", "bfloat16", "float32"],
                   help="measured: time bf16 and fp32 matrix products here and run in the faster one")
    p.add_argument("--whole-command", action="store_true", help="also time the whole `daar embed --layer 3`")
    p.add_argument("--only-whole-command", action="store_true", help="time only the whole command (quick)")
    p.add_argument("--model", default="default")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--skip-full", action="store_true", help="skip the (slow) full-depth run")
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from daar.data import load_records
    from daar.models.loading import pick_dtype, resolve_model

    data_dir = Path(args.data_dir)
    if not (data_dir / "pool").is_dir():
        print(f"{data_dir}/pool not found; pass --data-dir", file=sys.stderr)
        return 2
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolve_model(args.model))
    depth = config.num_hidden_layers
    from daar.perf.roofline import best_peak, machine_info, measure_peaks, model_shapes

    global PEAK
    print(machine_info().line(), flush=True)
    peaks = measure_peaks(("bfloat16", "float32"), shapes=model_shapes(config, 2048))
    for peak in peaks.values():
        print(peak.line(), flush=True)
    if args.dtype == "measured":
        args.dtype = best_peak(peaks).dtype
    PEAK = peaks[str(pick_dtype(args.dtype, "cpu")).replace("torch.", "")]
    if PEAK.tflops < best_peak(peaks).tflops:
        print(f"note: {PEAK.dtype} is not this machine's fastest dtype ({best_peak(peaks).dtype})", flush=True)
    full_layer = args.full_layer or depth
    print(f"workload {WORKLOAD}: rows 0..{args.n // 4} of {', '.join(DOMAINS)}; model {args.model} ({depth} layers); "
          f"dtype {args.dtype} -> {str(pick_dtype(args.dtype, 'cpu')).replace('torch.', '')}; "
          f"torch threads {torch.get_num_threads()}; cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}",
          flush=True)

    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="daar-bench-") as tmp:
        tmp = Path(tmp)
        pool_file = tmp / "w1k.jsonl"
        write_workload(data_dir, args.n // 4, pool_file)
        records = load_records(pool_file).records
        full_subset = evenly(records, args.full_n)
        ref_subset = evenly(records, args.reference_n)
        common = dict(dtype=args.dtype, model=args.model)
        if args.whole_command or args.only_whole_command:
            results["whole"] = whole_command(pool_file, tmp, args.dtype)
        if args.only_whole_command:
            after = measure_peaks((PEAK.dtype,), shapes=model_shapes(config, 2048))[PEAK.dtype]
            print("after the run: " + after.line(), flush=True)
            return 0

        results["layer3"] = measure("layer 3, dynamic batching", records, tmp, layer=3,
                                    batch_size=args.batch_size, **common)
        if not args.skip_full:
            tag = "" if len(full_subset) == len(records) else f", subset of {len(full_subset)}"
            results["full"] = measure(f"layer {full_layer} (full depth), dynamic batching{tag}", full_subset, tmp,
                                      layer=full_layer, batch_size=args.batch_size, **common)
            results["full_base"] = results["layer3"] if not tag else measure(
                f"layer 3, dynamic batching{tag}", full_subset, tmp, layer=3, batch_size=args.batch_size, **common)
        results["ref_dynamic"] = measure(f"layer 3, dynamic batching, subset of {len(ref_subset)}", ref_subset, tmp,
                                         layer=3, batch_size=args.batch_size, **common)
        results["ref_reference"] = measure(f"layer 3, reference (pad to 1024, batch 1), subset of {len(ref_subset)}",
                                           ref_subset, tmp, layer=3, pooling="mean-padded", batch_size=1,
                                           max_length=1024, **common)

    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (figures are noisy when other work shares the CPUs)")
    print(f"\n### Feature extraction speed, {WORKLOAD}, bundled SmolLM2-135M-Instruct, "
          f"{str(pick_dtype(args.dtype, 'cpu')).replace('torch.', '')}, {torch.get_num_threads()} threads\n")
    print("| workload | setting | records | real tokens | seconds | records/s | tokens/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in {id(r): r for r in results.values()}.values():
        print(f"| {WORKLOAD} | {r.name} | {r.records} | {r.tokens} | {r.seconds:.1f} | {r.rps:.2f} | {r.tps:.0f} |")
    ratios = {}
    if "full" in results:
        ratios[f"layer 3 vs full depth (records/s, same {results['full'].records} records)"] = (
            results["full_base"].rps / results["full"].rps)
    ratios[f"dynamic batching vs reference behaviour (records/s, same {results['ref_reference'].records} records)"] = (
        results["ref_dynamic"].rps / results["ref_reference"].rps)
    print()
    for name, value in ratios.items():
        print(f"[{WORKLOAD}] {name}: {value:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"workload": WORKLOAD, "results": {k: vars(v) | {"records_per_s": v.rps,
                                   "tokens_per_s": v.tps} for k, v in results.items()}, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
