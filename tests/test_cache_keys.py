"""Keys that name stored data keep their values across refactors, so existing caches stay valid.

Every value below was computed with the code before daar.io existed (its private sha1 helpers).
A changed value means every user's feature store, judge cache, record ids or evaluation
summaries silently go stale: change one only on purpose, with a note in the changelog.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from daar.data import Renderer
from daar.data.records import content_id
from daar.evaluate import runner
from daar.features.store import FeatureSpec, text_key
from daar.io import chunks_hash, json_hash, text_hash
from daar.models.loading import model_identity
from daar.selectors.judge_cache import input_hash


def test_feature_store_keys():
    spec = FeatureSpec(model="smollm2-135m-instruct@0123456789ab", layer="3", pooling="mean",
                       renderer=Renderer().fingerprint, max_length=1024, dtype="float32")
    assert Renderer().fingerprint == "1dd58fd89b6b"
    assert spec.fingerprint == "9f20dd953af98a35"  # the store folder's name
    assert text_key("héllo") == "35b5ea45c5e41f78b46a937cc74d41dfea920890"


def test_record_and_judge_keys():
    assert content_id({"instruction": "héllo", "output": "x", "n": [1, 2]}) == "4f88fcef40825e50"
    assert input_hash("héllo") == "35b5ea45c5e41f78"


def test_model_identity_and_evaluation_keys(tmp_path):
    model = tmp_path / "m"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text('{"a": 1}')
    (model / "model.safetensors").write_text("xx")
    (model / "sub" / "z.txt").write_text("y")
    assert model_identity(str(model)) == "m@39d2981ba145"
    assert runner._hash_dir(model, contents=True) == "02bd3459e830360b"
    assert runner._hash_dir(model, contents=False) == "2821cc6cd3cdfe28"
    assert runner._fingerprint({"model": "x", "é": [1, (2, 3)], "p": Path("/a")}) == "b3740172d2a32afd"


def test_io_hashes_are_plain_sha1():
    assert text_hash("abc") == hashlib.sha1(b"abc").hexdigest()
    assert chunks_hash(["a", b"b", "c"], length=40) == hashlib.sha1(b"abc").hexdigest()
    assert json_hash({"b": 1, "a": "é"}) == hashlib.sha1(b'{"a": "\\u00e9", "b": 1}').hexdigest()[:16]
    assert json_hash({"a": "é"}, ensure_ascii=False) == hashlib.sha1('{"a": "é"}'.encode()).hexdigest()[:16]
