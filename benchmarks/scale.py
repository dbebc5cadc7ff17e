"""Scale-out benchmark: records/s and peak memory of `daar select` in memory, streaming, and on Ray.

Pools of N records are built from ../shared/data/pool (rows replicated with fresh ids and a small
text variation, written to a temp folder). Part 1 uses a tiny random Llama (hidden 64, 2 layers; by
default with the bundled model's tokenizer, --tiny-tokenizer) so that the pipeline, not the model, is
measured: in memory (sizes up to --memory-max), local streaming, Ray with 1 and 2 workers. Even so, on
2 CPUs its forward pass (~20 MFLOP a record at ~110 tokens) is most of the scoring time. Part 2 uses
the bundled SmolLM2-135M on --bundled-records records: local streaming vs Ray with 1 and 2 workers.
Every run is a child process; its peak RSS is the child's own (the driver's) VmHWM (not `ru_maxrss`, which a child inherits), and for
streamed runs the largest worker peak the shard markers record. The probe stages are kept small
(domains with examples, no synthesis; --probe-size, 1 head epoch): they run once on the driver
whatever the pool size, and the scale-out is what is measured.

    python benchmarks/scale.py --sizes 5000,20000 --bundled-records 500          # a rehearsal (minutes)
    python benchmarks/scale.py --sizes 100000,1000000 --bundled-records 20000    # the full run (hours on 2 CPUs)
    python benchmarks/scale.py ... --device cuda                                  # on a GPU machine

Outputs: TMP/results.json and a markdown table on stdout, with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POOL_DIR = ROOT.parent / "shared" / "data" / "pool"
MODES = ("memory", "stream", "ray-1", "ray-2")


def machine() -> dict:
    import torch

    try:
        import ray

        ray_version = ray.__version__
    except ImportError:
        ray_version = None
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem / 2**20, 1), "python": platform.python_version(),
            "torch": torch.__version__, "ray": ray_version, "load_average": os.getloadavg(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def build_pool(path: Path, n: int) -> Path:
    """n records: the shared pool's rows in turn, each with a fresh id and a marked variation."""
    rows = []
    for f in sorted(POOL_DIR.glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            r = dict(rows[i % len(rows)])
            copy = i // len(rows)
            r["id"] = f"r{i:08d}"
            if copy:  # a small variation, so copies are different texts (no feature cache hit)
                r["instruction"] = f"{r.get('instruction', '')} (variant {copy})"
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def domains_file(path: Path) -> Path:
    """The four domains with a few real examples each (so no synthesis runs)."""
    import yaml

    doms = []
    for f in sorted(POOL_DIR.glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            ex = [json.loads(next(fh)) for _ in range(4)]
        doms.append({"name": f.stem, "description": f"{f.stem.replace('_', ' ')} questions",
                     "examples": [{k: e.get(k, "") for k in ("instruction", "input", "output")} for e in ex]})
    path.write_text(yaml.safe_dump(doms))
    return path


def child(args) -> None:
    """One measured run (in this process): prints a JSON line with its figures."""
    from daar.runs.select import DaaR
    from daar.scale.score import peak_rss_mb

    settings = json.loads(args.child)
    mode = settings.pop("mode")
    extra = ({} if mode == "memory" else {"stream": True} if mode == "stream"
             else {"backend": "ray", "workers": int(mode[4:])})
    t0 = time.perf_counter()
    m = DaaR(**settings, **extra).select(settings.pop("data"), settings.pop("out"))
    wall = time.perf_counter() - t0
    sc = m.get("scale", {})
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print("RESULT " + json.dumps({
        "mode": mode, "records": m["counts"]["read"], "wall_s": round(wall, 2),
        # this process's CPU time (local modes: every stage; Ray: the driver only) and the load at the end:
        # on a shared machine wall-clock rates depend on the other jobs, so both are kept with each row
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "load_average": os.getloadavg(),
        "records_per_s_total": round(m["counts"]["read"] / wall, 1),
        "records_per_s_scoring": sc.get("records_per_second"),
        "driver_peak_rss_mb": peak_rss_mb(),  # VmHWM: ru_maxrss would include this benchmark's own peak
        "worker_peak_rss_mb": sc.get("worker_peak_rss_mb")}))


def measure(settings: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(settings)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"mode": settings["mode"], "error": f"over {timeout:.0f} s"}
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"mode": settings["mode"], "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(line[7:])


def tiny_model(path: Path, tokenizer: str = "bundled") -> str:
    """A random Llama (hidden 64, 2 layers): the pipeline's stand-in for a model.

    tokenizer "bundled": the bundled SmolLM2's (49k entries), so records have the token counts a real
    model sees (the pool averages ~110 tokens at --max-length 256); "test": the tests' 320-entry
    byte-level one, which splits text almost byte by byte (~220 tokens a record, half of them cut at
    256), so both its tokenising and the forward pass cost ~2x per record what a real tokenizer's do.
    """
    if tokenizer == "test":
        sys.path.insert(0, str(ROOT / "tests"))
        from data_helpers import build_tiny_model

        return build_tiny_model(path, "llama", layers=2)
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from daar.models.loading import resolve_model

    if (path / "config.json").exists():
        return str(path)
    tok = AutoTokenizer.from_pretrained(resolve_model("default"))
    tok.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(path)
    return str(path)


def table(rows: list[dict]) -> str:
    head = "| model | records | mode | wall s | records/s (all) | records/s (scoring) | driver peak RSS MB | worker peak RSS MB |"
    out = [head, "|" + "---|" * 8]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['size']} | {r['mode']} | failed: {r['error']} | | | | |")
        else:
            out.append(f"| {r['model']} | {r['records']} | {r['mode']} | {r['wall_s']} | {r['records_per_s_total']} | "
                       f"{r['records_per_s_scoring'] or '—'} | {r['driver_peak_rss_mb']} | {r['worker_peak_rss_mb'] or '—'} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,1000000", help="pool sizes of the tiny-model part")
    p.add_argument("--bundled-records", type=int, default=20000, help="pool size of the bundled-model part (0: skip)")
    p.add_argument("--memory-max", type=int, default=200000, help="largest pool run in memory")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--shard-size", type=int, default=10000)
    p.add_argument("--probe-size", type=int, default=500)
    p.add_argument("--tiny-tokenizer", choices=("bundled", "test"), default="bundled",
                   help="the tiny model's tokenizer: the bundled SmolLM2's (real token counts) or the tests' "
                   "320-entry one (~2x the tokens a record; the 2026-12-02 rehearsal used it)")
    p.add_argument("--tiny-max-length", type=int, default=256, help="the tiny model's --max-length")
    p.add_argument("--timeout", type=float, default=6 * 3600, help="seconds per run")
    p.add_argument("--tmp", help="work folder (default: a new temp folder)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="daar-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DAAR_CACHE", str(tmp / "cache"))
    info = machine()
    print("machine:", json.dumps(info))
    doms = domains_file(tmp / "domains.yaml")
    modes = args.modes.split(",")
    common = {"domains": str(doms), "probe_size": args.probe_size, "probe_epochs": 1, "budget": "10%",
              "device": args.device, "shard_size": args.shard_size}
    tiny = {"max_length": args.tiny_max_length, "layer": "2", "dtype": "float32"}
    info["tiny_model"] = {"tokenizer": args.tiny_tokenizer, **tiny}
    plans = [("tiny", tiny_model(tmp / f"tiny-{args.tiny_tokenizer}", args.tiny_tokenizer), int(s), tiny)
             for s in args.sizes.split(",") if s]
    if args.bundled_records:
        plans.append(("bundled", "default", args.bundled_records, {}))
    rows = []
    for name, model, size, extra in plans:
        data = tmp / f"pool-{size}.jsonl"
        if not data.exists():
            build_pool(data, size)
        for mode in modes:
            if (mode == "memory" and (size > args.memory_max or name == "bundled")):
                continue
            settings = {**common, **extra, "model": model, "mode": mode, "data": str(data),
                        "out": str(tmp / f"run-{name}-{size}-{mode}")}
            r = {"model": name, "size": size, **measure(settings, args.timeout)}
            rows.append(r)
            print(json.dumps(r), flush=True)
            (tmp / "results.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    print(f"\nmachine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB, GPU {info['gpu']}, "
          f"torch {info['torch']}, ray {info['ray']}; tiny model: {info['tiny_model']}\n")
    print(table(rows))
    print(f"\nresults: {tmp / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
