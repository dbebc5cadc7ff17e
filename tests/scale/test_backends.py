"""Same answer everywhere: in-memory, local streaming and Ray (a real local cluster) give the same
scores and selections; a killed or failed run resumes shard by shard and its counts add up.

Tolerance: scores may differ by float rounding only, because streaming batches records by shard
(other padding, other matmul shapes); measured max |diff| ~3e-8 on the tiny model in float32, and
the tests allow TOL = 1e-5. Selections must be equal except records whose score is within TOL of
the cut-off (a tie that rounding may break either way).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests.scale.conftest import write_pool

from daar.cli import main
from daar.errors import DaarError
from daar.runs.select import DaaR

TOL = 1e-5


def _scores(out):
    return pd.read_parquet(out / "scores.parquet")


def assert_same(a, b, tol=TOL):
    """Two runs' scores.parquet agree within `tol`, and their selections up to ties at the cut-off."""
    fa, fb = _scores(a), _scores(b)
    for col in ("index", "line", "rejected", "reason"):
        assert fa[col].tolist() == fb[col].tolist(), col
    assert fa["id"].fillna("").tolist() == fb["id"].fillna("").tolist()
    p_cols = [c for c in fa.columns if c.startswith("p_")] + ["score"]
    for col in p_cols:
        x, y = fa[col].to_numpy(float), fb[col].to_numpy(float)
        assert np.array_equal(np.isnan(x), np.isnan(y)) and np.nanmax(np.abs(x - y), initial=0) <= tol, col
    differ = fa["selected"].to_numpy() != fb["selected"].to_numpy()
    if differ.any():
        cutoff = fa.loc[fa["selected"], "score"].min()
        assert np.all(np.abs(fa.loc[differ, "score"] - cutoff) <= tol), "selections differ away from the cut-off"
    else:
        assert (a / "selected.jsonl").read_text() == (b / "selected.jsonl").read_text()
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert ma["counts"] == mb["counts"]
    c = ma["counts"]
    assert c["read"] == c["selected"] + c["not_selected"] + c["rejected"]


def test_in_memory_local_streaming_and_ray_agree(big_pool, scale_kwargs, ray_cluster, tmp_path):
    mem = DaaR(**scale_kwargs).select(big_pool, tmp_path / "mem")
    assert mem["counts"] == {"read": 2002, "selected": 200, "not_selected": 1800, "rejected": 2}
    local = DaaR(**scale_kwargs, stream=True).select(big_pool, tmp_path / "local")
    ray = DaaR(**scale_kwargs, backend="ray", workers=2).select(big_pool, tmp_path / "ray")
    assert local["scale"]["shards_scored"] == ray["scale"]["shards_scored"] == 6  # 2002 rows / 400
    assert_same(tmp_path / "mem", tmp_path / "local")
    assert_same(tmp_path / "mem", tmp_path / "ray")
    assert (tmp_path / "mem" / "rejects.jsonl").read_text() == (tmp_path / "ray" / "rejects.jsonl").read_text()
    # a run killed before two commits (one score file half-written): the rerun redoes those two only
    out = tmp_path / "ray"
    before = (out / "selected.jsonl").read_text(), _scores(out)
    (out / "shards" / "shard-000001.done.json").unlink()
    (out / "shards" / "shard-000004.done.json").unlink()
    (out / "shards" / "shard-000004.parquet").write_bytes(b"torn")
    m = DaaR(**scale_kwargs, backend="ray", workers=2).select(big_pool, out)
    assert (m["scale"]["shards_scored"], m["scale"]["shards_reused"]) == (2, 4)
    assert (out / "selected.jsonl").read_text() == before[0]
    pd.testing.assert_frame_equal(_scores(out), before[1])
    assert m["counts"] == mem["counts"]
    # a quota strategy over the same shards: scores reused, the same picks as in memory
    kw = {**scale_kwargs, "strategy": "balanced", "force_naming": True}
    DaaR(**kw).select(big_pool, tmp_path / "mem-bal")
    again = DaaR(**kw, stream=True).select(big_pool, tmp_path / "local")
    assert again["scale"]["shards_scored"] == 0 and again["scale"]["shards_reused"] == 6
    assert_same(tmp_path / "mem-bal", tmp_path / "local")


@pytest.mark.parametrize("method", ["random", "output-length", "instruction-length"])
def test_baselines_stream_to_the_same_selection(big_pool, scale_kwargs, tmp_path, method):
    kw = {**scale_kwargs, "method": method, "with_scores": True}
    DaaR(**kw).select(big_pool, tmp_path / "mem")
    m = DaaR(**kw, stream=True).select(big_pool, tmp_path / "stream")
    assert "fit" not in m["timings_seconds"]  # no model is fitted or loaded for these
    assert_same(tmp_path / "mem", tmp_path / "stream", tol=0)
    assert (tmp_path / "mem" / "selected.jsonl").read_text() == (tmp_path / "stream" / "selected.jsonl").read_text()


def test_a_failing_shard_on_ray_keeps_the_others_and_the_rerun_finishes(tmp_path, scale_kwargs, ray_cluster):
    pool = write_pool(tmp_path / "pool.jsonl", bad=False)
    lines = pool.read_text().splitlines()
    good = lines[1500]
    lines[1500] = good[:-5]  # shard 3 holds a malformed line
    pool.write_text("\n".join(lines) + "\n")
    # output-length: no model to load, so the actors start fast; the failure path is the same for every method
    kw = {**scale_kwargs, "method": "output-length", "on_bad_record": "error", "backend": "ray", "workers": 2}
    with pytest.raises(DaarError, match=r"pool.jsonl, line 1501: malformed JSON.*rerun the same command"):
        DaaR(**kw).select(pool, tmp_path / "out")
    done = len(list((tmp_path / "out" / "shards").glob("*.done.json")))
    assert done == 4  # every shard but the failed one is committed
    lines[1500] = good
    pool.write_text("\n".join(lines) + "\n")
    m = DaaR(**kw).select(pool, tmp_path / "out")
    assert (m["scale"]["shards_scored"], m["scale"]["shards_reused"]) == (1, 4)
    assert m["counts"] == {"read": 2000, "selected": 200, "not_selected": 1800, "rejected": 0}


def test_cli_streams_and_refuses_an_in_memory_selector_above_the_limit(big_pool, scale_kwargs, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["select", "--data", str(big_pool), "--model", scale_kwargs["model"], "--method", "random",
               "--budget", "10%", "--stream",
               "--shard-size", "500", "--on-bad-record", "skip", "--out", str(out), "-q"])
    printed = capsys.readouterr().out
    assert rc == 0 and "read 2002 = selected 200 + not selected 1800 + rejected 2" in printed
    assert "shards: 5 scored, 0 reused" in printed
    rc = main(["select", "--data", str(big_pool), "--method", "kcenter", "--budget", "10", "--stream",
               "--memory-limit", "1000", "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "--method kcenter needs the whole pool in memory" in err and "Traceback" not in err
