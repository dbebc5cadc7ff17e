"""Settings of the steps after selection (LoRA training, export, evaluation) and of every run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from daar.settings.base import Section, bad, check_range, setting

EXPORT_FORMATS = ("llama-factory", "ms-swift", "sharegpt")
PRESET_NAMES = ("default", "reference")


@dataclass(frozen=True)
class TrainSettings(Section):
    """Training: LoRA fine-tuning (daar train, TRL + PEFT) and dataset export (daar export)."""

    NAME = "train"
    lora_r: int = setting(8, minimum=1, metavar="N", help="LoRA rank (adapters on all linear layers)")
    lora_alpha: int = setting(16, minimum=1, metavar="N", help="LoRA alpha")
    lora_dropout: float = setting(0.0, help="LoRA dropout")
    lr: float = setting(5e-5, help="peak learning rate (cosine schedule)")
    warmup_ratio: float = setting(0.05, help="warmup fraction of the optimizer steps")
    epochs: float = setting(1.0, help="epochs over the data")
    train_batch_size: int = setting(4, minimum=1, metavar="N", help="records per device in a micro-batch")
    gradient_accumulation: int = setting(4, minimum=1, metavar="N", help="micro-batches per optimizer step")
    train_max_length: int = setting(2048, minimum=1, metavar="N",
                                    help="token limit per training record; longer ones are truncated")
    max_steps: int | None = setting(minimum=1, metavar="N", help="stop after N optimizer steps (quick checks)",
                                    default_text="--epochs decide")
    group_by_length: bool = setting(False, help="put records of similar length in the same micro-batch (groups "
                                    "in random order): far less padding, so faster on CPU; the paper does not")
    chat_template: str = setting("auto", help="auto: the tokenizer's own if it has one, else none; none: the "
                                 "plain --template text; tokenizer, chatml, a .jinja file or a Jinja string")
    save_steps: int = setting(200, minimum=1, metavar="N", help="checkpoint every N steps (and always at the end)")
    resume: bool = setting(False, help="continue from the last checkpoint in --out (the settings must match)")
    merge: bool = setting(False, help="also write base + adapter merged into OUT/merged")
    export_format: str | None = setting(choices=EXPORT_FORMATS,
                                        help="daar export: llama-factory (Alpaca JSON + a dataset_info.json "
                                        "entry), ms-swift (JSONL with messages) or sharegpt (JSONL with "
                                        "conversations)")

    def validate(self) -> Self:
        super().validate()
        if self.lr <= 0:
            raise bad("lr", f"must be > 0 (got {self.lr})")
        check_range(self, "warmup_ratio", 0, 1, hi_open=True)
        check_range(self, "lora_dropout", 0, 1, hi_open=True)
        if self.max_steps is None and self.epochs <= 0:
            raise bad("epochs", f"must be > 0 (got {self.epochs}), or give --max-steps")
        return self


@dataclass(frozen=True)
class EvalSettings(Section):
    """Evaluation: benchmarks through lm-eval with local files, and the held-out loss (daar eval)."""

    NAME = "eval"
    adapter: str | None = setting(help="LoRA adapter folder (from daar train) applied to --model", metavar="DIR")
    tasks: str | None = setting(help="comma-separated: nq, triviaqa, hellaswag, gsm8k, math, mbpp, humaneval, "
                                "heldout-loss (or paper / all)", metavar="NAMES")
    limit: int | None = setting(minimum=1, metavar="N", help="items per task (first N of the seeded permutation; "
                                "per domain for heldout-loss)", default_text="the paper's subset")
    data_dir: str | None = setting(help="folder with the benchmark JSONL files", metavar="DIR",
                                   default_text="../shared/data/eval beside the project")
    eval_batch_size: int = setting(8, minimum=1, metavar="N", help="sequences per forward pass / generate call")
    allow_unsandboxed_code: bool = setting(False, help="UNSAFE: when no OS sandbox (bubblewrap) is usable, "
                                           "execute model-generated code (mbpp, humaneval, daar score-code) "
                                           "in a plain subprocess with the user's rights instead of refusing")


@dataclass(frozen=True)
class RunSettings(Section):
    """Run: the seed, the preset and where outputs go."""

    NAME = "run"
    seed: int = setting(42, minimum=0, help="seed of every random choice: probe sampling, synthesis, head "
                        "training, selectors, LoRA init and data order, eval subsets")
    preset: str = setting("default", choices=PRESET_NAMES,
                          help="reference = the authors' scripts' choices (padded pooling, their text format, "
                          "phase-2-only centroids, embedding-layer centroids, uncalibrated k-means named by "
                          "initialisation order, raw-feature dedup)")
    out: str | None = setting(help="output folder (daar export: a file or folder)", metavar="PATH")
