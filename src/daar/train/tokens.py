"""Records -> token ids and labels for a response-only loss, built here rather than by a TRL option.

Why build labels ourselves: TRL's completion-only / assistant-only switches have changed meaning
between releases (collator-side masks, then dataset-side masks, then `{% generation %}` markers in
the chat template). Building `input_ids` and `labels` here (labels = -100 on every prompt token)
gives the same loss whatever TRL version is installed, and lets the tests check the mask directly.

Two text formats, picked by `--chat-template`:
- a chat template (`auto` uses the tokenizer's own when it has one): the record's `messages` are
  the conversation; every assistant turn (its text and the template's end-of-turn tokens) is in the
  loss, everything else (system, user turns, role headers) is masked.
- `none`: the same renderer as selection; prompt = `renderer.render_prompt(record)`, response = the
  rest of `renderer.render(record)`, followed by the EOS token so the model learns to stop.

Segments are tokenised separately and concatenated, so the prompt/response boundary is exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daar.data.records import Record
from daar.data.render import Renderer
from daar.errors import ConfigError

IGNORE_INDEX = -100

CHATML_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
NAMED_CHAT_TEMPLATES = {"chatml": CHATML_TEMPLATE}


class SkipRecord(Exception):
    """A record that yields no trainable token; the message is the reason counted in the manifest."""


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False


@dataclass
class TokenStats:
    """What tokenisation did to the records: used, truncated, skipped (by reason), token counts."""

    records: int = 0
    used: int = 0
    truncated: int = 0
    skipped: Counter = field(default_factory=Counter)
    skipped_ids: list[str] = field(default_factory=list)
    tokens: int = 0
    response_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "used": self.used, "truncated": self.truncated,
                "skipped": sum(self.skipped.values()), "skipped_by_reason": dict(self.skipped),
                "skipped_ids": self.skipped_ids[:100], "tokens": self.tokens,
                "response_tokens": self.response_tokens}


def _own_template(tokenizer: Any) -> str | None:
    tpl = getattr(tokenizer, "chat_template", None)
    if isinstance(tpl, dict):  # several named templates: the default one is the chat template
        tpl = tpl.get("default")
    return tpl or None


def resolve_chat_template(tokenizer: Any, spec: str | None) -> str | None:
    """The Jinja chat template to train with, or None for plain renderer text.

    spec: `none`; `auto` (the tokenizer's own when it has one, else none); `tokenizer` (its own,
    an error when missing); `chatml`; a path to a .jinja file; or a literal Jinja template.
    """
    spec = (spec or "auto").strip()
    if spec == "none":
        return None
    own = _own_template(tokenizer)
    if spec == "auto":
        return own
    if spec == "tokenizer":
        if own is None:
            raise ConfigError("--chat-template tokenizer: this tokenizer has no chat template; "
                              "use --chat-template none (plain renderer text) or chatml")
        return own
    if spec in NAMED_CHAT_TEMPLATES:
        return NAMED_CHAT_TEMPLATES[spec]
    path = Path(spec)
    if path.suffix in (".jinja", ".j2", ".txt") and path.is_file():
        return path.read_text(encoding="utf-8")
    if "{%" in spec or "{{" in spec:
        return spec
    raise ConfigError(f"--chat-template '{spec}' is not none, auto, tokenizer, "
                      f"{', '.join(NAMED_CHAT_TEMPLATES)}, a .jinja file or a Jinja template string")


def _lead_tokens(tokenizer: Any) -> list[int]:
    """Special tokens the tokenizer puts before a text (BOS for Llama-style tokenizers, none for GPT-2 style)."""
    eos = tokenizer.eos_token_id
    return [t for t in tokenizer("", add_special_tokens=True)["input_ids"] if t != eos]


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def plain_segments(record: Record, renderer: Renderer) -> list[tuple[str, bool]]:
    """[(prompt, False), (response, True)] from the renderer: the same text selection scored."""
    full = renderer.render(record)
    prompt = renderer.render_prompt(record)
    if not full.startswith(prompt):
        raise SkipRecord("renderer prompt is not a prefix of the rendered record")
    response = full[len(prompt):]
    if not response.strip():
        raise SkipRecord("no response text")
    return [(prompt, False), (response, True)]


def chat_segments(tokenizer: Any, template: str, messages: Sequence[dict[str, str]]) -> list[tuple[str, bool]]:
    """Split a rendered conversation into (text, in_loss) pieces; assistant turns are in the loss.

    Each assistant turn's text is what the template adds between the generation prompt for it and the
    conversation including it (so its end-of-turn tokens are learned). When the template is not
    prefix-consistent across turns (some drop earlier reasoning), only the last turn is trained.
    """
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    turns = [i for i, m in enumerate(msgs) if m["role"] == "assistant" and i > 0]
    if not turns:
        raise SkipRecord("no assistant turn after a prompt")
    msgs = msgs[: turns[-1] + 1]

    def render(ms: list[dict[str, str]], generation: bool) -> str:
        return tokenizer.apply_chat_template(ms, chat_template=template, tokenize=False,
                                             add_generation_prompt=generation)

    def split(done: str, i: int) -> tuple[str, str, str] | None:
        prompt, full = render(msgs[:i], True), render(msgs[: i + 1], False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            return None
        return prompt[len(done):], full[len(prompt):], full

    pieces: list[tuple[str, bool]] = []
    done = ""
    for i in turns:
        cut = split(done, i)
        if cut is None:
            break
        pieces += [(cut[0], False), (cut[1], True)]
        done = cut[2]
    else:
        return pieces
    cut = split("", turns[-1])  # fall back to the last assistant turn
    if cut is None:
        raise SkipRecord("chat template output is not prefix-consistent (use --chat-template none)")
    return [(cut[0], False), (cut[1], True)]


def tokenize_record(record: Record, tokenizer: Any, template: str | None, renderer: Renderer,
                    max_length: int) -> Example:
    """One record -> Example (labels = -100 on prompt tokens); raises SkipRecord with the reason."""
    if template is None:
        pieces = plain_segments(record, renderer)
        ids = _lead_tokens(tokenizer)
        labels = [IGNORE_INDEX] * len(ids)
        eos = tokenizer.eos_token_id
        for text, in_loss in pieces:
            seg = _encode(tokenizer, text) + ([eos] if in_loss and eos is not None else [])
            ids += seg
            labels += seg if in_loss else [IGNORE_INDEX] * len(seg)
    else:
        ids, labels = [], []
        for text, in_loss in chat_segments(tokenizer, template, record.messages):
            seg = _encode(tokenizer, text)
            ids += seg
            labels += seg if in_loss else [IGNORE_INDEX] * len(seg)
    if not any(t != IGNORE_INDEX for t in labels):
        raise SkipRecord("no response tokens")
    truncated = len(ids) > max_length
    ids, labels = ids[:max_length], labels[:max_length]
    if not any(t != IGNORE_INDEX for t in labels):
        raise SkipRecord("response truncated away by --train-max-length")
    return Example(input_ids=ids, labels=labels, truncated=truncated)


def tokenize_records(records: Iterable[Record], tokenizer: Any, template: str | None, renderer: Renderer,
                     max_length: int) -> tuple[list[Example], TokenStats]:
    """Tokenise every record; skipped ones are counted by reason (nothing is dropped silently)."""
    examples: list[Example] = []
    stats = TokenStats()
    for rec in records:
        stats.records += 1
        try:
            ex = tokenize_record(rec, tokenizer, template, renderer, max_length)
        except SkipRecord as why:
            stats.skipped[str(why)] += 1
            stats.skipped_ids.append(rec.id)
            continue
        examples.append(ex)
        stats.used += 1
        stats.truncated += ex.truncated
        stats.tokens += len(ex.input_ids)
        stats.response_tokens += sum(t != IGNORE_INDEX for t in ex.labels)
    return examples, stats


@dataclass
class PadCollator:
    """Right-pads input_ids (pad id), labels (-100) and builds the attention mask.

    Our own collator, so label handling never depends on which TRL collator a version ships.
    It counts the token cells it builds and how many of them are padding (the cost of batching
    records of different lengths), for the training manifest.
    """

    pad_token_id: int
    cells: int = 0
    padding: int = 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        self.cells += width * len(features)
        self.padding += sum(width - len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.as_tensor(f["input_ids"])
            labels[row, :n] = torch.as_tensor(f["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
