"""The model reads each probe cluster and says which domain it is (issue 10, naming by the model).

The centroid naming (daar.method.naming) compares where the synthesized samples sit with where the
clusters sit. With a small generator two domains' samples can look alike (the bundled model writes
"reasoning" questions that read like common-sense ones), and then the names of those two clusters
swap while the clusters themselves are right. A second, independent view: show the model real
texts of a cluster, followed by a fixed question, and measure how likely it finds each domain's
name as the answer.

Per cluster the `texts` probe records nearest its centre are read (the most typical ones). For a
text t and a domain d the score is the mean log-probability of the name's tokens after
"<t>\\n\\nQuestion: Which kind of task is the text above?\\nAnswer: It is a". Each name's scores are
centred over all the texts read (a name the model likes after any text gains nothing), and the
cluster's row is the mean over its texts: `[clusters, domains]`, higher = more likely that name.

Measured (README "Naming by the model"): offline on 9 finished runs (W-4k and a 40/30/20/10 mix,
3 seeds each, two synthesis batch sizes) the centroid naming named all four domains right in 3 of 9,
a reading of the pool records psi_dom was surest of in 5 of 9 (mathematics / coding swapped on the
mix), the two added in 9 of 9: their errors fall on different pairs. As built here (the probe texts
nearest each centre, read before the heads exist), on those runs and on W-4k at batch 16 (12 runs),
the sum named all four right in 9 of 12 against the centroids' 4 of 12; two of its three wrong
namings had margins (0.02, 0.08) below the default --min-naming-margin 0.1, so balanced / customized
refuse them, the third 0.72 (the centroids' wrong names on the
batch-32 and mix runs: 0.14-0.54, none refused). So the default naming adds both (`--naming both`).

CPU cost: one forward of the full model per text read (<= 256 text tokens) plus one short forward
per domain name on the cached prefix; for 4 domains x 8 texts, seconds on 2 cores.
"""

from __future__ import annotations

import copy
from functools import cached_property
from typing import Any

import numpy as np

READER_VERSION = "v1"  # change with the cue's wording or the scoring: it is part of the pseudo-labels' key
CUE = "\n\nQuestion: Which kind of task is the text above?\nAnswer: It is a"


def label_text(name: str) -> str:
    """The answer scored for a domain: its name as words, after a space ("common_sense" -> " common sense")."""
    return " " + name.replace("_", " ")


class LabelReader:
    """A causal LM that scores domain names after texts; named by its identity, loaded on first use."""

    def __init__(self, model: str | None, dtype: str = "float32", device: str | None = None,
                 max_text_tokens: int = 256):
        from daar.models.loading import model_identity

        self.model_spec, self.dtype, self.device, self.max_text_tokens = model, dtype, device, max_text_tokens
        # float32 by default: the scores decide names, and bf16 rounding differs between CPUs
        self.fingerprint = f"{model_identity(model)}|{dtype}|{max_text_tokens}|{READER_VERSION}"

    @cached_property
    def _loaded(self) -> Any:
        from daar.models.loading import load_model

        return load_model(self.model_spec, causal_lm=True, dtype=self.dtype, device=self.device)

    @staticmethod
    def _cache_arg(model: Any) -> str:
        """transformers renamed the forward's `past_key_values` to `cache` (5.2x); take the one it has."""
        import inspect

        return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def scores(self, texts: list[str], names: list[str]) -> np.ndarray:
        """[len(texts), len(names)]: mean log-probability of each name's tokens after text + CUE."""
        import torch

        lm = self._loaded
        tok, model = lm.tokenizer, lm.model
        cue = tok(CUE, add_special_tokens=False)["input_ids"]
        answers = [tok(label_text(n), add_special_tokens=False)["input_ids"] for n in names]
        cache_arg = self._cache_arg(model)
        out = np.zeros((len(texts), len(names)))
        with torch.no_grad():
            for i, text in enumerate(texts):
                ids = tok(text, add_special_tokens=False)["input_ids"][: self.max_text_tokens] + cue
                prefix = model(torch.tensor([ids], device=lm.device), use_cache=True)
                cache = prefix.cache if hasattr(prefix, "cache") else prefix.past_key_values
                first = torch.log_softmax(prefix.logits[0, -1].float(), -1)
                for j, ans in enumerate(answers):
                    lp = [float(first[ans[0]])]
                    if len(ans) > 1:  # the rest of the name on a copy of the prefix's cache
                        rest = model(torch.tensor([ans[:-1]], device=lm.device), use_cache=True,
                                     **{cache_arg: copy.deepcopy(cache)})
                        step = torch.log_softmax(rest.logits[0].float(), -1)
                        lp += [float(step[k, t]) for k, t in enumerate(ans[1:])]
                    out[i, j] = float(np.mean(lp))
        return out


def cluster_label_scores(reader: LabelReader, texts_of_cluster: list[list[str]], names: list[str]) -> np.ndarray:
    """[clusters, domains]: each cluster's mean name score, every name centred over all texts read.

    A cluster with no text gets a row of zeros (no evidence either way)."""
    rows = [reader.scores(texts, names) if texts else np.zeros((0, len(names))) for texts in texts_of_cluster]
    read = [r for r in rows if len(r)]
    if not read:
        return np.zeros((len(texts_of_cluster), len(names)))
    centre = np.concatenate(read).mean(0)
    return np.stack([(r - centre).mean(0) if len(r) else np.zeros(len(names)) for r in rows])


def typical_members(x: np.ndarray, clusters: np.ndarray, centres: np.ndarray, n: int) -> list[np.ndarray]:
    """Per cluster the indices of its (at most) n members nearest its centre, nearest first."""
    out = []
    for j, c in enumerate(centres):
        members = np.flatnonzero(clusters == j)
        dist = ((x[members] - c) ** 2).sum(1)
        out.append(members[np.argsort(dist, kind="stable")[:n]])
    return out
