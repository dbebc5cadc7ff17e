"""LoRA fine-tuning of a causal LM on a (selected) pool through TRL's SFTTrainer and PEFT.

Defaults are the paper's: LoRA on all linear layers, r 8, alpha 16, lr 5e-5 (cosine schedule,
warmup ratio 0.05), 1 epoch, per-device batch 4 x gradient accumulation 4, max length 2048,
seed 42. Precision: `--dtype auto` trains in bf16 only on a CUDA GPU that supports it; on CPU it
trains in float32, because bf16 matmuls are several times slower on CPUs without native bf16
training kernels (7x measured on the project's AMD machines).

TRL gets a pre-tokenised dataset (input_ids + labels built in `tokens.py`) with dataset
preparation switched off, and our own padding collator, so the loss is over response tokens only
whatever TRL version is installed.

An --out that already holds checkpoints is continued only with --resume (and only when the
model, data and adapter/batch settings match train_run.json); without it the run stops rather
than overwrite them.

Output folder (`--out`):
    adapter_config.json, adapter_model.safetensors, tokenizer files   the trained adapter
    training_log.csv        step, loss, learning_rate, epoch, grad_norm (one row per optimizer step)
    loss.png                loss and learning-rate curves
    train_manifest.json     settings, record/token counts, skips by reason, wall time, model identity
    train_run.json          the settings a --resume must match
    checkpoints/checkpoint-N  resumable state (adapter, optimizer, scheduler, RNG, trainer state),
                            every --save-steps steps and at the end; the last two are kept
    merged/                 with --merge: base + adapter merged into a plain model
    rejects.jsonl           rows the loader set aside (with --on-bad-record skip)
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from daar.data import Record, Renderer, load_records
from daar.errors import ConfigError
from daar.io import atomic_write, folder_lock, texts_hash
from daar.models.loading import default_device, load_tokenizer, model_identity, resolve_model
from daar.provenance import package_versions
from daar.settings import Config
from daar.train.logs import CsvLog, LossProgress, plot_loss, write_log_csv
from daar.train.tokens import PadCollator, TokenStats, resolve_chat_template, tokenize_records

log = logging.getLogger(__name__)

LR_SCHEDULER = "cosine"
CHECKPOINTS = "checkpoints"
# Settings a resumed run must share with the run that wrote the checkpoint.
RESUME_KEYS = ("model", "data_fingerprint", "lora_r", "lora_alpha", "lora_dropout", "chat_template",
               "template", "train_max_length", "train_batch_size", "gradient_accumulation", "group_by_length")
# Keywords that name the feature-extraction fields, not the training ones (a common slip).
_NOT_TRAINING = {"batch_size": "train_batch_size", "max_length": "train_max_length"}


@dataclass
class TrainResult:
    """Where `train_lora` wrote things, and how the run went."""

    out: Path
    adapter_dir: Path
    log_csv: Path
    loss_plot: Path | None
    manifest: Path
    merged_dir: Path | None
    final_loss: float | None  # loss logged at the last optimizer step
    train_loss: float | None  # mean loss over this invocation's steps (Trainer's train_loss)
    steps: int
    resumed_from_step: int | None
    records_used: int
    records_skipped: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def validate_train(cfg: Config) -> Config:
    """Training needs --data and --out; every value is checked by the settings' own validate()."""
    return cfg.require(data="the records to fine-tune on (e.g. runs/exp1/selected.jsonl)",
                       out="where the adapter, log, plot and checkpoints go").validate()


def precision(dtype: str, device: str) -> tuple[Any, str]:
    """(weight dtype, mixed-precision mode 'bf16' | 'fp16' | 'no') for training on `device`."""
    import torch

    cuda = device.startswith("cuda")
    if dtype == "auto":
        if cuda and torch.cuda.is_bf16_supported():
            return torch.bfloat16, "bf16"
        return torch.float32, ("fp16" if cuda else "no")
    if dtype == "bfloat16":
        return torch.bfloat16, "bf16"
    if dtype == "float16":
        if not cuda:
            raise ConfigError("--dtype float16 training needs a CUDA GPU; use float32 (or bfloat16) on CPU")
        return torch.float32, "fp16"  # fp32 master weights with fp16 autocast
    return torch.float32, "no"


