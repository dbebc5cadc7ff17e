"""Response-only masking: labels are -100 exactly over the prompt tokens, with and without a chat template."""

from __future__ import annotations

import pytest

from daar.data import Renderer, load_records
from daar.errors import ConfigError
from daar.models.loading import load_tokenizer
from daar.train.tokens import (
    CHATML_TEMPLATE,
    IGNORE_INDEX,
    PadCollator,
    resolve_chat_template,
    tokenize_record,
    tokenize_records,
)
from data_helpers import ALPACA_ROWS, write_jsonl


@pytest.fixture
def records(tmp_path):
    return load_records(write_jsonl(tmp_path / "pool.jsonl", ALPACA_ROWS)).records


@pytest.fixture
def tok(tiny_llama):
    return load_tokenizer(tiny_llama)


def _encode(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_plain_renderer_masks_exactly_the_prompt(tok, records):
    renderer = Renderer.named("default")
    for rec in records:
        ex = tokenize_record(rec, tok, None, renderer, max_length=512)
        prompt = renderer.render_prompt(rec)
        n = len(_encode(tok, prompt))  # the tiny tokenizer adds no BOS
        assert ex.labels[:n] == [IGNORE_INDEX] * n
        assert ex.labels[n:] == ex.input_ids[n:]
        assert ex.input_ids[-1] == tok.eos_token_id  # the model learns to stop
        response = tok.decode(ex.input_ids[n:-1])
        assert prompt + response == renderer.render(rec)
        assert response.strip() == rec.output.strip()


def test_chat_template_masks_exactly_the_prompt(tok, records):
    template = resolve_chat_template(tok, "auto")
    assert template == tok.chat_template
    for rec in records:
        ex = tokenize_record(rec, tok, template, Renderer(), max_length=512)
        msgs = [dict(m) for m in rec.messages]
        prompt = tok.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
        n = len(_encode(tok, prompt))
        assert ex.labels[:n] == [IGNORE_INDEX] * n
        assert ex.labels[n:] == ex.input_ids[n:]
        assert tok.decode(ex.input_ids[n:]) == rec.output + "<|im_end|>\n"
        assert tok.decode(ex.input_ids) == tok.apply_chat_template(msgs, tokenize=False)


def test_every_assistant_turn_is_trained_and_user_turns_are_not(tok, tmp_path):
    conv = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                         {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"},
                         {"role": "assistant", "content": "6"}]}
    rec = load_records(write_jsonl(tmp_path / "chat.jsonl", [conv])).records[0]
    ex = tokenize_record(rec, tok, CHATML_TEMPLATE, Renderer(), max_length=512)
    trained = tok.decode([t for t in ex.labels if t != IGNORE_INDEX])
    assert trained == "4<|im_end|>\n6<|im_end|>\n"
    assert tok.decode(ex.input_ids) == tok.apply_chat_template(list(map(dict, rec.messages)),
                                                                chat_template=CHATML_TEMPLATE, tokenize=False)


def test_truncation_and_skips_are_counted(tok, records, tmp_path):
    renderer = Renderer.named("default")
    long = records[3]  # the longest prompt of ALPACA_ROWS
    n_prompt = len(_encode(tok, renderer.render_prompt(long)))
    ex = tokenize_record(long, tok, None, renderer, max_length=n_prompt + 2)
    assert ex.truncated and len(ex.input_ids) == n_prompt + 2
    assert sum(t != IGNORE_INDEX for t in ex.labels) == 2

    no_output = load_records(write_jsonl(tmp_path / "e.jsonl", [{"instruction": "Say nothing.", "output": ""}])).records
    examples, stats = tokenize_records(records + no_output, tok, None, renderer, max_length=n_prompt)
    assert stats.records == len(records) + 1
    assert stats.used + sum(stats.skipped.values()) == stats.records
    assert stats.skipped["no response text"] == 1
    assert stats.skipped["response truncated away by --train-max-length"] >= 1  # record 3 is all prompt at this length
    assert len(examples) == stats.used and all(len(e.input_ids) <= n_prompt for e in examples)


def test_resolve_chat_template(tok, tmp_path):
    assert resolve_chat_template(tok, "none") is None
    assert resolve_chat_template(tok, "chatml") == CHATML_TEMPLATE
    path = tmp_path / "t.jinja"
    path.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    assert resolve_chat_template(tok, str(path)) == path.read_text()
    tok.chat_template = None
    assert resolve_chat_template(tok, "auto") is None
    with pytest.raises(ConfigError, match="no chat template"):
        resolve_chat_template(tok, "tokenizer")
    with pytest.raises(ConfigError, match="not none, auto"):
        resolve_chat_template(tok, "no-such-template")


def test_pad_collator():
    batch = PadCollator(pad_token_id=0)([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
                                         {"input_ids": [8], "labels": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
