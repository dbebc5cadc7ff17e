"""`daar score-code`: the pass@k estimator, the CLI on small sample files, bad sample files, the
refusal without a sandbox, and the canonical solutions of the real benchmarks."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import pytest

from daar import cli
from daar.evaluate import sandbox
from daar.evaluate.score_code import pass_at_k

needs_bwrap = pytest.mark.skipif(sandbox.isolation_problem() is not None,
                                 reason=f"no usable bubblewrap here: {sandbox.isolation_problem()}")


def _samples(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _score(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["score-code", "-q", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(("n", "c", "k"), [(1, 0, 1), (1, 1, 1), (5, 2, 1), (10, 3, 10), (20, 3, 10), (200, 7, 100)])
def test_pass_at_k_matches_the_combinatorial_definition(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


@needs_bwrap
def test_cli_scores_several_samples_per_task(eval_data, tmp_path, capsys):
    good = {"Toy/0": "    return a + b\n", "Toy/1": "    return a * b\n"}
    rows = [{"task_id": t, "completion": c} for t, c in good.items()]
    rows += [{"task_id": "Toy/0", "completion": "    return a - b\n"},  # Toy/0: 1 of 2 correct
             {"task_id": "Toy/1", "completion": "    import os\n    os._exit(0)\n"}]  # Toy/1: 1 of 2
    samples = _samples(tmp_path / "samples.jsonl", rows)
    out = tmp_path / "scored"
    code, stdout, _ = _score(capsys, "--task", "humaneval", "--samples", str(samples), "--data-dir", str(eval_data),
                             "--out", str(out), "--workers", "2")
    assert code == 0 and "pass@1 0.5000" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass@1"] == 0.5 and "pass@10" not in summary
    assert summary["n_samples"] == 4 and summary["n_tasks"] == 2 and summary["tasks_without_samples"] == 2
    assert summary["isolation"] == ["bwrap"]
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["sample"], r["line"], r["passed"]) for r in lines] == [
        ("Toy/0", 0, 1, True), ("Toy/1", 0, 2, True), ("Toy/0", 1, 3, False), ("Toy/1", 1, 4, False)]
    assert "before the tests finished" in lines[3]["detail"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".scored")) == []  # no temp left


@needs_bwrap
def test_pass_at_10_with_ten_samples_and_mbpp_ids(eval_data, tmp_path, capsys):
    rows = [{"task_id": 1 if i % 2 else "Mbpp/1", "completion": "def f(x):\n    return x\n[DONE]"} for i in range(7)]
    rows += [{"task_id": "1", "completion": "def f(x):\n    return -x\n"} for _ in range(3)]
    samples = _samples(tmp_path / "s.jsonl", rows)
    code, _, _ = _score(capsys, "--task", "mbpp", "--samples", str(samples), "--data-dir", str(eval_data),
                        "--out", str(tmp_path / "o"))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert code == 0 and summary["pass@1"] == pytest.approx(0.7) and summary["pass@10"] == 1.0
    assert summary["per_task"] == {"1": {"n": 10, "correct": 7}}


@pytest.mark.parametrize(("line", "why"), [
    ("{not json", "not valid JSON"), ('["HumanEval/0", "x"]', "expected a JSON object"),
    ('{"task_id": "Toy/0"}', "needs a 'task_id' and a string 'completion'"),
    ('{"task_id": "Toy/99", "completion": ""}', "'Toy/99' is not a humaneval task"),
])
def test_bad_sample_lines_exit_2_naming_the_line(eval_data, tmp_path, capsys, line, why):
    samples = tmp_path / "bad.jsonl"
    samples.write_text('{"task_id": "Toy/0", "completion": "    return a + b\\n"}\n\n' + line + "\n")
    code, _, err = _score(capsys, "--task", "humaneval", "--samples", str(samples), "--data-dir", str(eval_data),
                          "--out", str(tmp_path / "o"))
    assert code == 2 and f"{samples}, line 3" in err and why in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_bad_bytes_empty_file_and_out_is_a_file(eval_data, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"task_id": "Toy/0", "completion": "\xff"}\n')
    code, _, err = _score(capsys, "--task", "humaneval", "--samples", str(bad), "--data-dir", str(eval_data),
                          "--out", str(tmp_path / "o"))
    assert code == 2 and "line 1: not valid UTF-8" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert _score(capsys, "--task", "humaneval", "--samples", str(empty), "--data-dir", str(eval_data),
                  "--out", str(tmp_path / "o"))[0] == 2
    good = _samples(tmp_path / "g.jsonl", [{"task_id": "Toy/0", "completion": "    return a + b\n"}])
    (tmp_path / "file").write_text("x")
    code, _, err = _score(capsys, "--task", "humaneval", "--samples", str(good), "--data-dir", str(eval_data),
                          "--out", str(tmp_path / "file"))
    assert code == 2 and "file" in err and "Traceback" not in err


def test_without_a_sandbox_score_code_refuses_unless_allowed(eval_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(sandbox.BWRAP_ENV, str(tmp_path / "missing-bwrap"))
    samples = _samples(tmp_path / "s.jsonl", [{"task_id": "Toy/0", "completion": "    return a + b\n"}])
    args = ["--task", "humaneval", "--samples", str(samples), "--data-dir", str(eval_data), "--out", str(tmp_path / "o")]
    code, _, err = _score(capsys, *args)
    assert code == 2 and "refusing to execute model-generated code" in err and "--allow-unsandboxed-code" in err
    assert not (tmp_path / "o").exists()
    code, stdout, _ = _score(capsys, *args, "--allow-unsandboxed-code")
    assert code == 0 and "pass@1 1.0000" in stdout and "isolation none" in stdout


def _canonical_samples(shared_data: Path, tmp_path: Path, limit: int | None) -> Path:
    rows = [json.loads(line) for line in (shared_data / "eval" / "humaneval.jsonl").read_text().splitlines()]
    return _samples(tmp_path / "canonical.jsonl",
                    [{"task_id": r["task_id"], "completion": r["canonical_solution"]} for r in rows[:limit]])


@needs_bwrap
def test_a_few_canonical_humaneval_solutions_pass(shared_data, tmp_path, capsys):
    samples = _canonical_samples(shared_data, tmp_path, 6)
    code, stdout, _ = _score(capsys, "--task", "humaneval", "--samples", str(samples), "--out", str(tmp_path / "o"),
                             "--data-dir", str(shared_data / "eval"))
    assert code == 0 and "pass@1 1.0000" in stdout


@pytest.mark.slow
@needs_bwrap
def test_all_164_canonical_humaneval_solutions_pass(shared_data, tmp_path, capsys):
    samples = _canonical_samples(shared_data, tmp_path, None)
    code, _, _ = _score(capsys, "--task", "humaneval", "--samples", str(samples), "--out", str(tmp_path / "o"),
                        "--data-dir", str(shared_data / "eval"))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert code == 0 and summary["n_tasks"] == 164 and summary["status"] == {"passed": 164}
