"""`daar embed` end to end: outputs, bad-input errors, rejects, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from daar import __version__
from daar.cli import main
from daar.data.records import content_id
from data_helpers import ALPACA_ROWS, write_jsonl


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One thread: tiny models gain nothing from two, and a busy machine makes two very slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def embed(data: Path, model: str, out: Path, *extra: str) -> int:
    return main(["embed", "--data", str(data), "--model", model, "--layer", "2", "--dtype", "float32",
                 "--out", str(out), "-q", *extra])


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", **extra)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


# -- entry points -------------------------------------------------------------------------------------


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "embed" in text and "pooled shallow-layer features" in text and "--version" in text


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "embed" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"daar {__version__}"


def test_python_dash_m_and_console_script():
    res = subprocess.run([sys.executable, "-m", "daar", "--version"], capture_output=True, text=True, timeout=120,
                         env=subprocess_env())
    assert res.returncode == 0 and res.stdout.strip() == f"daar {__version__}"
    script = shutil.which("daar", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the daar console script is not installed beside this python (pip install -e .)")
    res = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert res.returncode == 0 and "embed" in res.stdout


def test_embed_help_shows_the_feature_flags(capsys):
    with pytest.raises(SystemExit):
        main(["embed", "--help"])
    text = capsys.readouterr().out
    for flag in ("--layer", "--pooling", "--max-length", "--dtype", "--batch-size", "--schema", "--on-bad-record"):
        assert flag in text


# -- a normal run -------------------------------------------------------------------------------------


def test_embed_writes_features_ids_and_meta(tmp_path, tiny_llama, capsys):
    data = write_jsonl(tmp_path / "pool.jsonl", ALPACA_ROWS)
    out = tmp_path / "out"
    assert embed(data, tiny_llama, out) == 0
    feats = np.load(out / "features.npy")
    assert feats.shape == (len(ALPACA_ROWS), 64) and np.isfinite(feats).all()
    assert (out / "ids.txt").read_text().split() == [content_id(r) for r in ALPACA_ROWS]
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["read"], meta["embedded"], meta["rejected"], meta["computed"]) == (6, 6, 0, 6)
    assert meta["schema"] == "alpaca" and meta["spec"]["layer"] == "2" and meta["spec"]["dtype"] == "float32"
    assert not (out / "rejects.jsonl").exists()
    assert "read 6 = embedded 6 + rejected 0" in capsys.readouterr().out
    # the same command again: everything from the store, identical output
    assert embed(data, tiny_llama, out) == 0
    meta2 = json.loads((out / "meta.json").read_text())
    assert (meta2["from_cache"], meta2["computed"]) == (6, 0)
    np.testing.assert_array_equal(np.load(out / "features.npy"), feats)


def test_embed_matches_the_python_api(tmp_path, tiny_llama):
    from daar import FeatureStore, extract_features, load_records

    data = write_jsonl(tmp_path / "pool.jsonl", ALPACA_ROWS)
    assert embed(data, tiny_llama, tmp_path / "out", "--pooling", "last", "--batch-size", "3") == 0
    api = extract_features(load_records(data).records, model=tiny_llama, layer=2, pooling="last", dtype="float32",
                           store=FeatureStore(tmp_path / "fresh-store"), show_progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "features.npy"), api, atol=1e-6, rtol=0)


def test_embed_schema_override(tmp_path, tiny_llama):
    rows = [{"instruction": f"ins {i}", "output": f"out {i}", "text": f"a text {i}"} for i in range(3)]
    data = write_jsonl(tmp_path / "pool.jsonl", rows)
    assert embed(data, tiny_llama, tmp_path / "out", "--schema", "text") == 0
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["schema"] == "text"


def test_embed_reads_a_config_file(tmp_path, tiny_llama):
    data = write_jsonl(tmp_path / "pool.jsonl", ALPACA_ROWS[:3])
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data: {data}\nmodel: {tiny_llama}\nlayer: embedding\ndtype: float32\nmax-length: 64\n")
    assert main(["embed", "--config", str(cfg), "--out", str(tmp_path / "out"), "-q"]) == 0
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["spec"]["layer"] == "embedding" and meta["spec"]["max_length"] == 64


# -- bad input ----------------------------------------------------------------------------------------

GOOD = json.dumps(ALPACA_ROWS[0]).encode()
BAD_FILES = {
    "malformed-json": (GOOD + b'\n{"instruction": "x",\n' + GOOD + b"\n", "line 2", "malformed JSON"),
    "no-schema-fields": (GOOD + b"\n" + GOOD + b'\n{"prompt": "x", "answer": "y"}\n', "line 3", "no 'instruction' field"),
    "non-utf8": (GOOD + b'\n{"instruction": "na\xefve", "output": "y"}\n', "line 2", "not valid UTF-8"),
    "empty": (b"", "", "file is empty"),
}


@pytest.mark.parametrize("case", [*BAD_FILES, "missing"])
def test_bad_input_fails_cleanly(tmp_path, tiny_llama, capsys, case):
    path = tmp_path / "pool.jsonl"
    where, reason = "", "file not found"
    if case != "missing":
        content, where, reason = BAD_FILES[case]
        path.write_bytes(content)
    out = tmp_path / "out"
    assert embed(path, tiny_llama, out) == 2
    err = capsys.readouterr().err
    assert err.startswith("daar embed: error: ") and "Traceback" not in err
    assert str(path) in err and reason in err and (not where or f"{where}:" in err)
    assert not (out / "features.npy").exists() and not (out / "ids.txt").exists()


def test_bad_input_fails_cleanly_as_a_subprocess(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_bytes(BAD_FILES["malformed-json"][0])
    res = subprocess.run([sys.executable, "-m", "daar", "embed", "--data", str(path), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120, env=subprocess_env(), cwd=tmp_path)
    assert res.returncode != 0
    assert f"{path}, line 2: malformed JSON" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o" / "features.npy").exists()


def test_skip_bad_records(tmp_path, tiny_llama, capsys):
    lines = [GOOD, b'{"instruction": "x",', json.dumps(ALPACA_ROWS[1]).encode(), b'{"question": "no fields"}',
             b'{"instruction": "caf\xe9"}', json.dumps(ALPACA_ROWS[2]).encode(), b"[1, 2]"]
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    assert embed(data, tiny_llama, out, "--on-bad-record", "skip") == 0
    printed = capsys.readouterr().out
    assert "read 7 = embedded 3 + rejected 4" in printed
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rejects] == [2, 4, 5, 7]
    assert all(r["reason"] for r in rejects)
    assert "malformed JSON" in rejects[0]["reason"] and "UTF-8" in rejects[2]["reason"]
    assert np.load(out / "features.npy").shape == (3, 64)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["read"] == meta["embedded"] + meta["rejected"] == 7


def test_skip_run_without_rejects_clears_stale_rejects(tmp_path, tiny_llama):
    out = tmp_path / "out"
    out.mkdir()
    (out / "rejects.jsonl").write_text('{"line": 1}\n')
    assert embed(write_jsonl(tmp_path / "p.jsonl", ALPACA_ROWS[:2]), tiny_llama, out, "--on-bad-record", "skip") == 0
    assert not (out / "rejects.jsonl").exists()


def test_invalid_setting_is_a_clean_error(tmp_path, tiny_llama, capsys):
    data = write_jsonl(tmp_path / "pool.jsonl", ALPACA_ROWS[:2])
    assert main(["embed", "--data", str(data), "--model", tiny_llama, "--batch-size", "0", "-q"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err


# -- interrupt and resume -----------------------------------------------------------------------------


def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path, tiny_llama, isolated_cache,
                                                                     monkeypatch):
    rows = [{"instruction": f"Question {i}: what is {i} plus {i * 7}?", "input": "x " * (i % 17),
             "output": f"The answer is {i + i * 7}. " * (1 + i % 5)} for i in range(200)]
    data = write_jsonl(tmp_path / "pool.jsonl", rows)
    out = tmp_path / "out"
    args = ["embed", "--data", str(data), "--model", tiny_llama, "--layer", "2", "--dtype", "float32",
            "--batch-size", "1", "--out", str(out)]
    monkeypatch.setenv("DAAR_SHARD_SIZE", "5")  # several shards from a small pool
    store = isolated_cache / "features"

    proc = subprocess.Popen([sys.executable, "-m", "daar", *args], env=subprocess_env(), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(store.glob("*/shard-*.npy")):
            assert proc.poll() is None, "daar embed ended before writing its first shard"
            assert time.monotonic() < deadline, "no shard written within 120 s"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "features.npy").exists()
    done_before = len(list(store.glob("*/shard-*.npy")))

    # the same command again (in this process, to spare a second interpreter start) runs to completion
    assert main([*args, "-q"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["embedded"] == len(rows)
    assert 0 < meta["computed"] < len(rows), "the rerun should compute only what the killed run had not stored"
    assert meta["from_cache"] == len(rows) - meta["computed"] >= 5 * done_before
    resumed = np.load(out / "features.npy")

    # an uninterrupted run in a fresh cache
    fresh = tmp_path / "fresh"
    assert main(["embed", "--data", str(data), "--model", tiny_llama, "--layer", "2", "--dtype", "float32",
                 "--feature-cache", str(fresh / "features"), "--out", str(fresh / "out"), "-q"]) == 0
    assert json.loads((fresh / "out" / "meta.json").read_text())["computed"] == len(rows)
    uninterrupted = np.load(fresh / "out" / "features.npy")
    assert resumed.shape == uninterrupted.shape == (len(rows), 64)
    assert np.allclose(resumed, uninterrupted, atol=1e-6, rtol=0)
    assert (out / "ids.txt").read_text() == (fresh / "out" / "ids.txt").read_text()


# -- the bundled model (slow: converts SmolLM2 into this test's own cache) ------------------------------


@pytest.mark.slow
def test_quick_start_on_the_bundled_sample(tmp_path, capsys):
    from daar.resources import sample_pool_path

    out = tmp_path / "out"
    assert main(["embed", "--data", str(sample_pool_path()), "--out", str(out), "-q"]) == 0
    feats = np.load(out / "features.npy")
    assert feats.shape == (40, 576) and np.isfinite(feats).all()
    assert "read 40 = embedded 40 + rejected 0" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["spec"]["layer"] == "3" and meta["spec"]["model"].startswith("smollm2-135m-instruct@")
