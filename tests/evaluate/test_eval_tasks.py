"""The local lm-eval task configs: every YAML builds offline from local files with the paper's prompts."""

from __future__ import annotations

import json

import pytest

from daar.errors import ConfigError
from daar.evaluate.harness import BENCHMARKS, subset_indices, task_config
from daar.evaluate.runner import parse_tasks, resolve_data_dir


def _task(name, eval_data):
    from lm_eval.tasks import TaskManager

    cfg = task_config(BENCHMARKS[name], eval_data, {}, {"timeout": 2.0})
    return TaskManager(include_defaults=False).load([cfg])["tasks"][cfg["task"]]


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_every_task_builds_from_local_files(name, eval_data):
    task = _task(name, eval_data)
    assert len(task.eval_docs) >= 1
    doc = task.eval_docs[0]
    assert "daar_row" in doc
    ctx = task.fewshot_context(doc, task.config.num_fewshot)
    assert isinstance(ctx, str) and ctx


def test_fewshot_prompts_have_the_paper_shot_counts(eval_data):
    gsm = _task("gsm8k", eval_data)
    ctx = gsm.fewshot_context(gsm.eval_docs[0], gsm.config.num_fewshot)
    assert ctx.count("Question:") == 5 and ctx.count("The answer is") == 4
    assert ctx.endswith("Let's think step by step\nAnswer:")
    mbpp = _task("mbpp", eval_data)
    assert len(mbpp.eval_docs) == 5  # task_ids 11-15 of the 15: the test split starts at 11
    ctx = mbpp.fewshot_context(mbpp.eval_docs[0], mbpp.config.num_fewshot)
    assert ctx.count("[DONE]") == 3 and "similar_elements" in ctx and ctx.endswith("[BEGIN]\n")
    math_task = _task("math", eval_data)
    ctx = math_task.fewshot_context(math_task.eval_docs[0], math_task.config.num_fewshot)
    assert ctx.count("Problem:") == 5 and ctx.count("I hope it is correct.") == 4
    assert "30n&=480\\\\\n\\Rightarrow" in ctx  # LaTeX line break survives the YAML
    he = _task("humaneval", eval_data)
    assert he.config.num_fewshot == 0


def test_subsets_follow_the_papers_seed_42_sample(tmp_path):
    import numpy as np

    bench = BENCHMARKS["gsm8k"]
    perm = np.random.RandomState(42).permutation(1319)
    assert subset_indices(bench, 1319, None, 42) == sorted(perm[:500].tolist())
    assert subset_indices(bench, 1319, 20, 42) == sorted(perm[:20].tolist())
    assert subset_indices(BENCHMARKS["humaneval"], 164, None, 42) is None  # all 164
    assert subset_indices(BENCHMARKS["humaneval"], 164, 500, 42) is None
    (tmp_path / "paper_subsets.json").write_text(json.dumps({"gsm8k_test.jsonl": {"n": 3, "of": 10,
                                                                                   "indices": [9, 2, 5]}}))
    assert subset_indices(bench, 10, 2, 42, tmp_path) == [2, 9]


def test_task_names_and_data_dir_errors(tmp_path):
    assert parse_tasks("gsm8k, HumanEval,heldout") == ["gsm8k", "humaneval", "heldout-loss"]
    assert parse_tasks("paper")[-1] == "humaneval" and len(parse_tasks("paper")) == 7
    assert parse_tasks("all") == [*parse_tasks("paper"), "mmlu", "heldout-loss"]
    with pytest.raises(ConfigError, match="unknown task 'gsm9k'"):
        parse_tasks("gsm9k")
    with pytest.raises(ConfigError, match="--tasks is required"):
        parse_tasks(None)
    with pytest.raises(ConfigError, match="--data-dir"):
        resolve_data_dir(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="not found"):
        task_config(BENCHMARKS["nq"], tmp_path, {}, {})


def test_benchmark_files_are_needed_only_by_benchmark_tasks(tmp_path, monkeypatch):
    """Where no ../shared/data/eval exists (beside the project or the working directory), a benchmark
    task is refused before anything loads, while heldout-loss with its pool folder given runs without it."""
    from daar.evaluate import runner

    monkeypatch.setattr(runner, "project_root", lambda: tmp_path / "project")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no benchmark data"):
        resolve_data_dir(None)
    assert resolve_data_dir(None, required=False) is None
    assert runner.resolve_pool_dir(None, {"pool_dir": str(tmp_path)}) == tmp_path
    with pytest.raises(ConfigError, match="heldout-loss needs the pool files"):
        runner.resolve_pool_dir(None, {})
    (tmp_path / "shared" / "data" / "eval").mkdir(parents=True)  # ../shared beside the working directory
    monkeypatch.chdir(tmp_path / "shared")
    assert resolve_data_dir(None, required=False) == tmp_path / "shared" / "data" / "eval"


def test_mmlu_is_a_zero_shot_cloze_over_the_answer_texts(eval_data):
    task = _task("mmlu", eval_data)
    doc = task.eval_docs[0]
    assert task.config.num_fewshot == 0
    assert task.doc_to_text(doc).endswith("Question: Which continent is Kenya in?\nAnswer:")
    assert "high school geography" in task.doc_to_text(doc)
    assert task.doc_to_choice(doc) == ["Asia", "Africa", "Europe", "Oceania"]
    assert task.doc_to_target(doc) == 1
    assert task.doc_to_target(task.eval_docs[1]) == 2
