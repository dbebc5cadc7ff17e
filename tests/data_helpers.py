"""Test helpers shared by every test folder: tiny random Llama / Qwen2 models with a tiny byte-level
BPE tokenizer, built offline from a config in well under a second, and small data helpers.

Import from here (`from data_helpers import ...`), not from conftest: several folders have a
conftest.py and pytest imports each as the module `conftest`, so that name is ambiguous."""

from __future__ import annotations

import json
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "Write a Python function that returns the sum of a list of numbers.",
    "Solve for x: 3x + 5 = 20. The answer is 5.",
    "Is a tomato a fruit or a vegetable? Botanically it is a fruit.",
    "If all cats are animals and Tom is a cat, is Tom an animal? Yes, by syllogism.",
    "def add(a, b):\n    return a + b",
    "The capital of France is Paris. Water boils at 100 degrees Celsius.",
    '{"instruction": "x", "input": "", "output": "y"}',
]


def build_tokenizer(path: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    return fast


def build_tiny_model(path: Path, arch: str = "llama", layers: int = 4, seed: int = 0) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tok = build_tokenizer(path)
    common = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
                  tie_word_embeddings=True)
    torch.manual_seed(seed)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    elif arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    else:
        raise ValueError(arch)
    model.save_pretrained(path)
    return str(path)


def write_jsonl(path: Path, rows: list) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


ALPACA_ROWS = [
    {"instruction": "Write a function that adds two numbers.", "input": "", "output": "def add(a, b):\n    return a + b"},
    {"instruction": "What is 12 times 7?", "input": "", "output": "12 times 7 is 84. The answer is 84."},
    {"instruction": "Is the sky green?", "input": "Answer yes or no.", "output": "No, it is usually blue."},
    {"instruction": "All birds lay eggs. A robin is a bird. Does a robin lay eggs?", "input": "",
     "output": "Yes. Robins are birds and all birds lay eggs."},
    {"instruction": "Name the capital of France.", "input": "", "output": "Paris."},
    {"instruction": "Sort a list in Python.", "input": "[3, 1, 2]", "output": "sorted([3, 1, 2]) gives [1, 2, 3]."},
]
