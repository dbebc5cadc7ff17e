"""Generation speed of the local synthesis backend (daar.synth.backends.HFBackend) at its batch size,
with the roofline: generated tokens/s and the fraction of the matrix peak those tokens' model FLOPs are
(every decoder layer + the LM head per generated token; decoding at small batch is memory-bound, so
expect a small fraction: the figure says how far from compute-bound it runs).

    python benchmarks/generation.py                          # batch 16, 64 new tokens, the variants below
    python benchmarks/generation.py --batch 8 --new-tokens 128 --decoders loop,hf-static

Decoders: `hf` (transformers' generate, dynamic KV cache), `hf-static` (generate with its static
cache), `loop` (daar's own loop: top-k candidates only, ended rows dropped, KV written in place) or
`loop-dynamic` (the same loop on transformers' concatenating DynamicCache; the same tokens).
`--prompt-log` takes the prompts from a synthesis attempt log (domains/attempts.jsonl of a run) instead
of the built-in short ones: the real prompt lengths and padding of a synthesis batch. Each is timed greedy
(the same tokens for every decoder in float32) and sampled at the synthesis settings (temperature
0.9, top-p 0.95); sampled token counts differ between decoders (different random streams), and
rows that end early leave fewer rows per step, so compare like with like over several runs.

`--chains N` (N >= 2) instead times what a synthesis of N chains does with one batch each: the N sampled
generate calls (seeds 0..N-1) one after another on every thread, then side by side, one thread each
(daar.perf.side_by_side, what the synthesis stage does on a CPU), alternated `--repeats` times; it prints
both and whether the side-by-side texts are the one-by-one texts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PROMPTS = ["Write one short question a student might ask about {t}.", "Explain {t} in two sentences.",
           "Give a small Python example about {t}.", "State one fact about {t}."]
TOPICS = ["fractions", "rivers", "sorting lists", "logic puzzles", "photosynthesis", "prime numbers",
          "recursion", "the moon"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="default")
    p.add_argument("--batch", type=int, default=16, help="the backend's batch size (--synth-batch)")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--decoders", default="hf,loop-dynamic,loop", help="decoders to compare")
    p.add_argument("--prompt-log", type=Path, help="a synthesis attempt log: its first --batch prompts")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--chains", type=int, default=1, help=">= 2: N chains' batches one by one vs side by side")
    p.add_argument("--repeats", type=int, default=1, help="with --chains: alternated repetitions")
    args = p.parse_args(argv)

    import torch

    from daar.perf.roofline import fraction_line, machine_info
    from daar.synth.backends import HFBackend

    print(machine_info().line(), flush=True)
    chats = [[{"role": "user", "content": PROMPTS[i % 4].format(t=TOPICS[i % len(TOPICS)])}] for i in range(args.batch)]
    if args.prompt_log:
        import json

        logged = [json.loads(line) for line in args.prompt_log.read_text().splitlines() if line.strip()]
        chats = [[{"role": "user", "content": e["prompt"]}] for e in logged if "prompt" in e][: args.batch]
    if args.chains > 1:
        return _chains(args, chats)
    for decoder in args.decoders.split(","):
        backend = HFBackend(args.model, dtype=args.dtype, batch_size=args.batch,
                            decoder="hf" if decoder.startswith("hf") else "loop",
                            kv_cache="dynamic" if decoder == "loop-dynamic" else "growing",
                            cache_implementation="static" if decoder == "hf-static" else None)
        peak, prompts = _prepare(backend, args.batch, chats)
        for mode, temperature in (("greedy", 0.0), ("sampled", 0.9)):
            t0 = time.perf_counter()
            outs = backend.generate(chats, max_new_tokens=args.new_tokens, temperature=temperature, top_p=0.95, seed=0)
            seconds = time.perf_counter() - t0
            flops, new = _generated_flops(backend, prompts, outs)
            print(fraction_line(f"[{args.batch} prompts] {decoder} {mode}, {new} generated tokens",
                                seconds, flops, peak, tokens=new), flush=True)
        del backend
        torch.manual_seed(0)
    return 0


def _prepare(backend, batch: int, chats) -> tuple:
    """The dtype's matrix peak (measured now, printed), a warm-up, and each chat's prompt length in tokens."""
    from daar.perf.roofline import measure_peak

    cfg, tok = backend.loaded.model.config, backend.loaded.tokenizer
    peak = measure_peak(str(backend.loaded.dtype).replace("torch.", ""),
                        shapes=[(batch, cfg.hidden_size, cfg.intermediate_size)])
    print(peak.line(), flush=True)
    backend.generate(chats[:2], max_new_tokens=4, temperature=0)  # warm-up
    return peak, [len(tok(backend._prompt_text(c))["input_ids"]) for c in chats]


def _generated_flops(backend, prompts: list[int], outs) -> tuple[float, int]:
    """(model FLOPs, tokens) of the replies `outs` (generate's output, one reply per prompt): each generated
    token runs every layer over itself (+ attention to its context) and the LM head."""
    from daar.perf.roofline import decoder_flops, lm_head_flops

    cfg, tok = backend.loaded.model.config, backend.loaded.tokenizer
    new = [len(tok(o[0], add_special_tokens=False)["input_ids"]) for o in outs]
    flops = sum(decoder_flops(cfg, [p + n]) - decoder_flops(cfg, [p]) for p, n in zip(prompts, new, strict=True))
    return flops + lm_head_flops(cfg, sum(new)), sum(new)


def _chains(args, chats) -> int:
    """N sampled batches one after another (all threads) vs side by side (one thread each), alternated."""
    import torch

    from daar.perf.roofline import fraction_line
    from daar.perf.side_by_side import run_side_by_side
    from daar.synth.backends import HFBackend

    backend = HFBackend(args.model, dtype=args.dtype, batch_size=args.batch)
    threads = torch.get_num_threads()
    peak, prompts = _prepare(backend, args.batch, chats)

    def job(seed):
        return lambda: backend.generate(chats, max_new_tokens=args.new_tokens, temperature=0.9, top_p=0.95, seed=seed)

    jobs = [job(seed) for seed in range(args.chains)]
    texts = {}
    for rep in range(args.repeats):
        for how, workers in (("one by one", 1), ("side by side", args.chains)):
            t0 = time.perf_counter()
            outs = run_side_by_side(jobs, workers, threads=None if workers > 1 else threads)
            seconds = time.perf_counter() - t0
            texts[how] = outs
            flops, new = _generated_flops(backend, prompts * args.chains, [o for out in outs for o in out])
            label = (f"[{args.chains} chains x {args.batch} prompts, run {rep + 1}] {how} "
                     f"({'1 thread each' if workers > 1 else f'{threads} threads'}), {new} generated tokens")
            print(fraction_line(label, seconds, flops, peak, tokens=new), flush=True)
    print(f"side-by-side texts equal to one-by-one texts: {texts['one by one'] == texts['side by side']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