def _sft_config(cfg: Config, ckpt_dir: Path, device: str, mixed: str) -> Any:
    import dataclasses

    from trl import SFTConfig

    names = {f.name for f in dataclasses.fields(SFTConfig)}
    t = cfg.train
    kwargs: dict[str, Any] = dict(
        output_dir=str(ckpt_dir), per_device_train_batch_size=t.train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation, learning_rate=t.lr,
        lr_scheduler_type=LR_SCHEDULER, num_train_epochs=float(t.epochs),
        max_steps=t.max_steps if t.max_steps is not None else -1, logging_steps=1,
        save_strategy="steps", save_steps=t.save_steps, save_total_limit=2,
        seed=cfg.run.seed, data_seed=cfg.run.seed, bf16=mixed == "bf16", fp16=mixed == "fp16",
        use_cpu=device == "cpu", report_to="none", disable_tqdm=False,
        gradient_checkpointing=device.startswith("cuda"), max_length=t.train_max_length,
        dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    if t.group_by_length:  # recent transformers: a sampling strategy; older releases: a boolean flag
        if "train_sampling_strategy" in names:
            kwargs["train_sampling_strategy"] = "group_by_length"
        else:
            kwargs["group_by_length"] = True
    # transformers 5 folded warmup_ratio into warmup_steps (a value < 1 is a ratio).
    kwargs["warmup_ratio" if "warmup_ratio" in names else "warmup_steps"] = t.warmup_ratio
    return SFTConfig(**{k: v for k, v in kwargs.items() if k in names})


def _lora_config(cfg: Config) -> Any:
    from peft import LoraConfig

    t = cfg.train
    return LoraConfig(r=t.lora_r, lora_alpha=t.lora_alpha, lora_dropout=t.lora_dropout,
                      target_modules="all-linear", bias="none", task_type="CAUSAL_LM")


@contextlib.contextmanager
def _quiet_renames():
    """Silence transformers 5's rename notices for TRL's own `gradient_checkpointing` field (nothing to act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def _fingerprint(records: list[Record]) -> str:
    """Content key of the training data, in order: what the trainer reads of each record (the fields
    the renderer formats and the turns a chat template formats), as canonical JSON.

    Ids alone missed an edited record that kept its id, so --resume could mix two datasets; the raw
    row would also change with fields training never reads, and records built in code may have none.
    """
    return texts_hash(json.dumps([r.instruction, r.input, r.output, list(r.messages)], sort_keys=True,
                                 ensure_ascii=False) for r in records)


def _check_resume(out: Path, ckpt_dir: Path, run_info: dict[str, Any], resume: bool) -> str | None:
    """The checkpoint to resume from (None = start fresh); refuses to mix two different runs."""
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if last and not resume:
        raise ConfigError(f"{out} already holds checkpoints of a run ({Path(last).name}); pass --resume to "
                          "continue it, or choose another --out")
    if not resume:
        return None
    if last is None:
        log.warning("--resume: no checkpoint in %s; starting from step 0", ckpt_dir)
        return None
    old_path = out / "train_run.json"
    if old_path.exists():
        old = json.loads(old_path.read_text())
        diff = [k for k in RESUME_KEYS if old.get(k) != run_info.get(k)]
        if diff:
            raise ConfigError(f"--resume: {', '.join(diff)} differ from the run that wrote {last} "
                              f"(was {', '.join(f'{k}={old.get(k)!r}' for k in diff)}); use the same "
                              "settings, or choose another --out to start a new run")
    return last


def train_lora(cfg: Config | None = None, *, records: list[Record] | None = None,
               callbacks: list[Any] | None = None, **overrides: Any) -> TrainResult:
    """Fine-tune `cfg.lm.model` with LoRA on `cfg.input.data` (or on `records`) into `cfg.run.out`.

    `overrides` are setting names, as everywhere (e.g. `train_lora(data="sel.jsonl", out="runs/lora",
    max_steps=10, train_batch_size=2)`). `callbacks` are extra transformers TrainerCallbacks.
    """
    slips = sorted(k for k in overrides if k in _NOT_TRAINING)
    if slips:  # these name the feature-extraction fields: training would silently ignore them
        raise ConfigError(f"train_lora: {', '.join(slips)} set the feature extraction; the training ones are "
                          f"{', '.join(_NOT_TRAINING[k] for k in slips)}")
    if records is not None and not (overrides.get("data") or (cfg and cfg.input.data)):
        overrides["data"] = "<records>"
    cfg = validate_train(Config.from_mapping(overrides, cfg, source="train_lora"))
    # the run folder's lock, as `daar select` takes it: a second run into this --out (a --resume of
    # it included) fails at once instead of both writing the same checkpoints
    with folder_lock(cfg.run.out):
        return _train(cfg, records, callbacks)


def _train(cfg: Config, records: list[Record] | None, callbacks: list[Any] | None) -> TrainResult:
    out = Path(cfg.run.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    n_rejected = 0
    if records is None:
        loaded = load_records(cfg.input.data, cfg.input.schema, cfg.input.format, cfg.input.on_bad_record)
        records, n_rejected = loaded.records, len(loaded.rejected)
        if loaded.rejected:
            loaded.write_rejects(out / "rejects.jsonl")
    tokenizer = load_tokenizer(cfg.lm.model)
    template = resolve_chat_template(tokenizer, cfg.train.chat_template)
    if template is not None:
        tokenizer.chat_template = template  # saved with the adapter: the format the model was trained on
    examples, stats = tokenize_records(records, tokenizer, template, Renderer.named(cfg.input.template),
                                       cfg.train.train_max_length)
    if not examples:
        raise ConfigError(f"none of the {stats.records} records has trainable response tokens "
                          f"({dict(stats.skipped)}); check --chat-template / --template and --train-max-length")
    if stats.skipped:
        log.warning("skipped %d of %d records: %s", sum(stats.skipped.values()), stats.records, dict(stats.skipped))

    flat = cfg.to_dict()
    run_info = {**{k: flat[k] for k in RESUME_KEYS if k in flat},
                "model": model_identity(cfg.lm.model), "data_fingerprint": _fingerprint(records)}
    resume_from = _check_resume(out, out / CHECKPOINTS, run_info, cfg.train.resume)
    atomic_write(out / "train_run.json", json.dumps(run_info, indent=2))

    device = (cfg.lm.device or default_device()).split(":")[0]
    weight_dtype, mixed = precision(cfg.lm.dtype, device)
    log_csv = out / "training_log.csv"
    with _quiet_renames():
        trainer = _build_trainer(cfg, examples, tokenizer, device, weight_dtype, mixed,
                                 [CsvLog(log_csv), *(callbacks or [])])
        log.info("training %s on %d records (%d tokens, %d in the loss) on %s, weights %s, mixed precision %s",
                 Path(resolve_model(cfg.lm.model)).name, stats.used, stats.tokens, stats.response_tokens, device,
                 str(weight_dtype).replace("torch.", ""), mixed)
        t0 = time.time()
        output = trainer.train(resume_from_checkpoint=resume_from)
        train_seconds = time.time() - t0
        trainer.save_model(str(out))  # adapter_config.json + adapter weights + tokenizer
        merged_dir = _merge(trainer, tokenizer, out / "merged") if cfg.train.merge else None
    rows = write_log_csv(trainer.state.log_history, log_csv)
    plot = plot_loss(rows, out / "loss.png",
                     title=f"LoRA r={cfg.train.lora_r} on {Path(resolve_model(cfg.lm.model)).name}")

    resumed_step = int(Path(resume_from).name.split("-")[-1]) if resume_from else None
    result = TrainResult(
        out=out, adapter_dir=out, log_csv=log_csv, loss_plot=plot, manifest=out / "train_manifest.json",
        merged_dir=merged_dir, final_loss=rows[-1]["loss"] if rows else None,
        train_loss=output.training_loss, steps=trainer.state.global_step, resumed_from_step=resumed_step,
        records_used=stats.used, records_skipped=sum(stats.skipped.values()), seconds=time.time() - started)
    _write_manifest(result, cfg, stats, n_rejected, run_info, device, weight_dtype, mixed, template,
                    train_seconds, trainer)
    return result


def _build_trainer(cfg: Config, examples: list[Any], tokenizer: Any, device: str, weight_dtype: Any,
                   mixed: str, callbacks: list[Any]) -> Any:
    """SFTTrainer over the pre-tokenised examples, with a fresh LoRA adapter and our progress bar."""
    import datasets
    from transformers import AutoModelForCausalLM
    from transformers.trainer_callback import ProgressCallback
    from trl import SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(resolve_model(cfg.lm.model), dtype=weight_dtype)
    model.config.use_cache = False
    dataset = datasets.Dataset.from_dict({"input_ids": [e.input_ids for e in examples],
                                          "labels": [e.labels for e in examples]})
    trainer = SFTTrainer(model=model, args=_sft_config(cfg, Path(cfg.run.out) / CHECKPOINTS, device, mixed),
                         train_dataset=dataset, processing_class=tokenizer, peft_config=_lora_config(cfg),
                         data_collator=PadCollator(tokenizer.pad_token_id))
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(LossProgress(disable=not log.isEnabledFor(logging.INFO)))
    for cb in callbacks:
        trainer.add_callback(cb)
    return trainer


def _padding_stats(collator: PadCollator) -> dict[str, Any]:
    cells, pad = collator.cells, collator.padding
    return {"token_cells": cells, "padding_cells": pad, "padding_fraction": round(pad / cells, 4) if cells else None}


def _merge(trainer: Any, tokenizer: Any, target: Path) -> Path:
    """Base + adapter folded into plain weights (a normal from_pretrained folder)."""
    merged = trainer.model.merge_and_unload()
    merged.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return target


def _write_manifest(result: TrainResult, cfg: Config, stats: TokenStats, n_rejected: int,
                    run_info: dict[str, Any], device: str, weight_dtype: Any, mixed: str,
                    template: str | None, train_seconds: float, trainer: Any) -> None:
    steps_run = result.steps - (result.resumed_from_step or 0)
    t = cfg.train
    manifest = {
        "command": "train",
        "result": result.to_dict(),
        "model": {"spec": cfg.lm.model, "path": resolve_model(cfg.lm.model), "identity": run_info["model"]},
        "data": {"path": cfg.input.data, "fingerprint": run_info["data_fingerprint"],
                 "rejected_on_load": n_rejected, **stats.to_dict()},
        "format": {"chat_template": cfg.train.chat_template, "uses_chat_template": template is not None,
                   "renderer_template": None if template is not None else cfg.input.template},
        "training": {"lora_r": t.lora_r, "lora_alpha": t.lora_alpha, "lora_dropout": t.lora_dropout,
                     "target_modules": "all-linear", "lr": t.lr, "lr_scheduler": LR_SCHEDULER,
                     "warmup_ratio": t.warmup_ratio, "epochs": t.epochs, "max_steps": t.max_steps,
                     "per_device_batch": t.train_batch_size,
                     "gradient_accumulation": t.gradient_accumulation,
                     "effective_batch": t.train_batch_size * t.gradient_accumulation,
                     "max_length": t.train_max_length, "seed": cfg.run.seed,
                     "group_by_length": t.group_by_length,
                     "save_steps": t.save_steps,
                     "total_steps": trainer.state.max_steps,
                     "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)},
        "hardware": {"device": device, "weights": str(weight_dtype).replace("torch.", ""), "mixed_precision": mixed},
        "batching": _padding_stats(trainer.data_collator),
        "timing": {"wall_seconds": round(result.seconds, 2), "train_seconds": round(train_seconds, 2),
                   "steps_this_run": steps_run,
                   "seconds_per_step": round(train_seconds / steps_run, 3) if steps_run else None},
        "versions": package_versions(),
        "config": cfg.to_dict(nested=True),
    }
    atomic_write(result.manifest, json.dumps(manifest, indent=2, default=str))
