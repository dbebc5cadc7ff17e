"""A streamed run leaves the in-memory run's artifacts: report.html (drawn from what the shards know)
and domains/ (from the fitted model, the same writer), every file listed in the manifest, stale ones
removed on a rerun, and counts that add up everywhere they appear."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from tests.scale.conftest import write_pool

import daar.scale.run as scale_run
from daar.cli import main
from daar.report.html import HIST_BINS
from daar.runs.select import DaaR

DOMAINS = ("common_sense", "reasoning", "mathematics", "coding")


@pytest.fixture
def captured(monkeypatch) -> list:
    """The ReportData each streamed run hands to the page (the page itself is PNGs, hard to read back)."""
    seen: list = []
    real = scale_run.render_report

    def spy(data, manifest, extra_sections=None):
        seen.append(data)
        return real(data, manifest, extra_sections)

    monkeypatch.setattr(scale_run, "render_report", spy)
    return seen


def _cells(html: str, header: str) -> list[list[str]]:
    """The body rows of the first table after the <h2>header</h2>."""
    table = html.split(f"<h2>{header}</h2>", 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("<tr>")[2:]]


def test_streamed_daar_writes_report_and_domains_with_the_right_counts(big_pool, scale_kwargs, tmp_path, captured):
    out = tmp_path / "stream"
    m = DaaR(**scale_kwargs, stream=True).select(big_pool, out)
    c = m["counts"]
    assert c == {"read": 2002, "selected": 200, "not_selected": 1800, "rejected": 2}
    assert c["read"] == c["selected"] + c["not_selected"] + c["rejected"]
    # every file the run wrote is listed (and exists), the in-memory run's set plus nothing else
    listed = json.loads((out / "manifest.json").read_text())["files"]
    assert listed == sorted(["manifest.json", "report.html", "scores.parquet", "selected.jsonl", "rejects.jsonl",
                             "domains/summary.json", *(f"domains/{d}.jsonl" for d in DOMAINS)])
    assert all((out / f).is_file() for f in listed) and m["report"] == str(out / "report.html")

    # domains/: one line per sample of the fitted model, phase 1 first
    summary = {s["domain"]: s for s in json.loads((out / "domains" / "summary.json").read_text())}
    for d in DOMAINS:
        rows = [json.loads(line) for line in (out / "domains" / f"{d}.jsonl").read_text().splitlines()]
        assert len(rows) == summary[d]["seeds"] + summary[d]["augmented"] > 0
        assert [r["phase"] for r in rows] == sorted(r["phase"] for r in rows)

    # report.html: counts, the pseudo-domain table (pool and selection add up), DaaR's sections, the shards
    html = (out / "report.html").read_text()
    assert "method <b>daar</b>" in html and "data:image/png;base64" in html
    assert _cells(html, "Counts") == [["2002", "200", "1800", "2"]]
    table = _cells(html, "Pseudo-domains")
    assert [r[0] for r in table] == list(DOMAINS)
    assert sum(int(r[1]) for r in table) == 2000 and sum(int(r[2]) for r in table) == 200
    for part in ("validation accuracy", "Synthesized domain samples", "Stages", "Shards", "PCA of the pool"):
        assert part in html, part

    # what the page was given agrees with scores.parquet, record for record
    (data,) = captured
    scores = pd.read_parquet(out / "scores.parquet")
    kept = scores[~scores["rejected"]]
    pool_counts = kept["pseudo_domain"].value_counts().reindex(DOMAINS, fill_value=0).to_numpy()
    sel_counts = kept.loc[kept["selected"], "pseudo_domain"].value_counts().reindex(DOMAINS, fill_value=0).to_numpy()
    assert data.pool_domains.tolist() == pool_counts.tolist() == [int(r[1]) for r in table]
    assert data.selected_domains.tolist() == sel_counts.tolist() == [int(r[2]) for r in table]
    counts, edges = data.histogram
    want_counts, want_edges = np.histogram(kept["score"].to_numpy(), bins=HIST_BINS)
    assert counts.sum() == 2000 and counts.tolist() == want_counts.tolist()
    assert np.allclose(edges, want_edges, rtol=0, atol=1e-12)
    assert data.cutoff == kept.loc[kept["selected"], "score"].min()

    # the same domains/ as an in-memory run on the same pool (same probe set, same stages)
    DaaR(**scale_kwargs).select(big_pool, tmp_path / "mem")
    mem = sorted(p.name for p in (tmp_path / "mem" / "domains").iterdir())
    assert mem == sorted(p.name for p in (out / "domains").iterdir())
    for name in mem:
        assert (tmp_path / "mem" / "domains" / name).read_bytes() == (out / "domains" / name).read_bytes(), name


def test_a_streamed_rerun_removes_stale_artifacts_and_the_cli_reports(big_pool, scale_kwargs, tmp_path, capsys):
    out = tmp_path / "out"
    DaaR(**scale_kwargs, stream=True).select(big_pool, out)
    assert (out / "domains").is_dir() and (out / "rejects.jsonl").is_file()
    # a baseline on a clean pool into the same folder: no domains/, no rejects, its own report
    clean = write_pool(tmp_path / "clean.jsonl", bad=False)
    rc = main(["select", "--data", str(clean), "--model", scale_kwargs["model"], "--method", "output-length",
               "--budget", "10%", "--stream", "--shard-size", "300", "--out", str(out), "-q"])
    printed = capsys.readouterr().out
    assert rc == 0 and f"report: {out / 'report.html'}" in printed
    assert "read 2000 = selected 200 + not selected 1800 + rejected 0" in printed
    m = json.loads((out / "manifest.json").read_text())
    assert m["files"] == ["manifest.json", "report.html", "scores.parquet", "selected.jsonl"]
    assert not (out / "domains").exists() and not (out / "rejects.jsonl").exists()
    html = (out / "report.html").read_text()
    assert "method <b>output-length</b>" in html and "Pseudo-domains" not in html and "PCA of the pool" not in html
    assert _cells(html, "Counts") == [["2000", "200", "1800", "0"]]
    assert _cells(html, "Shards")[0][3:6] == ["7", "7", "0"]  # 2000 rows / 300 per shard: shards, scored, reused


def test_report_data_of_hand_made_shards_matches_numpy(tmp_path):
    """Score shards with mixed pseudo-domains and NaN scores (the tiny model's domains collapse to one):
    the selection's domain counts, its cut-off and the streamed histogram equal the whole-pool answers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from daar.io import atomic_write
    from daar.report.html import score_histogram
    from daar.runs.outputs import RunFiles
    from daar.scale.outputs import stream_histogram, write_selected
    from daar.scale.resume import ShardDir
    from daar.scale.shards import plan_shards

    rows = [{"id": f"r{i}", "instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(53)]
    pool = tmp_path / "pool.jsonl"
    atomic_write(pool, "".join(json.dumps(r) + "\n" for r in rows))
    plan = plan_shards(pool, shard_size=12)
    assert len(plan.shards) == 5
    rng = np.random.default_rng(0)
    entropy, domain = rng.normal(1.0, 0.3, 53), rng.integers(0, 4, 53)
    entropy[[3, 20, 41]] = np.nan
    sdir = ShardDir(tmp_path / "shards", "test")
    for spec in plan.shards:
        idx = np.arange(spec.first_index, spec.first_index + spec.n_rows)
        table = pa.table({"index": idx, "entropy": entropy[idx], "domain": domain[idx].astype(np.int16)})
        atomic_write(sdir.scores(spec), lambda fh, t=table: pq.write_table(t, fh), binary=True)
    selected = np.sort(rng.choice(53, 17, replace=False))
    files = RunFiles(tmp_path / "out")
    picked = write_selected(files, plan, sdir, selected, "daar", "entropy", list(DOMAINS), with_scores=True)
    assert picked.domain_counts.tolist() == np.bincount(domain[selected], minlength=4).tolist()
    assert picked.cutoff == np.nanmin(entropy[selected])
    out = [json.loads(line) for line in (tmp_path / "out" / "selected.jsonl").read_text().splitlines()]
    assert [r["id"] for r in out] == [f"r{i}" for i in selected] and files.written == ["selected.jsonl"]
    assert [r["daar_domain"] for r in out] == [DOMAINS[d] for d in domain[selected]]
    counts, edges = stream_histogram(sdir, plan.shards, "entropy")
    want_counts, want_edges = score_histogram(entropy)
    assert counts.sum() == 50 and counts.tolist() == want_counts.tolist() and np.array_equal(edges, want_edges)
