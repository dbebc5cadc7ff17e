"""Pooled features from a causal LM, batched by length and cached in the feature store.

Texts are tokenised once, sorted by length and cut into batches, so each batch pads only to its own
longest member (dynamic padding) instead of to --max-length. Missing rows are computed in chunks;
each chunk is committed to the store as one shard, so an interrupted run loses at most one chunk.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from daar.batching import length_batches, longest_first
from daar.data.records import Record
from daar.data.render import Renderer
from daar.features.pooling import POOLINGS, pool
from daar.features.store import FeatureSet, FeatureSpec, FeatureStore, text_key
from daar.models.loading import LoadedModel, default_device, load_model, model_identity, pick_dtype

log = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = {"embedding": 512, "layer": 1024}
# Records per committed shard (and so the most work a kill can lose). The environment variable
# DAAR_SHARD_SIZE overrides the default for every extractor built without an explicit shard_size,
# e.g. to make interrupt-and-resume tests write several shards from a small pool.
DEFAULT_SHARD_SIZE = 512


def default_shard_size() -> int:
    """DAAR_SHARD_SIZE when set (checked by the one rule for integer environment variables), else the default."""
    from daar.settings.base import env_int

    size = env_int("DAAR_SHARD_SIZE", minimum=1)
    return DEFAULT_SHARD_SIZE if size is None else size


def parse_layer(layer: str | int) -> str:
    """'embedding' or a non-negative decoder layer number, as text."""
    text = str(layer).strip().lower()
    if text in ("embedding", "embeddings", "emb"):
        return "embedding"
    if text.isdigit() and int(text) >= 1:
        return str(int(text))
    raise ValueError(f"--layer must be 'embedding' or a decoder layer number >= 1, got '{layer}'")


@dataclass
class ExtractStats:
    n_total: int = 0
    n_cached: int = 0
    n_computed: int = 0
    n_tokens: int = 0
    seconds: float = 0.0


# Padded tokens per forward pass when none is given. CPU: activations of a few thousand rows stay in the
# L2/L3 caches between the many memory-bound element-wise ops of a layer (norms, rotary, SiLU) while the
# matrix products are already at their peak at ~2k rows; larger batches measured slower (README,
# Performance). GPU: big enough to fill the device for models of the bundled one's size.
DEFAULT_BATCH_TOKENS = {"cpu": 4096, "cuda": 131072}


def default_batch_tokens(device: str) -> int:
    return DEFAULT_BATCH_TOKENS["cuda" if str(device).startswith("cuda") else "cpu"]


def _padded_batch(rows: list[list[int]], width: int, pad_id: int):
    """Right-padded ids [B, width] and the 0/1 mask of real tokens, built in numpy (no per-row tensors)."""
    import torch

    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, seq in enumerate(rows):
        seq = seq[:width] or [pad_id]
        ids[r, : len(seq)] = seq
        mask[r, : len(seq)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def decoder_forward(loaded: LoadedModel, max_length: int):
    """input_ids [B, T] -> final-normed hidden states: transformers' own forward, with no mask; daar's fused
    forward (perf/fast_decoder.py) only when DAAR_FAST_DECODER=1 and it supports the model.

    Opt-in, not the default: on a quiet 2-core AVX-512 machine (W-1k, layer 3, bf16, two runs each) it
    measured 41.8 / 48.7 % of the bf16 peak against 49.5 / 47.0 % for transformers' forward, i.e. no
    gain beyond noise, so the maintained library's code stays the default."""
    cached = getattr(loaded, "_forward", None)
    if cached is not None and cached[0] >= max_length:
        return cached[1]
    from daar.perf.fast_decoder import FastDecoder, supports

    model = loaded.model
    if os.environ.get("DAAR_FAST_DECODER", "0") == "1" and supports(model, max_length):
        forward = FastDecoder(model)
    else:
        import inspect

        # use_cache=False: no key/value cache to build (and concatenate into) for a single forward pass;
        # asked only of models whose forward takes it
        no_cache = {"use_cache": False} if "use_cache" in inspect.signature(model.forward).parameters else {}

        def forward(input_ids):
            return model(input_ids=input_ids, attention_mask=None, **no_cache).last_hidden_state
    loaded._forward = (max_length, forward)  # type: ignore[attr-defined]
    return forward


def embed_token_ids(loaded: LoadedModel, ids: list[list[int]], layer: str, pooling: str, max_length: int,
                    batch_size: int | None = None, max_tokens: int | None = None, progress=None) -> np.ndarray:
    """Pooled features for already-tokenised sequences, in input order.

    Batches are cut by a padded-token budget (`max_tokens`, default by device) and, when given, at most
    `batch_size` rows. Sequences are right-padded and run with no attention mask: under causal attention
    a real token only sees itself and the tokens before it, all real, so its state is exactly the
    unpadded one (the tests compare with one text at a time), while the attention kernel takes its
    causal fast path instead of building and applying a [B, T, T] mask. Pooling then ignores the pads.
    """
    import torch

    model, device = loaded.model, loaded.device
    pad_id = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    padded_reference = pooling == "mean-padded"
    order = longest_first([len(x) for x in ids])
    lengths = [max_length if padded_reference else max(1, len(ids[i])) for i in order]
    budget = max_tokens or default_batch_tokens(device)
    forward = decoder_forward(loaded, max(lengths, default=1)) if layer != "embedding" else None
    pooled_parts = []
    with torch.inference_mode():
        for batch in length_batches(lengths, batch_size or len(lengths) or 1, budget):
            width = max(lengths[b] for b in batch)
            input_ids, mask = _padded_batch([ids[order[b]] for b in batch], width, pad_id)
            input_ids = input_ids.to(device, non_blocking=True)
            mask = mask.to(device, non_blocking=True)
            if layer == "embedding":
                hidden = model.get_input_embeddings()(input_ids)
            else:
                # mean-padded: the reference scripts run without an attention mask on fully padded input too
                hidden = forward(input_ids)
            pooled_parts.append(pool(hidden.float(), mask, pooling))  # stays on the device: no sync per batch
            if progress is not None:
                progress.update(len(batch))
    if not pooled_parts:
        return np.empty((0, 0), dtype=np.float32)
    pooled = torch.cat(pooled_parts).cpu().numpy()  # one copy (and, on a GPU, one sync) per call
    out = np.empty_like(pooled)
    out[np.asarray(order, dtype=np.int64)] = pooled
    return out


