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
    text = os.environ.get("DAAR_SHARD_SIZE", "").strip()
    if not text:
        return DEFAULT_SHARD_SIZE
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"DAAR_SHARD_SIZE must be a positive integer, got '{text}'")
    return int(text)


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


def embed_token_ids(loaded: LoadedModel, ids: list[list[int]], layer: str, pooling: str, max_length: int,
                    batch_size: int, max_tokens: int | None = None, progress=None) -> np.ndarray:
    """Pooled features for already-tokenised sequences, in input order."""
    import torch

    model, device = loaded.model, loaded.device
    pad_id = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    padded_reference = pooling == "mean-padded"
    order = longest_first([len(x) for x in ids])
    lengths = [max_length if padded_reference else max(1, len(ids[i])) for i in order]
    out = np.empty((len(ids), 0), dtype=np.float32)
    with torch.inference_mode():
        for batch in length_batches(lengths, batch_size, max_tokens):
            width = max(lengths[b] for b in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, b in enumerate(batch):
                seq = ids[order[b]][:width] or [pad_id]
                input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                mask[row, : len(seq)] = 1
            input_ids, mask = input_ids.to(device), mask.to(device)
            if layer == "embedding":
                hidden = model.get_input_embeddings()(input_ids)
            else:
                # The reference scripts run without an attention mask on fully padded input.
                hidden = model(input_ids=input_ids, attention_mask=None if padded_reference else mask).last_hidden_state
            pooled = pool(hidden.float(), mask, pooling).cpu().numpy()
            if out.shape[1] == 0:
                out = np.empty((len(ids), pooled.shape[1]), dtype=np.float32)
            for row, b in enumerate(batch):
                out[order[b]] = pooled[row]
            if progress is not None:
                progress.update(len(batch))
    return out


class FeatureExtractor:
    """Computes and caches pooled features for one (model, layer, pooling, renderer, length, dtype)."""

    def __init__(self, model: str | None = "default", layer: str | int = 3, pooling: str = "mean",
                 renderer: Renderer | None = None, max_length: int | None = None, dtype: str = "auto",
                 batch_size: int = 16, store: FeatureStore | None = None, device: str | None = None,
                 shard_size: int | None = None, max_tokens: int | None = 16384, show_progress: bool = True):
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
