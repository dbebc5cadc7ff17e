"""Forward-pass scoring with a causal LM (the `--scorer-model`, default `--model`): per-token losses
on chosen spans (IFD) and next-token probabilities of chosen answer tokens (Deita's 1-6 scores).

Batches are built from length-sorted sequences, right-padded, and only the positions that are
scored go through the output head: the full [batch, length, vocab] logits tensor (0.8 GB for
8 x 512 tokens with a 49k vocabulary) is never built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from daar.batching import by_length
from daar.models.loading import LoadedModel, model_identity
from daar.selectors.context import SelectionContext

log = logging.getLogger(__name__)

_MAX_BATCH_TOKENS = 8192


def scorer_spec(ctx: SelectionContext) -> str:
    return ctx.cfg.baselines.scorer_model or ctx.cfg.lm.model


def scorer_identity(ctx: SelectionContext) -> str:
    """The scorer's identity for cache keys, without loading it."""
    return model_identity(scorer_spec(ctx))


def load_scorer(ctx: SelectionContext) -> LoadedModel:
    """The scorer model, loaded once per run (ifd, deita-complexity and deita-quality share it)."""
    from daar.models.loading import load_model

    spec = scorer_spec(ctx)

    def load() -> LoadedModel:
        log.info("loading scorer model %s", spec)
        return load_model(spec, dtype=ctx.cfg.lm.dtype, device=ctx.cfg.lm.device, causal_lm=True)

    return ctx.resources.once(("scorer", spec, ctx.cfg.lm.dtype, ctx.cfg.lm.device), load)


def start_token(tok) -> int:
    """A token to begin a sequence with, so that its first real token is predicted too."""
    for tid in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id):
        if tid is not None:
            return int(tid)
    return 0


def _trunk_and_head(model):
    """(decoder returning final-normed hidden states, output head), or None where logits need more
    than the head (soft-capping, logit scaling)."""
    cfg = model.config
    if getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None):
        return None
    trunk = getattr(model, getattr(model, "base_model_prefix", ""), None)
    head = model.get_output_embeddings()
    if trunk is None or head is None:
        return None
    return trunk, head


def _hidden_or_logits(loaded: LoadedModel, seqs: list[list[int]]):
    """Run one right-padded batch; returns (hidden [B, T, H] and head) or (logits [B, T, V], None)."""
    import torch

    width = max(len(s) for s in seqs)
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    ids, mask = ids.to(loaded.device), mask.to(loaded.device)
    parts = _trunk_and_head(loaded.model)
    if parts is None:
        return loaded.model(input_ids=ids, attention_mask=mask).logits, None
    trunk, head = parts
    return trunk(input_ids=ids, attention_mask=mask).last_hidden_state, head


def span_losses(loaded: LoadedModel, seqs: list[list[int]], spans: list[tuple[int, int]],
                batch_size: int = 8) -> np.ndarray:
    """Mean next-token cross-entropy (nats) over tokens seqs[i][a:b] for each (a, b) = spans[i]; a >= 1.

    NaN where the span is empty.
    """
    import torch
    import torch.nn.functional as F

    out = np.full(len(seqs), np.nan)
    with torch.inference_mode():
        for batch in by_length([len(s) for s in seqs], batch_size, _MAX_BATCH_TOKENS):
            todo = [i for i in batch if spans[i][1] > spans[i][0]]
            if not todo:
                continue
            states, head = _hidden_or_logits(loaded, [seqs[i] for i in todo])
            for row, i in enumerate(todo):
                a, b = spans[i]
                h = states[row, a - 1 : b - 1]
                logits = (head(h) if head is not None else h).float()
                target = torch.tensor(seqs[i][a:b], dtype=torch.long, device=logits.device)
                out[i] = float(F.cross_entropy(logits, target, reduction="mean"))
    return out


def next_token_probs(loaded: LoadedModel, seqs: list[list[int]], token_groups: list[list[int]],
                     batch_size: int = 8) -> np.ndarray:
    """[n, G]: probability (full-vocabulary softmax) that the token after each sequence is in group g."""
    import torch

    out = np.zeros((len(seqs), len(token_groups)))
    with torch.inference_mode():
        for batch in by_length([len(s) for s in seqs], batch_size, _MAX_BATCH_TOKENS):
            states, head = _hidden_or_logits(loaded, [seqs[i] for i in batch])
            last = torch.stack([states[row, len(seqs[i]) - 1] for row, i in enumerate(batch)])
            logits = (head(last) if head is not None else last).float()
            probs = torch.softmax(logits, dim=-1)
            for g, ids in enumerate(token_groups):
                out[batch, g] = probs[:, ids].sum(dim=-1).cpu().numpy()
    return out


def answer_token_groups(tok, answers: Sequence[str]) -> list[list[int]]:
    """For each answer string (e.g. '1'..'6'), the single tokens that spell it, with or without a
    leading space ('1' and ' 1' are different tokens in most BPE vocabularies)."""
    groups = []
    for a in answers:
        ids: set[int] = set()
        for variant in (a, " " + a):
            enc = tok.encode(variant, add_special_tokens=False)
            if len(enc) == 1:
                ids.add(int(enc[0]))
        if not ids:  # a tokenizer that never spells the answer as one token: use its last piece
            ids.add(int(tok.encode(a, add_special_tokens=False)[-1]))
        groups.append(sorted(ids))
    return groups


def answer_prefix(tok, prefix: str, answers: Sequence[str]) -> str:
    """`prefix` (e.g. 'Score:'), plus a space when the vocabulary spells ' 5' as two tokens (space,
    digit), as Llama-3 / SmolLM2-style tokenizers do: then the answer's own token comes right after
    the space, instead of the space eating nearly all the probability mass."""
    joined = all(len(tok.encode(" " + a, add_special_tokens=False)) == 1 for a in answers)
    return prefix if joined else prefix + " "


def truncate_tokens(tok, text: str, max_tokens: int) -> str:
    """`text` cut to at most max_tokens tokens (decoded back to text, for use inside a prompt)."""
    ids = tok.encode(text, add_special_tokens=False)
    if len(ids) <= max_tokens:
        return text
    return tok.decode(ids[:max_tokens], skip_special_tokens=True) + " ..."


def chat_prompt_ids(tok, user: str, answer_prefix: str) -> list[int]:
    """Token ids of a one-turn chat (the tokenizer's template when it has one) plus the start of the
    assistant's answer, so that the next token is the answer itself."""
    if getattr(tok, "chat_template", None):
        text = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                       add_generation_prompt=True)
    else:
        text = f"{user}\n\n"
    return tok.encode(text + answer_prefix, add_special_tokens=False)
