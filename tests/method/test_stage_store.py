"""The stage mechanism: fingerprints from declared inputs, artifacts that carry their fingerprint,
and a store that never trusts a torn, foreign or mismatched file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from daar.method.stage import Artifact, Stage, StageReached, StageRunner, StageStore

COMPUTED: list[str] = []  # every compute() of Double appends its fingerprint


@pytest.fixture(autouse=True)
def _reset():
    COMPUTED.clear()


@dataclass(frozen=True, eq=False)
class Double(Stage):
    name = "double"
    values: tuple[float, ...]

    def compute(self, runner):
        COMPUTED.append(self.fingerprint)
        return Artifact({"x": np.array(self.values) * 2}, {"n": len(self.values)})


@dataclass(frozen=True, eq=False)
class PlusOne(Stage):
    name = "plus-one"
    upstream: Double

    def compute(self, runner):
        return Artifact({"x": runner.run(self.upstream).arrays["x"] + 1})


def test_fingerprint_follows_every_declared_input_and_the_upstream():
    a, b = Double((1.0, 2.0)), Double((1.0, 3.0))
    assert a.fingerprint == Double((1.0, 2.0)).fingerprint
    assert a.fingerprint != b.fingerprint
    assert PlusOne(a).fingerprint != PlusOne(b).fingerprint  # an upstream change reaches downstream


def test_stored_artifact_is_reused_and_carries_its_fingerprint(tmp_path):
    store = StageStore(tmp_path)
    stage = Double((1.0, 2.0))
    first = StageRunner(store).run(stage)
    runner = StageRunner(store)
    again = runner.run(Double((1.0, 2.0)))
    assert len(COMPUTED) == 1 and runner.records[0].skipped
    assert np.array_equal(first.arrays["x"], again.arrays["x"]) and again.meta == {"n": 2}
    with np.load(store.path(stage)) as z:
        assert stage.fingerprint in bytes(z["__meta__"]).decode()


def test_foreign_artifact_in_place_is_recomputed_not_trusted(tmp_path):
    """A 'torn pair': the file at this stage's path holds another run's output."""
    store = StageStore(tmp_path)
    mine, other = Double((1.0, 2.0)), Double((5.0, 6.0))
    StageRunner(store).run(other)
    store.path(mine).parent.mkdir(parents=True, exist_ok=True)
    store.path(mine).write_bytes(store.path(other).read_bytes())
    out = StageRunner(store).run(mine)
    assert out.arrays["x"].tolist() == [2.0, 4.0] and len(COMPUTED) == 2


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 truncated zip", b"not an npz at all"])
def test_half_written_artifact_is_recomputed(tmp_path, damage):
    store = StageStore(tmp_path)
    stage = Double((1.0,))
    StageRunner(store).run(stage)
    store.path(stage).write_bytes(damage)
    assert StageRunner(store).run(stage).arrays["x"].tolist() == [2.0]
    assert len(COMPUTED) == 2


def test_until_stops_after_the_named_stage_with_its_artifact_stored(tmp_path):
    store = StageStore(tmp_path)
    a = Double((1.0,))
    with pytest.raises(StageReached):
        StageRunner(store, until="double").run(PlusOne(a))
    assert store.path(a).exists() and not store.path(PlusOne(a)).exists()


def test_no_temporary_file_is_left_behind(tmp_path):
    store = StageStore(tmp_path)
    StageRunner(store).run(Double((1.0,)))
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
