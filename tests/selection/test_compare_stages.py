"""`daar compare` runs only what was asked for, and shares DaaR's stages with `daar select`."""

from __future__ import annotations

import json

from daar.cli import main


def _args(select_kwargs) -> list[str]:
    return [x for k, v in select_kwargs.items() if k != "budget" for x in (f"--{k.replace('_', '-')}", str(v))]


def test_compare_on_cheap_methods_runs_no_daar_stage(pool_file, select_kwargs, tmp_path, isolated_cache):
    out = tmp_path / "cmp"
    rc = main(["compare", "--data", str(pool_file), "--methods", "random,instruction-length,kcenter",
               "--budget", "8", "--label-field", "source", "--out", str(out), "-q", *_args(select_kwargs)])
    assert rc == 0
    assert not (isolated_cache / "stages").exists()  # no synthesis, no probe stage, nothing stored
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["domain_names"] is None and "daar_stages" not in summary["shared_seconds"]
    assert all(r["status"] == "ok" and "mean_entropy" not in r for r in summary["runs"])
    md = (out / "comparison.md").read_text()
    assert "Label mix" in md and "Pseudo-domain mix" not in md and "--diagnostics pseudo-domains" in md
    for m in ("random", "instruction-length", "kcenter"):
        manifest = json.loads((out / m / "manifest.json").read_text())
        assert manifest["stages"] == [] and manifest["select_seconds"] >= 0


def test_compare_diagnostics_flag_adds_the_pseudo_domain_columns(pool_file, select_kwargs, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", "--data", str(pool_file), "--methods", "random", "--budget", "8",
                 "--diagnostics", "pseudo-domains", "--out", str(out), "-q", *_args(select_kwargs)]) == 0
    summary = json.loads((out / "comparison.json").read_text())
    assert len(summary["domain_names"]) == 4 and "mean_entropy" in summary["runs"][0]
    assert "Pseudo-domain mix" in (out / "comparison.md").read_text()


def test_select_then_compare_reuses_every_daar_stage(pool_file, select_kwargs, tmp_path):
    common = ["--data", str(pool_file), "--budget", "8", "-q", *_args(select_kwargs)]
    assert main(["select", "--out", str(tmp_path / "sel"), *common]) == 0
    assert main(["compare", "--methods", "daar,random", "--out", str(tmp_path / "cmp"), *common]) == 0
    manifest = json.loads((tmp_path / "cmp" / "daar" / "manifest.json").read_text())
    stages = {s["name"]: s["skipped_on_rerun"] for s in manifest["stages"]}
    assert set(stages) == {"synthesis", "centroids", "pseudo-labels", "psi_dom", "psi_div", "scores"}
    assert all(stages.values())
    ids = lambda d: [json.loads(line)["id"] for line in open(d / "selected.jsonl")]  # noqa: E731
    assert ids(tmp_path / "sel") == ids(tmp_path / "cmp" / "daar")


def test_compare_checks_cheap_things_before_any_method(pool_file, select_kwargs, tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = main(["compare", "--data", str(pool_file), "--methods", "daar,random", "--budget", "8",
               "--label-field", "nope", "--out", str(out), *_args(select_kwargs)])
    assert rc == 2 and "--label-field 'nope' is missing" in capsys.readouterr().err
    assert not out.exists()
