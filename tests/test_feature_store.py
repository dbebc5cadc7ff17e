"""The feature store: reuse without the model, fingerprints, atomic shards, resume after a kill."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from daar.data import Record, Renderer
from daar.errors import ConfigError
from daar.features import FeatureExtractor, FeatureSet, FeatureSpec, FeatureStore
from daar.features.extract import DEFAULT_SHARD_SIZE, default_shard_size
from daar.features.store import text_key
from data_helpers import ALPACA_ROWS


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One thread: tiny models gain nothing from two, and a busy machine makes two very slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def records(rows=ALPACA_ROWS, prefix: str = "r") -> list[Record]:
    return [Record(id=f"{prefix}{i}", index=i, line=i + 1, instruction=r["instruction"], input=r["input"],
                   output=r["output"], messages=(), raw=r) for i, r in enumerate(rows)]


SPEC = FeatureSpec(model="m@1", layer="3", pooling="mean", renderer="abc", max_length=1024, dtype="float32")


def shard_files(fs: FeatureSet) -> list:
    return sorted(fs.dir.glob("shard-*.npy"))


# -- reuse --------------------------------------------------------------------------------------------


def test_second_call_is_served_from_the_store_without_the_model(tiny_llama):
    recs = records()
    first = FeatureExtractor(tiny_llama, layer=2, dtype="float32", show_progress=False)
    a = first(recs)
    assert first.stats.n_computed == len(recs) and first.stats.n_cached == 0 and first._loaded is not None
    second = FeatureExtractor(tiny_llama, layer=2, dtype="float32", show_progress=False)
    b = second(recs)
    assert second._loaded is None  # the model was never loaded
    assert second.stats.n_computed == 0 and second.stats.n_cached == len(recs)
    np.testing.assert_array_equal(a, b)
    # rows are keyed by the embedded text, so other ids for the same texts and a subset are reused too
    third = FeatureExtractor(tiny_llama, layer=2, dtype="float32", show_progress=False)
    np.testing.assert_array_equal(third(records(prefix="other")[2:4]), a[2:4])
    assert third._loaded is None


def test_only_new_records_are_computed(tiny_llama):
    recs = records()
    FeatureExtractor(tiny_llama, layer=1, dtype="float32", show_progress=False)(recs[:4])
    ext = FeatureExtractor(tiny_llama, layer=1, dtype="float32", show_progress=False)
    ext(recs)
    assert (ext.stats.n_cached, ext.stats.n_computed) == (4, len(recs) - 4)


def test_fingerprint_changes_with_every_setting(tiny_llama, tiny_qwen2):
    base = dict(model=tiny_llama, layer=3, pooling="mean", max_length=None, dtype="float32")
    variants = [{}, {"layer": 2}, {"layer": "embedding"}, {"pooling": "last"}, {"pooling": "mean-padded"},
                {"max_length": 256}, {"dtype": "bfloat16"}, {"model": tiny_qwen2},
                {"renderer": Renderer.named("reference-score")}, {"renderer": Renderer("{instruction}\n{output}")}]
    prints = [FeatureExtractor(**{**base, **v}, show_progress=False).spec.fingerprint for v in variants]
    assert len(set(prints)) == len(variants)
    again = FeatureExtractor(**base, show_progress=False)
    assert again.spec.fingerprint == prints[0]
    assert FeatureExtractor(**base, batch_size=3, show_progress=False).spec.fingerprint == prints[0]  # not a setting of the result
    assert (again.features.dir / "spec.json").exists()
    assert json.loads((again.features.dir / "spec.json").read_text())["layer"] == "3"


# -- store internals ----------------------------------------------------------------------------------


def test_store_roundtrip_and_memory_mapping(tmp_path):
    fs = FeatureStore(tmp_path).open(SPEC)
    feats = np.arange(12, dtype=np.float32).reshape(4, 3)
    fs.add(["a", "b", "c", "d"], feats, ids=["1", "2", "3", "4"])
    fs.add(["e"], np.ones((1, 3), np.float32))
    again = FeatureStore(tmp_path).open(SPEC)
    assert len(again) == 5 and again.missing(["a", "x", "e", "y"]) == [1, 3]
    np.testing.assert_array_equal(again.get(["d", "a", "e"]), np.stack([feats[3], feats[0], np.ones(3)]))
    assert all(isinstance(arr, np.memmap) for arr in again._arrays.values())
    payload = json.loads(shard_files(again)[0].with_suffix(".keys.json").read_text())
    assert payload["ids"] == ["1", "2", "3", "4"]
    with pytest.raises(KeyError, match="1 of 2 rows"):
        again.get(["a", "nope"])
    with pytest.raises(ValueError, match="one row per key"):
        again.add(["z"], np.ones((2, 3), np.float32))


def test_half_written_shards_are_ignored(tmp_path):
    fs = FeatureStore(tmp_path).open(SPEC)
    good = fs.add(["a", "b"], np.ones((2, 4), np.float32))
    d = fs.dir
    keys = lambda ks: json.dumps({"keys": ks, "ids": None})  # noqa: E731
    # 1. keys file written, array never renamed into place (killed between the two commits)
    (d / "shard-000001-aaaaaaaa.keys.json").write_text(keys(["c", "d"]))
    (d / ".shard-000001-aaaaaaaa.npy.0123.tmp").write_bytes(b"\x93NUMPY partial")
    # 2. an array truncated in its data, 3. truncated in its header, 4. empty
    full = good.read_bytes()
    for name, blob, ks in [("shard-000002-bbbbbbbb", full[:-5], ["e", "f"]), ("shard-000003-cccccccc", full[:20], ["g", "h"]),
                           ("shard-000004-dddddddd", b"", ["i", "j"])]:
        (d / f"{name}.keys.json").write_text(keys(ks))
        (d / f"{name}.npy").write_bytes(blob)
    # 5. a complete array whose keys disagree in count, 6. an array without keys, 7. a torn keys file
    np.save(d / "shard-000005-eeeeeeee.npy", np.ones((3, 4), np.float32))
    (d / "shard-000005-eeeeeeee.keys.json").write_text(keys(["k"]))
    np.save(d / "shard-000006-ffffffff.npy", np.ones((1, 4), np.float32))
    np.save(d / "shard-000007-gggggggg.npy", np.ones((1, 4), np.float32))
    (d / "shard-000007-gggggggg.keys.json").write_text(keys(["m"])[:10])

    reopened = FeatureStore(tmp_path).open(SPEC)
    assert len(reopened) == 2 and "a" in reopened and "b" in reopened
    assert reopened.missing(list("abcdefghijkm")) == list(range(2, 12))
    # a later writer adds next to the debris and its rows are found
    reopened.add(["c"], np.zeros((1, 4), np.float32))
    assert len(FeatureStore(tmp_path).open(SPEC)) == 3


def test_truncated_shard_is_recomputed(tiny_llama):
    recs = records()
    kw = dict(model=tiny_llama, layer=2, dtype="float32", show_progress=False, shard_size=2)
    first = FeatureExtractor(**kw)
    want = first(recs)
    shards = shard_files(first.features)
    assert len(shards) == 3
    damaged = shards[1]
    damaged.write_bytes(damaged.read_bytes()[:-7])
    ext = FeatureExtractor(**kw)
    got = ext(recs)
    assert (ext.stats.n_cached, ext.stats.n_computed) == (len(recs) - 2, 2)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_shard_size_from_the_environment(tiny_llama, monkeypatch):
    monkeypatch.delenv("DAAR_SHARD_SIZE", raising=False)
    assert default_shard_size() == DEFAULT_SHARD_SIZE
    monkeypatch.setenv("DAAR_SHARD_SIZE", "2")
    ext = FeatureExtractor(tiny_llama, layer=1, dtype="float32", show_progress=False)
    assert ext.shard_size == 2
    ext(records()[:5])
    assert len(shard_files(ext.features)) == 3
    assert FeatureExtractor(tiny_llama, layer=1, shard_size=7, show_progress=False).shard_size == 7  # explicit wins
    monkeypatch.setenv("DAAR_SHARD_SIZE", "zero")
    with pytest.raises(ConfigError, match=r"DAAR_SHARD_SIZE='zero' must be an integer >= 1.*unset"):
        default_shard_size()


def test_text_key_is_the_exact_text():
    assert text_key("a b") == text_key("a b") != text_key("a  b")
    assert len(text_key("x")) == 40
