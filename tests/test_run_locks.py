"""`daar embed`, `daar train` and `daar eval` hold the run folder's lock, as `daar select` does: a second
run into the same --out fails at once (exit 2, naming the holder) before loading or computing anything."""

from __future__ import annotations

import time

import pytest

from daar.cli import main
from daar.errors import DaarError
from daar.io import LOCK_NAME, folder_lock
from daar.train import train_lora
from data_helpers import ALPACA_ROWS, write_jsonl


def _held_message(err: str, out) -> None:
    assert f"--out {out} is in use by another daar run" in err and "pid" in err and "another --out" in err
    assert "Traceback" not in err


def test_a_second_embed_into_the_same_out_fails_at_once(tmp_path, tiny_llama, capsys):
    pool = write_jsonl(tmp_path / "pool.jsonl", ALPACA_ROWS)
    out = tmp_path / "emb"
    argv = ["embed", "--data", str(pool), "--model", tiny_llama, "--layer", "2", "--dtype", "float32",
            "--out", str(out), "-q"]
    with folder_lock(out):
        t0 = time.perf_counter()
        assert main(argv) == 2
        assert time.perf_counter() - t0 < 30
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing computed, nothing written
    _held_message(capsys.readouterr().err, out)
    assert main(argv) == 0  # the lock is released: the same command now runs
    assert (out / "features.npy").exists()


def test_train_and_eval_take_the_lock_before_loading_anything(tmp_path, tiny_llama, capsys):
    pool = write_jsonl(tmp_path / "pool.jsonl", ALPACA_ROWS)
    out = tmp_path / "run"
    with folder_lock(out):
        with pytest.raises(DaarError, match="is in use by another daar run"):
            train_lora(data=str(pool), model=tiny_llama, out=str(out), max_steps=1)
        rc = main(["eval", "--model", tiny_llama, "--tasks", "gsm8k", "--data-dir", str(tmp_path),
                   "--out", str(out), "--device", "cpu", "-q"])
        assert rc == 2
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    _held_message(capsys.readouterr().err, out)
