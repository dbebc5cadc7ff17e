"""Text generation backends: local Hugging Face `generate` (default) or an OpenAI-compatible server.

Both take chat-style prompts (lists of {"role", "content"}) and return `n` completions per prompt.
The local backend generates every candidate of a round in one padded batch, because on a CPU one
sequence at a time leaves most of the matrix throughput unused.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from typing import Any

from daar.errors import ConfigError
from daar.settings import Config

log = logging.getLogger(__name__)

Chat = list[dict[str, str]]


class GenerationBackend(ABC):
    identity: str = ""

    @abstractmethod
    def generate(self, prompts: list[Chat], *, n: int = 1, temperature: float = 0.9, top_p: float = 0.95,
                 max_new_tokens: int = 512, seed: int | None = None, prefix: str = "") -> list[list[str]]:
        """n completions for each prompt (outer list follows `prompts`).

        `prefix` starts the assistant's reply (e.g. '{"instruction": "'): small models follow a
        format far more reliably when its first tokens are given. Returned texts include it.
        Backends that cannot prefill ignore it and return the reply as generated.
        """


def _json_stopper(tokenizer, prompt_len: int, prefix: str, rows: int):
    """A StoppingCriteria that ends each sequence once its JSON reply has closed.

    Small models keep talking after the object they were asked for; on a CPU those extra tokens
    are most of the cost, so each row stops as soon as its first JSON value is complete.
    """
    import torch
    from transformers import StoppingCriteria

    from daar.synth.parse import JsonCloseScanner

    class JsonComplete(StoppingCriteria):
        def __init__(self) -> None:
            self.seen = prompt_len
            self.rows = [JsonCloseScanner() for _ in range(rows)]
            for row in self.rows:
                row.feed(prefix)

        def __call__(self, input_ids, scores, **kwargs):
            new = tokenizer.batch_decode(input_ids[:, self.seen:], skip_special_tokens=True)
            self.seen = input_ids.shape[1]
            return torch.tensor([row.feed(t) for row, t in zip(self.rows, new, strict=True)], device=input_ids.device)

    return JsonComplete()


class HFBackend(GenerationBackend):
    def __init__(self, model: str | None, dtype: str = "auto", device: str | None = None, batch_size: int = 8,
                 cache_implementation: str | None = None):
        from daar.models.loading import load_model

        # None: transformers' dynamic KV cache; "static": a preallocated one (benchmarks/generation.py
        # measures both; without torch.compile the static cache was not faster on the CPU)
        self.cache_implementation = cache_implementation
        self.loaded = load_model(model, dtype=dtype, device=device, causal_lm=True)
        self.identity = self.loaded.identity
        self.batch_size = batch_size
        tok = self.loaded.tokenizer
        tok.padding_side = "left"  # generation continues from the right edge

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
        if seed is not None:
            torch.manual_seed(seed)
        outs: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(self.loaded.device)
            stop = [_json_stopper(tok, enc["input_ids"].shape[1], prefix, len(chunk))] if prefix.lstrip()[:1] in ("{", "[") else []
            with torch.inference_mode():
                gen = model.generate(**enc, do_sample=temperature > 0, temperature=temperature if temperature > 0 else None,
                                     top_p=top_p if temperature > 0 else None, max_new_tokens=max_new_tokens,
                                     pad_token_id=tok.pad_token_id, stopping_criteria=stop or None,
                                     **({"cache_implementation": self.cache_implementation}
                                        if self.cache_implementation else {}))
            new = gen[:, enc["input_ids"].shape[1]:]
            outs.extend(prefix + t for t in tok.batch_decode(new, skip_special_tokens=True))
        return [outs[i * n : (i + 1) * n] for i in range(len(prompts))]


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


def make_backend(cfg: Config) -> GenerationBackend:
    """The backend a config asks for: --generator-url, else local generate with --generator-model/--model."""
    import os

    s, lm = cfg.synthesis, cfg.lm
    model = s.generator_model or lm.model
    if s.generator_url:
        return OpenAIBackend(s.generator_url, model, api_key=os.environ.get("OPENAI_API_KEY"))
    return HFBackend(model, dtype=lm.dtype, device=lm.device, batch_size=s.synth_batch)
