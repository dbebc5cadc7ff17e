"""Issue 11, outputs: atomic writes only, no stale artifacts after a rerun, a lock on the run folder,
and concurrent feature-store jobs that compute each row once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from daar.cli import main
from daar.io import folder_lock
from data_helpers import write_jsonl

SRC = Path(__file__).resolve().parents[1] / "src" / "daar"
ROWS = [{"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}."} for i in range(12)]


def _select(pool: Path, out: Path, model: str, *extra: str) -> int:
    return main(["select", "--data", str(pool), "--out", str(out), "--method", "random", "--budget", "4",
                 "--model", model, "-q", *extra])


def test_no_module_writes_files_directly():
    """Every artifact goes through daar.io.atomic_write (the sandbox writes into its own temp folder;
    the attempt log is an append-only journal whose torn last line is skipped on resume)."""
    direct = re.compile(r"""open\([^)]*["'](w|wb|a|ab|x)["']|\.write_text\(|\.write_bytes\(|"""
                        r"""to_parquet\((?!buf)|np\.save\((?!fh)|savefig\((?!buf|fh)""")
    allowed = {"io.py", "evaluate/sandbox.py", "evaluate/code.py", "synth/sampler.py"}
    offenders = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if str(p.relative_to(SRC)) not in allowed
                 for i, line in enumerate(p.read_text().splitlines(), 1) if direct.search(line)]
    assert offenders == []


def test_rerun_removes_what_no_longer_applies(tmp_path, tiny_llama):
    out = tmp_path / "out"
    bad = write_jsonl(tmp_path / "bad.jsonl", ['{"instruction": "x"', *ROWS])
    assert _select(bad, out, tiny_llama, "--on-bad-record", "skip") == 0
    assert (out / "rejects.jsonl").exists()
    # what an earlier DaaR run, a killed writer and the user left in the folder
    (out / "domains").mkdir()
    (out / "domains" / "coding.jsonl").write_text("{}\n")
    (out / "probe_rejects.jsonl").write_text("{}\n")
    (out / ".selected.jsonl.0123456789ab.tmp").write_text("torn")
    (out / "my-notes.txt").write_text("mine")
    assert _select(write_jsonl(tmp_path / "pool.jsonl", ROWS), out, tiny_llama) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["rejected"] == 0
    assert sorted(p.name for p in out.iterdir()) == [".daar.lock", "manifest.json", "my-notes.txt", "report.html",
                                                    "scores.parquet", "selected.jsonl"]
    assert m["files"] == ["manifest.json", "report.html", "scores.parquet", "selected.jsonl"]


def test_a_second_run_into_the_same_out_fails_at_once(tmp_path, tiny_llama, capsys):
    out = tmp_path / "out"
    pool = write_jsonl(tmp_path / "pool.jsonl", ROWS)
    with folder_lock(out):
        t0 = time.perf_counter()
        assert _select(pool, out, tiny_llama) == 2
        assert time.perf_counter() - t0 < 30
    err = capsys.readouterr().err
    assert "in use by another daar run" in err and "another --out" in err
    assert not (out / "manifest.json").exists()
    assert _select(pool, out, tiny_llama) == 0  # released: the next run goes ahead


def test_compare_removes_method_folders_of_an_earlier_compare(tmp_path, tiny_llama):
    pool = write_jsonl(tmp_path / "pool.jsonl", ROWS * 3)
    out = tmp_path / "cmp"

    def compare(methods: str) -> int:
        return main(["compare", "--data", str(pool), "--out", str(out), "--methods", methods, "--budget", "5",
                     "--model", tiny_llama, "-q"])

    assert compare("random,instruction-length") == 0
    assert (out / "instruction-length" / "selected.jsonl").exists()
    assert compare("random") == 0
    assert not (out / "instruction-length").exists() and (out / "random" / "selected.jsonl").exists()


_CLAIMER = textwrap.dedent("""
    import sys, time, numpy as np
    from daar.features.store import FeatureSpec, FeatureStore
    spec = FeatureSpec("m", "3", "mean", "r", 16, "float32")
    fs = FeatureStore(sys.argv[1]).open(spec)
    keys = [f"k{i}" for i in range(6)]
    todo = fs.missing(keys)
    print("claimed", len(todo), flush=True)
    time.sleep(float(sys.argv[2]))
    fs.add([keys[i] for i in todo], np.ones((len(todo), 4)))
    print("added", flush=True)
    time.sleep(float(sys.argv[3]))
""")


def _spec():
    from daar.features.store import FeatureSpec

    return FeatureSpec("m", "3", "mean", "r", 16, "float32")


def test_a_second_job_waits_for_rows_another_process_computes_then_reuses_them(tmp_path):
    from daar.features.store import FeatureStore

    proc = subprocess.Popen([sys.executable, "-c", _CLAIMER, str(tmp_path), "2.0", "0"], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "claimed 6"
    fs = FeatureStore(tmp_path).open(_spec())
    t0 = time.perf_counter()
    todo = fs.missing([f"k{i}" for i in range(8)])  # 6 of them are being computed by the other process
    waited = time.perf_counter() - t0
    proc.wait(timeout=60)
    assert todo == [6, 7] and waited > 1.0  # waited for the claim, then only the 2 new rows are left
    fs.add(["k6", "k7"], np.zeros((2, 4)))
    assert fs.get([f"k{i}" for i in range(8)]).sum() == 24
    assert not list((fs.dir / "claims").glob("*.json"))  # both claims released


def test_a_killed_claimer_blocks_nobody(tmp_path):
    from daar.features.store import FeatureStore

    proc = subprocess.Popen([sys.executable, "-c", _CLAIMER, str(tmp_path), "60", "0"], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "claimed 6"
    proc.kill()
    proc.wait(timeout=30)
    fs = FeatureStore(tmp_path).open(_spec())
    t0 = time.perf_counter()
    assert fs.missing([f"k{i}" for i in range(6)]) == list(range(6))
    assert time.perf_counter() - t0 < 5


def test_two_concurrent_embeds_compute_each_row_once(tmp_path, tiny_llama):
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"instruction": f"Item {i} " * (i % 7 + 1), "output": str(i)}
                                                 for i in range(150)])
    env_cache = tmp_path / "cache"
    script = ("import sys; from daar.cli import main; sys.exit(main(['embed', '--data', sys.argv[1], '--out', "
              "sys.argv[2], '--model', sys.argv[3], '--feature-cache', sys.argv[4], '-q']))")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(pool), str(tmp_path / f"e{j}"), tiny_llama,
                               str(env_cache)], env={**__import__("os").environ, "DAAR_SHARD_SIZE": "10"})
             for j in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    metas = [json.loads((tmp_path / f"e{j}" / "meta.json").read_text()) for j in range(2)]
    assert sum(m["computed"] for m in metas) == 150  # without the claims both compute what overlaps
    a, b = (np.load(tmp_path / f"e{j}" / "features.npy") for j in range(2))
    assert np.array_equal(a, b)
