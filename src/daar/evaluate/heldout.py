"""`heldout-loss`: mean response-token loss per domain on held-out rows of each pool source.

The method's objective is a model that is good on every domain at once; the most direct cheap
check is the fine-tuned model's loss on unseen samples of each source. The held-out workload
(docs WORKLOADS.md) is rows 6250..6400 of every `pool/<domain>.jsonl` (150 per domain, never in a
pool or probe slice); the domain is the file name. Text comes from daar's Renderer, the same as
selection: prompt = `render_prompt(record)`, response = the rest of `render(record)`. Prompt and
response are tokenised separately and concatenated so the boundary is exact; prompt tokens get
label -100 and do not count. The domain figure is the token-weighted mean loss (nats per response
token); `mean` is the unweighted mean over domains, so every domain weighs the same.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daar.batching import length_batches
from daar.data import Record, Renderer, load_records
from daar.errors import ConfigError
from daar.io import atomic_write

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
HELDOUT_ROWS = (6250, 6400)
DOMAIN_ORDER = ("common_sense", "reasoning", "mathematics", "coding")  # WORKLOADS.md concatenation order


def pool_files(pool_dir: Path) -> list[Path]:
    """The pool's *.jsonl files, in the workload order (other domains after, alphabetically)."""
    files = sorted(pool_dir.glob("*.jsonl"), key=lambda p: (DOMAIN_ORDER.index(p.stem) if p.stem in DOMAIN_ORDER
                                                            else len(DOMAIN_ORDER), p.stem))
    if not files:
        raise ConfigError(f"no *.jsonl pool files in {pool_dir}: heldout-loss reads pool/<domain>.jsonl "
                          "beside --data-dir (../shared/data/pool)")
    return files


def encode(tokenizer: Any, record: Record, renderer: Renderer, max_length: int) -> tuple[list[int], list[int]]:
    """(input_ids, labels) with labels = -100 on every prompt token, truncated to max_length."""
    full, prompt = renderer.render(record), renderer.render_prompt(record)
    if not full.startswith(prompt):  # a template whose prompt part is not a prefix: score the whole text
        prompt = ""
    lead = [t for t in tokenizer("", add_special_tokens=True)["input_ids"] if t != tokenizer.eos_token_id]
    p_ids = lead + _encode(tokenizer, prompt)
    r_ids = _encode(tokenizer, full[len(prompt):])
    ids = (p_ids + r_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(p_ids) + r_ids)[:max_length]
    return ids, labels


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def response_losses(model: Any, batch: Sequence[tuple[list[int], list[int]]], pad_id: int) -> list[tuple[float, int]]:
    """(summed loss, response token count) per example, one padded forward pass."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    device = next(model.parameters()).device
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, :len(x)] = torch.tensor(x)
        labels[i, :len(y)] = torch.tensor(y)
        mask[i, :len(x)] = 1
    with torch.no_grad():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
    shift_logits, shift_labels = logits[:, :-1], labels[:, 1:].to(device)
    token_loss = torch.nn.functional.cross_entropy(shift_logits.transpose(1, 2), shift_labels,
                                                   ignore_index=IGNORE_INDEX, reduction="none")
    valid = shift_labels != IGNORE_INDEX
    sums = (token_loss * valid).sum(dim=1).tolist()
    counts = valid.sum(dim=1).tolist()
    return list(zip(sums, counts, strict=True))


def heldout_loss(model: Any, tokenizer: Any, pool_dir: Path, *, renderer: Renderer | None = None,
                 rows: tuple[int, int] = HELDOUT_ROWS, limit: int | None = None, batch_size: int = 8,
                 max_length: int = 2048, raw_dir: Path | None = None) -> dict[str, Any]:
    """Per-domain mean response-token loss on rows[0]..rows[1] of each pool file (first `limit` of them)."""
    from tqdm.auto import tqdm

    renderer = renderer or Renderer()
    start, stop = rows
    if limit is not None:
        stop = min(stop, start + limit)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    domains: dict[str, dict[str, Any]] = {}
    per_sample: list[dict[str, Any]] = []
    model.eval()
    for path in pool_files(pool_dir):
        records = load_records(path).records
        chosen = [r for r in records if start <= r.index < stop]
        if not chosen:
            raise ConfigError(f"{path} has {len(records)} rows, none in the held-out rows {start}..{stop}; "
                              "give a bigger pool file or other rows (extra: heldout_rows: 'A:B')")
        encoded = [(r, *encode(tokenizer, r, renderer, max_length)) for r in chosen]
        encoded = [e for e in encoded if any(t != IGNORE_INDEX for t in e[2][1:])]
        encoded.sort(key=lambda e: len(e[1]))  # length-bucketed batches waste less padding
        total, tokens = 0.0, 0
        bar = tqdm(total=len(encoded), desc=f"heldout-loss {path.stem}", unit="sample", leave=False)
        for batch in length_batches([len(e[1]) for e in encoded], batch_size):
            chunk = [encoded[j] for j in batch]
            for (rec, _, _), (s, c) in zip(chunk, response_losses(model, [(x, y) for _, x, y in chunk], pad_id),
                                           strict=True):
                total, tokens = total + s, tokens + c
                per_sample.append({"domain": path.stem, "id": rec.id, "row": rec.index,
                                   "loss": s / max(c, 1), "response_tokens": c})
            bar.update(len(chunk))
        bar.close()
        loss = total / max(tokens, 1)
        if not math.isfinite(loss):
            log.warning("heldout-loss %s: non-finite loss %s", path.stem, loss)
        domains[path.stem] = {"loss": loss, "samples": len(encoded), "response_tokens": tokens}
        log.info("heldout-loss %s: %.4f nats/token over %d samples", path.stem, loss, len(encoded))
    mean = sum(d["loss"] for d in domains.values()) / len(domains)
    if raw_dir is not None:
        atomic_write(raw_dir / "samples.jsonl", "".join(json.dumps(row) + "\n" for row in per_sample))
    return {"mean": mean, "domains": domains, "rows": [start, stop], "template": renderer.template}
