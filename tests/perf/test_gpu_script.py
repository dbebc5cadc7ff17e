"""The GPU features benchmark's tiny CPU mode runs end to end (both models) and writes its figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import gpu_features  # noqa: E402


def test_dry_run(tiny_llama, tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert gpu_features.main(["--dry-run", "--model", tiny_llama, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    names = [r["name"] for r in data["results"]]
    assert len(names) == 2 and "7B-class" in names[1]
    assert all(r["records"] > 0 and r["tokens_per_s"] > 0 and r["fraction_of_peak"] > 0 for r in data["results"])
    assert "% of the" in capsys.readouterr().out
