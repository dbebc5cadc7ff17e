"""Text generation backends: local Hugging Face `generate` (default) or an OpenAI-compatible server.

Both take chat-style prompts (lists of {"role", "content"}) and return `n` completions per prompt.
The local backend generates every candidate of a round in one padded batch, because on a CPU one
sequence at a time leaves most of the matrix throughput unused.

Its decoding loop is our own, not transformers' `generate` (kept as `decoder="hf"`, the reference in
tests and benchmarks/generation.py). Measured on a 2-core AVX2 CPU, bundled model, batch 16, float32
(README, "Generation"): `generate`'s sampling works over the whole 49k vocabulary every step (sort
for top-p, an exponential draw per vocabulary entry for the multinomial), ~43 ms of a ~200 ms step,
although its top-k of 50 leaves 50 candidates; and rows that have ended keep being computed until
the longest one ends. The loop draws from the same distribution (temperature, top-k 50, top-p, as
`generate` applies them) over the 50 candidates only, and drops ended rows from the batch and the
KV cache. (int8 weights were measured and rejected: dynamic int8 matrix products raised the bundled
model's loss on real pool text from 2.00 to 3.05 nats per token, README "Generation".)
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from daar.errors import ConfigError
from daar.settings import Config

log = logging.getLogger(__name__)

Chat = list[dict[str, str]]


class GenerationBackend(ABC):
    identity: str = ""
    # how many generate() calls may usefully run at once from different threads (synthesis chains side by
    # side, daar.perf.side_by_side); 1: calls are made one after another
    concurrent_calls: int = 1

    @abstractmethod
    def generate(self, prompts: list[Chat], *, n: int = 1, temperature: float = 0.9, top_p: float = 0.95,
                 max_new_tokens: int = 512, seed: int | None = None, prefix: str = "") -> list[list[str]]:
        """n completions for each prompt (outer list follows `prompts`).

        `prefix` starts the assistant's reply (e.g. '{"instruction": "'): small models follow a
        format far more reliably when its first tokens are given. Returned texts include it.
        Backends that cannot prefill ignore it and return the reply as generated.
        """


def _json_scanners(prefix: str, rows: int) -> list:
    """One JsonCloseScanner per row, already fed the reply's prefilled start."""
    from daar.synth.parse import JsonCloseScanner

    scanners = [JsonCloseScanner() for _ in range(rows)]
    for sc in scanners:
        sc.feed(prefix)
    return scanners


def _json_stop(tokenizer, scanners: list, lock: Any) -> Callable[[int, int], bool]:
    """decode()'s stop rule for JSON replies: a row ends once its first JSON value has closed (the token is
    decoded under `lock`, the tokenizer's lock, since other threads may use the tokenizer meanwhile)."""

    def stop(row: int, token: int) -> bool:
        with lock:
            text = tokenizer.decode([token], skip_special_tokens=True)
        return scanners[row].feed(text)

    return stop


def _json_stopper(tokenizer, prompt_len: int, prefix: str, rows: int):
    """A StoppingCriteria that ends each sequence once its JSON reply has closed.

    Small models keep talking after the object they were asked for; on a CPU those extra tokens
    are most of the cost, so each row stops as soon as its first JSON value is complete.
    """
    import torch
    from transformers import StoppingCriteria

    class JsonComplete(StoppingCriteria):
        def __init__(self) -> None:
            self.seen = prompt_len
            self.rows = _json_scanners(prefix, rows)

        def __call__(self, input_ids, scores, **kwargs):
            new = tokenizer.batch_decode(input_ids[:, self.seen:], skip_special_tokens=True)
            self.seen = input_ids.shape[1]
            return torch.tensor([row.feed(t) for row, t in zip(self.rows, new, strict=True)], device=input_ids.device)

    return JsonComplete()


# transformers' default top-k for sampling (GenerationConfig defaults), which `generate` applied to the
# bundled model (its generation config sets none): the loop keeps that distribution.
TOP_K = 50


def sampling_probs(logits: Any, temperature: float, top_p: float) -> tuple[Any, Any]:
    """(probabilities, token ids) of the candidates `generate` samples from, TOP_K per row:
    logits / temperature, the top-k, then the smallest top set of mass >= top_p, renormalised."""
    vals, idx = (logits / temperature).topk(min(TOP_K, logits.shape[-1]), dim=-1)  # descending
    # transformers' TopP: over ascending order, drop tokens whose cumulative mass is <= 1 - top_p, keep the top one
    drop = vals.softmax(-1).flip(-1).cumsum(-1) <= 1 - top_p
    drop[:, -1] = False
    return vals.masked_fill(drop.flip(-1), float("-inf")).softmax(-1), idx


def next_tokens(logits: Any, temperature: float, top_p: float, generator: Any) -> Any:
    """One token per row: greedy at temperature 0, else a draw from `sampling_probs`."""
    import torch

    if temperature <= 0:
        return logits.argmax(-1)
    probs, idx = sampling_probs(logits, temperature, top_p)
    return idx.gather(-1, torch.multinomial(probs, 1, generator=generator)).squeeze(-1)


def decode(model: Any, input_ids: Any, attention_mask: Any, *, max_new_tokens: int, temperature: float,
           top_p: float, eos: set[int], generator: Any, stop: Callable[[int, int], bool] | None = None,
           kv_cache: str = "growing") -> list[list[int]]:
    """New token ids per row of a left-padded batch. A row ends at an eos token (not kept) or when
    `stop(row, token)` says so (token kept); an ended row leaves the batch and the KV cache.
    kv_cache "growing": tokens written in place (daar.perf.kv_cache); "dynamic": transformers' DynamicCache
    (the same tokens; kept for the benchmark's A/B and for transformers without pluggable cache layers)."""
    import torch
    from transformers import DynamicCache

    from daar.perf.kv_cache import growing_cache

    if kv_cache not in ("growing", "dynamic"):
        raise ValueError(f"unknown kv_cache {kv_cache!r}: growing or dynamic")
    # transformers renamed the cache argument (past_key_values -> cache) and logits_to_keep over the versions
    # pyproject allows; pick the names this model's forward takes
    params = inspect.signature(model.forward).parameters
    cache = growing_cache(model.config, input_ids.shape[1] + max_new_tokens) if kv_cache == "growing" else None
    if cache is None:
        try:
            cache = DynamicCache(config=model.config)
        except TypeError:  # older transformers: no config argument
            cache = DynamicCache()
    names = {"cache" if "cache" in params else "past_key_values": cache}
    keep_last = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    if keep_last:
        names[keep_last] = 1
    rows = list(range(input_ids.shape[0]))  # original row of each row still running
    out: list[list[int]] = [[] for _ in rows]
    mask = attention_mask
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    ids = input_ids
    for _ in range(max_new_tokens):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                       **names).logits[:, -1, :].float()
        new = next_tokens(logits, temperature, top_p, generator)
        keep = []
        for j, (r, t) in enumerate(zip(rows, new.tolist(), strict=True)):
            if t in eos:
                continue
            out[r].append(t)
            if stop is None or not stop(r, t):
                keep.append(j)
        if not keep:
            break
        if len(keep) < len(rows):
            sel = torch.tensor(keep)
            cache.batch_select_indices(sel)
            rows, mask, pos, new = [rows[j] for j in keep], mask[sel], pos[sel], new[sel]
        ids = new[:, None]
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        pos = pos[:, -1:] + 1
    return out


