"""Naming by the model's reading of the clusters (issue 10): the combined evidence on fixed matrices
with golden names, the reader's scores against a plain full-sequence forward on the tiny model,
and when pseudo_label asks for a reading and what it records."""

from __future__ import annotations

import numpy as np
import pytest

from daar.method.label_reader import CUE, LabelReader, cluster_label_scores, label_text, typical_members
from daar.method.naming import NAMINGS, margins, match, naming_evidence, pseudo_label

NAMES = ["a", "b", "c"]


def test_both_corrects_a_swap_each_view_makes_alone():
    """The centroids swap a/b (their cosines barely prefer the swap), the reading swaps b/c the same
    way; added on a common scale the strong entries of each view win and all three names are right."""
    cosine = np.array([[0.30, 0.32, -0.6],   # cluster 0 is a: the centroids barely say b
                       [0.34, 0.31, -0.6],   # cluster 1 is b: the centroids barely say a
                       [-0.6, -0.6, 0.90]])  # cluster 2 is c: clear
    reading = np.array([[2.0, -2.0, -1.0],   # clear a
                        [-2.0, 0.50, 0.55],  # b, read barely as c
                        [-1.0, 0.52, 0.50]]) # c, read barely as b
    assert match(cosine).tolist() == [1, 0, 2]
    assert match(reading).tolist() == [0, 2, 1]
    both, metric = naming_evidence(cosine, reading, "both")
    assert match(both).tolist() == [0, 1, 2] and "z(" in metric
    assert np.all(margins(both, match(both)) > 0)
    assert naming_evidence(cosine, reading, "centroids")[0] is cosine
    assert np.array_equal(naming_evidence(cosine, reading, "model")[0], reading)
    assert naming_evidence(cosine, None, "both")[0] is cosine  # nothing read: the centroids alone
    with pytest.raises(ValueError, match="unknown naming"):
        naming_evidence(cosine, reading, "vote")
    assert set(NAMINGS) == {"both", "centroids", "model"}


def test_margins_hold_in_any_units():
    """The margin of a naming on a z-scored sum (entries beyond +-1) is the gap to the best other
    naming, not distorted by the forbidden-entry constant."""
    sim = np.array([[6.0, -3.0], [-3.0, 5.0]])
    assert margins(sim, np.array([0, 1])).tolist() == [17.0, 17.0]


def test_typical_members_are_the_nearest_to_each_centre():
    x = np.array([[0.0], [0.1], [5.0], [9.0], [10.0], [10.2]])
    clusters = np.array([0, 0, 0, 1, 1, 1])
    centres = np.array([[0.0], [10.0]])
    got = typical_members(x, clusters, centres, 2)
    assert got[0].tolist() == [0, 1] and got[1].tolist() == [4, 5]


class _FixedReader:
    """Scores by a lookup: text -> row, so the centring and averaging are checked exactly."""

    fingerprint = "fixed"

    def __init__(self, table):
        self.table = table

    def scores(self, texts, names):
        return np.array([self.table[t] for t in texts], dtype=float)


def test_cluster_scores_centre_each_name_over_all_texts():
    reader = _FixedReader({"x1": [3.0, 0.0], "x2": [1.0, 0.0], "y1": [0.0, 2.0]})
    got = cluster_label_scores(reader, [["x1", "x2"], ["y1"], []], ["a", "b"])
    # column means over the three texts: a 4/3, b 2/3
    assert np.allclose(got, [[2 - 4 / 3, -2 / 3], [-4 / 3, 2 - 2 / 3], [0.0, 0.0]])


def test_reader_matches_a_plain_forward_and_is_deterministic(tiny_llama):
    """The cached-prefix scoring equals scoring the whole sequence in one forward pass."""
    import torch

    from daar.models.loading import load_model

    reader = LabelReader(tiny_llama)
    texts = ["What is 2 + 2?\n4", "def f(x):\n    return x"]
    names = ["mathematics", "coding", "common_sense"]
    got = reader.scores(texts, names)
    again = LabelReader(tiny_llama).scores(texts, names)
    assert got.shape == (2, 3) and np.array_equal(got, again) and np.all(got < 0)
    lm = load_model(tiny_llama, causal_lm=True, dtype="float32")
    tok = lm.tokenizer
    for i, text in enumerate(texts):
        ids = tok(text, add_special_tokens=False)["input_ids"][:256] + tok(CUE, add_special_tokens=False)["input_ids"]
        for j, name in enumerate(names):
            ans = tok(label_text(name), add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = lm.model(torch.tensor([ids + ans])).logits[0].float()
            lp = torch.log_softmax(logits[len(ids) - 1:-1], -1)
            want = float(lp[torch.arange(len(ans)), torch.tensor(ans)].mean())
            assert got[i, j] == pytest.approx(want, abs=1e-4)


def test_pseudo_label_asks_the_reader_only_when_it_names():
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 8.0], [-7.0, -4.0], [7.0, -4.0]])
    x = np.concatenate([m + rng.normal(0, 1, (20, 2)) for m in means])
    calls = []
    truth = np.repeat(np.arange(3), 20)

    def read(clusters, centres, xa):  # a reading that knows each cluster's true domain
        calls.append(len(centres))
        out = np.zeros((3, 3))
        for c in range(3):
            out[c, np.bincount(truth[clusters == c], minlength=3).argmax()] = 3.0
        return out

    labels, _, naming = pseudo_label(x, means + [0.0, 40.0], np.ones(2), NAMES, "none", "kmeans", seed=0,
                                     naming_how="both", read=read)
    assert calls == [3] and naming["naming"] == "both" and "reading" in naming and "cosine" in naming
    assert np.array_equal(labels, truth)
    pseudo_label(x, means, np.ones(2), NAMES, "none", "kmeans", seed=0, naming_how="centroids", read=read)
    pseudo_label(x, means, np.ones(2), NAMES, "none", "kmeans-init-order", seed=0, naming_how="both", read=read)
    assert calls == [3]  # neither the centroid naming nor a fixed naming reads
