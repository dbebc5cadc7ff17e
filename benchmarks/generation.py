"""Generation speed of the local synthesis backend (daar.synth.backends.HFBackend) at its batch size,
with the roofline: generated tokens/s and the fraction of the matrix peak those tokens' model FLOPs are
(every decoder layer + the LM head per generated token; decoding at small batch is memory-bound, so
expect a small fraction: the figure says how far from compute-bound it runs).

    python benchmarks/generation.py                          # batch 16, 64 new tokens, dynamic vs static cache
    python benchmarks/generation.py --batch 8 --new-tokens 128 --caches dynamic
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
    p.add_argument("--caches", default="dynamic,static", help="KV caches to compare")
    p.add_argument("--dtype", default="auto")
    args = p.parse_args(argv)

    import torch

    from daar.perf.roofline import decoder_flops, fraction_line, lm_head_flops, machine_info, measure_peak
    from daar.synth.backends import HFBackend

    print(machine_info().line(), flush=True)
    chats = [[{"role": "user", "content": PROMPTS[i % 4].format(t=TOPICS[i % len(TOPICS)])}] for i in range(args.batch)]
    for cache in args.caches.split(","):
        backend = HFBackend(args.model, dtype=args.dtype, batch_size=args.batch,
                            cache_implementation=None if cache == "dynamic" else cache)
        cfg, tok = backend.loaded.model.config, backend.loaded.tokenizer
        dtype = str(backend.loaded.dtype).replace("torch.", "")
        peak = measure_peak(dtype, shapes=[(args.batch, cfg.hidden_size, cfg.intermediate_size)])
        backend.generate(chats[:2], max_new_tokens=4, temperature=0)  # warm-up
        t0 = time.perf_counter()
        outs = backend.generate(chats, max_new_tokens=args.new_tokens, temperature=0, seed=0)
        seconds = time.perf_counter() - t0
        new = [len(tok(o[0], add_special_tokens=False)["input_ids"]) for o in outs]
        prompt = len(tok(backend._prompt_text(chats[0]))["input_ids"])
        # each generated token runs every layer over itself (+ attention to the context) and the LM head
        flops = sum(decoder_flops(cfg, [prompt + n]) - decoder_flops(cfg, [prompt]) for n in new)
        flops += lm_head_flops(cfg, sum(new))
        print(peak.line(), flush=True)
        print(fraction_line(f"[{args.batch} prompts] {cache} KV cache, {sum(new)} generated tokens", seconds, flops,
                            peak, tokens=sum(new)), flush=True)
        del backend
        torch.manual_seed(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