class HFBackend(GenerationBackend):
    def __init__(self, model: str | None, dtype: str = "auto", device: str | None = None, batch_size: int = 8,
                 cache_implementation: str | None = None, decoder: str = "loop", kv_cache: str = "growing"):
        from daar.models.loading import load_model

        if decoder not in ("loop", "hf"):
            raise ValueError(f"unknown decoder {decoder!r}: loop or hf")
        # cache_implementation (transformers' `generate` only): None = its dynamic KV cache, "static" a
        # preallocated one (benchmarks/generation.py; without torch.compile not faster on the CPU)
        self.cache_implementation = cache_implementation
        self.kv_cache = kv_cache  # the loop's cache (decode's kv_cache)
        self.decoder = "hf" if cache_implementation else decoder
        self.loaded = load_model(model, dtype=dtype, device=device, causal_lm=True)
        self.identity = self.loaded.identity
        self.batch_size = batch_size
        tok = self.loaded.tokenizer
        tok.padding_side = "left"  # generation continues from the right edge
        eos = self.loaded.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self.eos = {int(e) for e in eos} | ({int(tok.eos_token_id)} if tok.eos_token_id is not None else set())
        # A fast tokenizer used from two threads at once can fail ("Already borrowed") when one call changes
        # its padding or truncation state; the model itself is only read, so only the tokenizer is locked.
        self._tokenizer_lock = threading.Lock()
        self.concurrent_calls = local_concurrency(self.loaded.device, self.decoder)

    def _prompt_text(self, chat: Chat) -> str:
        tok = self.loaded.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in chat) + "\n\n"

    def generate(self, prompts: list[Chat], *, n: int = 1, temperature: float = 0.9, top_p: float = 0.95,
                 max_new_tokens: int = 512, seed: int | None = None, prefix: str = "") -> list[list[str]]:
        import torch

        tok, model = self.loaded.tokenizer, self.loaded.model
        texts = [self._prompt_text(p) + prefix for p in prompts for _ in range(n)]
        json_reply = prefix.lstrip()[:1] in ("{", "[")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        if seed is not None and self.decoder == "hf":
            torch.manual_seed(seed)  # the `generate` path draws from the global generator
        outs: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            with self._tokenizer_lock:
                enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(self.loaded.device)
            with torch.inference_mode():
                if self.decoder == "hf":
                    new = self._generate_hf(enc, json_reply, prefix, len(chunk), temperature, top_p, max_new_tokens)
                else:
                    stop = (_json_stop(tok, _json_scanners(prefix, len(chunk)), self._tokenizer_lock)
                            if json_reply else None)
                    new = decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=max_new_tokens,
                                 temperature=temperature, top_p=top_p, eos=self.eos, generator=gen, stop=stop,
                                 kv_cache=self.kv_cache)
            with self._tokenizer_lock:
                outs.extend(prefix + t for t in tok.batch_decode(new, skip_special_tokens=True))
        return [outs[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _generate_hf(self, enc: Any, json_reply: bool, prefix: str, rows: int, temperature: float, top_p: float,
                     max_new_tokens: int) -> Any:
        tok, model = self.loaded.tokenizer, self.loaded.model
        stop = [_json_stopper(tok, enc["input_ids"].shape[1], prefix, rows)] if json_reply else []
        gen = model.generate(**enc, do_sample=temperature > 0, temperature=temperature if temperature > 0 else None,
                             top_p=top_p if temperature > 0 else None, max_new_tokens=max_new_tokens,
                             pad_token_id=tok.pad_token_id, stopping_criteria=stop or None,
                             **({"cache_implementation": self.cache_implementation} if self.cache_implementation else {}))
        return gen[:, enc["input_ids"].shape[1]:]


class OpenAIBackend(GenerationBackend):
    """Any server speaking the OpenAI chat-completions API (vLLM, llama.cpp server, TGI, ...)."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 600.0):
        self.url = url.rstrip("/")
        if not self.url.endswith("/chat/completions"):
            self.url += "/chat/completions" if self.url.endswith("/v1") else "/v1/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.identity = f"{model}@{url}"

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(self.url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode())
        except urllib.error.URLError as exc:
            raise ConfigError(f"generation server {self.url} failed: {exc}. Check --generator-url") from None

    def generate(self, prompts: list[Chat], *, n: int = 1, temperature: float = 0.9, top_p: float = 0.95,
                 max_new_tokens: int = 512, seed: int | None = None, prefix: str = "") -> list[list[str]]:
        results = []  # chat-completions has no portable prefill: `prefix` is not sent
        for chat in prompts:
            payload = {"model": self.model, "messages": chat, "n": n, "temperature": temperature, "top_p": top_p,
                       "max_tokens": max_new_tokens}
            if seed is not None:
                payload["seed"] = seed
            body = self._post(payload)
            results.append([c["message"]["content"] or "" for c in body.get("choices", [])][:n])
        return results


def backend_identity(cfg: Config) -> str:
    """The identity `make_backend(cfg)`'s backend will have, computed without building (loading) it."""
    s = cfg.synthesis
    model = s.generator_model or cfg.lm.model
    if s.generator_url:
        return f"{model}@{s.generator_url}"  # = OpenAIBackend.identity
    from daar.models.loading import model_identity

    return model_identity(model)  # = HFBackend.identity


def local_concurrency(device: str, decoder: str = "loop") -> int:
    """HFBackend's `concurrent_calls`: on a CPU with daar's loop, one call per intra-op thread torch would use
    (each call then on its own thread and core); on a GPU one at a time, and with transformers' `generate`
    too (it draws from torch's global generator, which concurrent calls would share)."""
    import torch

    return max(1, torch.get_num_threads()) if str(device).startswith("cpu") and decoder == "loop" else 1


def backend_concurrency(cfg: Config) -> int:
    """The `concurrent_calls` of `make_backend(cfg)`'s backend, computed without building (loading) it."""
    if cfg.synthesis.generator_url:
        return OpenAIBackend.concurrent_calls
    from daar.models.loading import default_device

    return local_concurrency(cfg.lm.device or default_device())


def make_backend(cfg: Config) -> GenerationBackend:
    """The backend a config asks for: --generator-url, else local generate with --generator-model/--model."""
    import os

    s, lm = cfg.synthesis, cfg.lm
    model = s.generator_model or lm.model
    if s.generator_url:
        return OpenAIBackend(s.generator_url, model, api_key=os.environ.get("OPENAI_API_KEY"))
    return HFBackend(model, dtype=lm.dtype, device=lm.device, batch_size=s.synth_batch)
