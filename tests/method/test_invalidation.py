"""A rerun never trusts an artifact whose inputs changed: texts edited under unchanged ids (pool and
probe set), and the synthesis dedup features' pooling / max length / dtype."""

from __future__ import annotations

import json

import pytest
from tests.selection.conftest import pool_rows

from daar.runs.select import DaaR


def _ids(out) -> list[str]:
    return [json.loads(line)["id"] for line in open(out / "selected.jsonl")]


def _skipped(manifest) -> dict[str, bool]:
    return {s["name"]: s["skipped_on_rerun"] for s in manifest["stages"]}


def _write(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _edited(rows, every: int = 2) -> list[dict]:
    """Same ids, other texts: every other record's instruction and output become another topic's."""
    out = []
    for i, r in enumerate(rows):
        if i % every == 0:
            other = rows[(i + len(rows) // 2) % len(rows)]
            r = {**r, "instruction": other["instruction"] + " (edited)", "output": other["output"]}
        out.append(r)
    return out


def test_edited_pool_texts_under_the_same_ids_recompute_and_match_a_fresh_run(tmp_path, select_kwargs,
                                                                             monkeypatch):
    pool, out = tmp_path / "pool.jsonl", tmp_path / "run"
    rows = pool_rows()
    _write(pool, rows)
    DaaR(**select_kwargs).select(pool, out)
    _write(pool, _edited(rows))
    m = DaaR(**select_kwargs).select(pool, out)
    skipped = _skipped(m)
    assert skipped["synthesis"] and skipped["centroids"]  # they read no pool text
    assert not skipped["pseudo-labels"] and not skipped["psi_dom"] and not skipped["scores"]
    monkeypatch.setenv("DAAR_CACHE", str(tmp_path / "fresh-cache"))  # an empty stage and feature store
    DaaR(**select_kwargs).select(pool, tmp_path / "fresh")
    assert _ids(out) == _ids(tmp_path / "fresh")


def test_edited_probe_texts_under_the_same_ids_recompute_and_match_a_fresh_run(tmp_path, select_kwargs,
                                                                              monkeypatch):
    pool, probe, out = tmp_path / "pool.jsonl", tmp_path / "probe.jsonl", tmp_path / "run"
    _write(pool, pool_rows())
    probe_rows = [{**r, "id": "probe-" + r["id"]} for r in pool_rows(8)]
    _write(probe, probe_rows)
    kwargs = {**select_kwargs, "probe_data": str(probe), "probe_size": None}
    DaaR(**kwargs).select(pool, out)
    _write(probe, _edited(probe_rows))
    m = DaaR(**kwargs).select(pool, out)
    skipped = _skipped(m)
    assert skipped["synthesis"] and skipped["centroids"]
    assert not skipped["pseudo-labels"] and not skipped["psi_dom"] and not skipped["psi_div"]
    assert not skipped["scores"]  # new heads, so new pool scores
    monkeypatch.setenv("DAAR_CACHE", str(tmp_path / "fresh-cache"))
    DaaR(**kwargs).select(pool, tmp_path / "fresh")
    assert _ids(out) == _ids(tmp_path / "fresh")


class CountingBackend:
    """A generation backend that writes distinct valid samples and counts its calls."""

    identity = "counting-backend"

    def __init__(self):
        self.calls = 0

    def generate(self, prompts, **kwargs):
        out = []
        for _ in prompts:
            self.calls += 1
            out.append([json.dumps({"instruction": f"task number {self.calls} about topic {self.calls * 7}",
                                    "input": "", "output": f"answer {self.calls}"})])
        return out


@pytest.mark.parametrize("change", [{"pooling": "last"}, {"max_length": 48}, {"dtype": "bfloat16"}])
def test_synthesis_dedup_is_not_reused_when_its_feature_settings_change(tmp_path, select_kwargs, pool_file,
                                                                        change):
    from daar.runs.select import run_selection
    from daar.settings import Config

    base = {k: v for k, v in select_kwargs.items() if k != "domains"}  # no examples: synthesis generates
    base.update(seeds_per_domain=1, samples_per_domain=1, max_attempts=3, synth_batch=4, max_new_tokens=16)

    def run(settings, out):
        backend = CountingBackend()
        cfg = Config.from_mapping({**settings, "data": str(pool_file), "out": str(tmp_path / out)})
        return run_selection(cfg.apply_preset().validate(), generator=backend), backend

    m1, b1 = run(base, "a")
    m2, b2 = run(base, "b")
    assert b1.calls > 0 and b2.calls == 0 and _skipped(m2)["synthesis"]  # same settings: reused
    m3, b3 = run({**base, **change}, "c")
    assert b3.calls > 0 and not _skipped(m3)["synthesis"]
