"""End to end: `daar eval` on a tiny random model with small local benchmark files."""

from __future__ import annotations

import json
import logging

import yaml

from daar import cli
from daar.cli import eval as eval_command
from daar.evaluate import evaluate


def _run(argv: list[str]) -> int:
    """Parse with only the eval subcommand (other commands may be mid-edit) and run it like `daar`."""
    args = cli.build_parser(["eval"]).parse_args(argv)
    return eval_command.run(cli.config_from_args(args), args)


def test_eval_is_registered_in_the_cli():
    assert cli.COMMANDS["eval"] == "daar.cli.eval"


def test_daar_eval_end_to_end(tiny_llama, eval_data, tmp_path, caplog, capsys):
    conf = tmp_path / "eval.yaml"
    conf.write_text(yaml.safe_dump({"extra": {"max_gen_toks": 8, "code_timeout": 2, "heldout_rows": "0:3"}}))
    out = tmp_path / "out"
    argv = ["eval", "--config", str(conf), "--model", tiny_llama, "--tasks", "gsm8k,humaneval,heldout-loss",
            "--limit", "3", "--data-dir", str(eval_data), "--out", str(out), "--eval-batch-size", "2",
            "--device", "cpu"]
    assert _run(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert list(res["tasks"]) == ["gsm8k", "humaneval", "heldout-loss"]
    gsm, he, held = res["tasks"]["gsm8k"], res["tasks"]["humaneval"], res["tasks"]["heldout-loss"]
    assert gsm["metric"] == "exact_match" and gsm["n"] == 3 and gsm["of"] == 5 and 0 <= gsm["value"] <= 100
    assert he["metric"] == "pass@1" and he["n"] == 3 and he["settings"]["n_fewshot"] == 0
    assert gsm["settings"]["n_fewshot"] == 4 and gsm["settings"]["generation_kwargs"]["max_gen_toks"] == 8
    assert held["higher_is_better"] is False and set(held["domains"]) == {"common_sense", "mathematics", "coding"}
    assert res["average"]["over"] == ["gsm8k", "humaneval"]  # heldout-loss stays out of the average
    assert res["average"]["value"] == (gsm["value"] + he["value"]) / 2

    md = (out / "results.md").read_text().splitlines()
    assert md[0] == "| model | adapter | gsm8k | humaneval | average | heldout-loss (lower is better) |"
    assert len(md[2].split("|")) == len(md[0].split("|"))
    for task in ("gsm8k", "humaneval"):
        samples = [json.loads(x) for x in (out / "raw" / task / "samples.jsonl").read_text().splitlines()]
        assert len(samples) == 3 and all(s["daar"] is not None for s in samples)
        assert (out / "raw" / task / "lm_eval_results.json").is_file()
    assert all(s["daar"]["status"] in ("passed", "failed", "timeout") for s in
               map(json.loads, (out / "raw" / "humaneval" / "samples.jsonl").read_text().splitlines()))
    assert "average" in capsys.readouterr().out

    # rerunning the same command reuses every finished task instead of recomputing it
    caplog.set_level(logging.INFO, logger="daar.evaluate.runner")
    assert _run(argv) == 0
    assert sum("reusing" in r.getMessage() for r in caplog.records) == 3
    assert json.loads((out / "results.json").read_text())["tasks"]["gsm8k"]["value"] == gsm["value"]


def test_python_api_with_kwargs(tiny_llama, eval_data, tmp_path):
    res = evaluate(model=tiny_llama, tasks="humaneval", limit=2, data_dir=str(eval_data), out=str(tmp_path / "o"),
                   device="cpu", extra={"max_gen_toks": 4, "code_timeout": 2})
    assert res["tasks"]["humaneval"]["n"] == 2 and (tmp_path / "o" / "results.md").is_file()