class FeatureExtractor:
    """Computes and caches pooled features for one (model, layer, pooling, renderer, length, dtype).

    `max_tokens` is the padded-token budget of one forward pass (None: by device, DEFAULT_BATCH_TOKENS);
    `batch_size`, when given, also caps the rows of a pass. Neither changes the features (beyond
    float rounding), so neither is part of the spec.
    """

    def __init__(self, model: str | None = "default", layer: str | int = 3, pooling: str = "mean",
                 renderer: Renderer | None = None, max_length: int | None = None, dtype: str = "auto",
                 batch_size: int | None = None, store: FeatureStore | None = None, device: str | None = None,
                 shard_size: int | None = None, max_tokens: int | None = None, show_progress: bool = True):
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling '{pooling}'; use one of {', '.join(POOLINGS)}")
        self.model_spec = model
        self.layer = parse_layer(layer)
        self.pooling = pooling
        self.renderer = renderer or Renderer()
        self.max_length = max_length or DEFAULT_MAX_LENGTH["embedding" if self.layer == "embedding" else "layer"]
        self.dtype_name = dtype
        self.batch_size = batch_size
        self.device = device
        self.shard_size = shard_size or default_shard_size()
        self.max_tokens = max_tokens
        self.show_progress = show_progress
        self.store = store or FeatureStore()
        self._loaded: LoadedModel | None = None
        # the dtype the model will really run in (auto differs between CPU and GPU), so it names the features
        resolved_dtype = str(pick_dtype(dtype, device or default_device())).replace("torch.", "")
        self.spec = FeatureSpec(model=model_identity(model), layer=self.layer, pooling=pooling,
                                renderer=self.renderer.fingerprint, max_length=self.max_length, dtype=resolved_dtype)
        self.features: FeatureSet = self.store.open(self.spec)
        self.stats = ExtractStats()

    @property
    def fingerprint(self) -> str:
        """What the features depend on (model, layer, pooling, renderer, max length, dtype): stages that
        declare an extractor as an input are keyed by it."""
        return self.spec.fingerprint

    @property
    def loaded(self) -> LoadedModel:
        """The (truncated) model, loaded only when some feature actually has to be computed."""
        if self._loaded is None:
            layers = 0 if self.layer == "embedding" else int(self.layer)
            self._loaded = load_model(self.model_spec, layers=layers, dtype=self.dtype_name, device=self.device)
        return self._loaded

    def texts_for(self, records: Sequence[Record]) -> list[str]:
        return [self.renderer.render(r) for r in records]

    def __call__(self, items: Sequence[Record] | Sequence[str], ids: Sequence[str] | None = None) -> np.ndarray:
        """Features for records (rendered with this extractor's renderer) or for raw texts, in order."""
        if items and isinstance(items[0], Record):
            ids = ids or [r.id for r in items]  # type: ignore[union-attr]
            texts = self.texts_for(items)  # type: ignore[arg-type]
        else:
            texts = list(items)  # type: ignore[arg-type]
        keys = [text_key(t) for t in texts]
        t0 = time.perf_counter()
        todo = self.features.missing(keys)
        unique_todo = list({keys[i]: i for i in todo}.values())  # a repeated text is embedded once
        self.stats = ExtractStats(n_total=len(texts), n_cached=len(texts) - len(todo))
        if unique_todo:
            self._compute(unique_todo, texts, keys, ids)
        self.stats.seconds = time.perf_counter() - t0
        return self.features.get(keys)

    def _compute(self, todo: list[int], texts: list[str], keys: list[str], ids: Sequence[str] | None) -> None:
        from tqdm.auto import tqdm

        tok = self.loaded.tokenizer
        token_ids = tok([texts[i] for i in todo], truncation=True, max_length=self.max_length,
                        add_special_tokens=True)["input_ids"]
        # Longest first across the whole job, so every chunk (and batch) holds similar lengths.
        order = sorted(range(len(todo)), key=lambda j: -len(token_ids[j]))
        desc = f"features layer={self.layer} pooling={self.pooling}"
        with tqdm(total=len(order), desc=desc, unit="rec", disable=not self.show_progress, smoothing=0.1) as bar:
            for start in range(0, len(order), self.shard_size):
                chunk = order[start : start + self.shard_size]
                feats = embed_token_ids(self.loaded, [token_ids[j] for j in chunk], self.layer, self.pooling,
                                        self.max_length, self.batch_size, self.max_tokens, progress=bar)
                positions = [todo[j] for j in chunk]
                self.features.add([keys[p] for p in positions], feats,
                                  [ids[p] for p in positions] if ids is not None else None)
                self.stats.n_computed += len(chunk)
                self.stats.n_tokens += sum(len(token_ids[j]) for j in chunk)


def extract_features(records: Sequence[Record] | Sequence[str], model: str | None = "default",
                     layer: str | int = 3, pooling: str = "mean", **kwargs) -> np.ndarray:
    """Pooled features for records or texts (Python API of `daar embed`); cached in the feature store."""
    return FeatureExtractor(model=model, layer=layer, pooling=pooling, **kwargs)(records)
