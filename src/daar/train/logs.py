"""Training progress for people: a progress bar that shows the loss, the CSV log and the loss plot.

The CSV is rewritten from `trainer.state.log_history` on every log event. That history is saved in
each checkpoint and restored by `--resume`, so a resumed run's CSV holds the steps of both runs.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from daar.io import atomic_write

LOG_FIELDS = ("step", "loss", "learning_rate", "epoch", "grad_norm")


def loss_rows(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-step training entries of a Trainer log history (one row per logged step)."""
    rows = {}
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            rows[int(entry["step"])] = {k: entry.get(k) for k in LOG_FIELDS}
    return [rows[s] for s in sorted(rows)]


def write_log_csv(log_history: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Rewrite the CSV atomically: it is rewritten on every log event, and a kill must not leave half."""
    rows = loss_rows(log_history)

    def write(fh) -> None:
        writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)

    atomic_write(path, write, binary=False)  # text mode with newline="", as the csv module wants
    return rows


def read_log_csv(path: str | Path) -> list[dict[str, float]]:
    with open(path, encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(fh)]


def plot_loss(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Loss (and a moving average when there are many steps) and learning rate against the step."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    steps = [r["step"] for r in rows]
    loss = [r["loss"] for r in rows]
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=[3, 1])
    ax.plot(steps, loss, lw=1, alpha=0.6 if len(rows) > 20 else 1, label="loss")
    window = max(1, len(rows) // 20)
    if window > 1:
        smooth = [sum(loss[max(0, i - window + 1): i + 1]) / len(loss[max(0, i - window + 1): i + 1])
                  for i in range(len(loss))]
        ax.plot(steps, smooth, lw=2, label=f"moving average ({window} steps)")
        ax.legend()
    ax.set_ylabel("training loss (response tokens)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax_lr.plot(steps, [r.get("learning_rate") or 0 for r in rows], color="tab:gray")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("optimizer step")
    ax_lr.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda fh: fig.savefig(fh, format=path.suffix.lstrip(".") or "png", dpi=120), binary=True)
    plt.close(fig)
    return path


class LossProgress(TrainerCallback):
    """tqdm bar over optimizer steps with the latest loss and learning rate; starts at the resumed step."""

    def __init__(self, disable: bool = False):
        self.bar = None
        self.disable = disable

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step",
                            dynamic_ncols=True, disable=self.disable)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs.get('learning_rate', 0):.2e}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class CsvLog(TrainerCallback):
    """Keeps training_log.csv current, so an interrupted run still leaves its log behind."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            write_log_csv(state.log_history, self.path)
