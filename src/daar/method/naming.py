"""Step 4's two corrections (issue 10): calibrate the synthesized centroids onto the probe
features, then name the probe clusters by an optimal matching, with a confidence per name.

Calibration. Text the model writes differs systematically from real pool text (style, length), so
every synthesized centroid sits off the probe features by a common offset, and k-means started
there converges to the wrong clusters. `shift` moves the centroids so that their mean is the probe
features' mean (centroids - mean(centroids) + mean(probe)); `standardize` also matches the scale:
the probe features are z-scored with their own per-dimension mean and std, the centroids with the
mean of the centroids and the std of all synthesized samples, and the assignment runs in that
space. `none` is the paper's recipe.

`shift` assumes the domains are equally common in the probe set: the probe mean is the mixture
mean, sum_k w_k mu_k, and equals the centroids' plain mean only when every w_k = 1/K. On a
40/30/20/10 mix that error moves every centroid towards the common domains by
sum_k (w_k - 1/K) mu_k. `shift-mixture` estimates the weights with the centroids: shift so that
sum_k w_k c_k is the probe mean, take w_k = the share of probe rows nearest c_k, repeat to a fixed
point (a few rounds). The naming's cosines then measure both sets about the probe mean (the
weighted centroid mean), not about the centroids' plain mean.

Assignment (`kmeans`). Which local optimum k-means stops in depends on where the synthesized
centroids happen to start it, so seeds with slightly different samples split the probe set
differently; `choose_optimum` picks, among the probe features' own k-means optima no worse than
the centroid-started one, the one the centroids fit best, so that nearby centroids agree.

Naming. k-means clusters drift away from their initial centroid, so "cluster i is domain i" (the
paper) can swap names even when the clusters are right. Each final cluster is named by the
one-to-one matching (Hungarian) that maximises the summed similarity between final cluster centres
and calibrated centroids. The similarity is a cosine: of a cluster centre about the probe mean, and
of a centroid about the mean of the centroids. What tells a cluster's domain is the direction in
which it leaves the bulk of its own set; its distance from the bulk is what the drift and a scale
mismatch between synthesized and real text change (a Euclidean cost mostly matches norms), and
centring each set on its own mean makes the naming blind to the offset even with calibration
`none` (on W-4k with the weak 1/1/4/1-sample set and calibration none: 59.8 % named, against
37.4 % for the cosine of both about the probe mean and 3.4 % by initialisation order). With
`nearest` the assignment is the naming (the identity); `kmeans-init-order` keeps the paper's
identity naming; both still get margins.

Margin of a name (summed cosine, at most 2K): the summed similarity of the chosen naming minus
that of the best naming that gives this cluster another domain. 0 means an equally good naming
swaps it; a negative margin (possible for a fixed identity naming) means a better naming exists.
On W-4k, right namings had margins 0.36-2.5, a naming that swapped two domains 0.04 (the
selection's --min-naming-margin defaults to 0.1). A margin says the clusters fit these centroids
unambiguously, not that the centroids are right: off-domain synthesized samples can give
confident wrong names.

Separation of two domains: the distance between their calibrated centroids divided by the probe
features' standard deviation along the line joining them (a 1-D signal-to-noise ratio, like
Fisher's d'). Below CLOSE_SEPARATION the probe's points cannot be split between the two centroids
in a meaningful way, and a warning names both domains. On W-4k (layer 3) the closest pair of true
per-source means (common sense / reasoning) is 1.6 apart, the synthesized and hand-written
centroids 2.4-6.2: 0.5 flags near-duplicates, not merely hard pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CALIBRATIONS = ("none", "shift", "shift-mixture", "standardize")
NAMINGS = ("both", "centroids", "model")
ASSIGNMENTS = ("kmeans", "gmm", "nearest", "kmeans-init-order")
MATCHED = ("kmeans", "gmm")  # assignments whose clusters are named by the matching (and the model's reading)
CLOSE_SEPARATION = 0.5  # probe standard deviations along the line joining two centroids


def _safe_std(sd: np.ndarray) -> np.ndarray:
    """Per-dimension std floored at 1 % of the median one, so a constant dimension cannot explode."""
    return np.maximum(sd, 1e-2 * float(np.median(sd)) + 1e-12)


def _nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (Euclidean) of every row of x."""
    d = (x * x).sum(1)[:, None] - 2 * x @ centroids.T + (centroids * centroids).sum(1)[None]
    return d.argmin(1)


def mixture_shift(x: np.ndarray, centroids: np.ndarray, rounds: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(shifted centroids, mixture weights): sum_k w_k c_k = mean(x), w = the nearest-centroid shares."""
    k = len(centroids)
    w = np.full(k, 1.0 / k)
    mean = x.mean(0)
    for _ in range(rounds):
        shifted = centroids - w @ centroids + mean
        new = np.bincount(_nearest(x, shifted), minlength=k) / len(x)
        if np.array_equal(new, w):
            break
        w = new
    return centroids - w @ centroids + mean, w


def centroid_origin(x: np.ndarray, centroids: np.ndarray, how: str) -> np.ndarray:
    """The point of the calibrated centroids' space that stands for the probe set's bulk (the naming's
    origin for the centroids): the probe mean once a shift has put the mixture there, else their mean."""
    return x.mean(0) if how == "shift-mixture" else centroids.mean(0)


def calibrate(x: np.ndarray, centroids: np.ndarray, sample_std: np.ndarray | None,
              how: str) -> tuple[np.ndarray, np.ndarray]:
    """(probe features, centroids) in the space where they are assigned; see the module docstring."""
    if how == "none":
        return x, centroids
    centred = centroids - centroids.mean(0)
    if how == "shift":
        return x, centred + x.mean(0)
    if how == "shift-mixture":
        return x, mixture_shift(x, centroids)[0]
    if how == "standardize":
        if sample_std is None:
            raise ValueError("calibration 'standardize' needs the synthesized samples' std")
        return (x - x.mean(0)) / _safe_std(x.std(0)), centred / _safe_std(np.asarray(sample_std, np.float64))
    raise ValueError(f"unknown calibration {how!r}; choose one of {', '.join(CALIBRATIONS)}")


def _kmeans(x: np.ndarray, k: int, init, seed: int):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, init=init, n_init=1, random_state=seed).fit(x)


def _fit_to_centroids(centres: np.ndarray, x: np.ndarray, centroids: np.ndarray,
                      origin: np.ndarray | None = None) -> float:
    """How well a partition's centres fit the centroids: the summed cosine of the optimal naming
    (centroids about `origin`, default their mean: centroid_origin)."""
    sim = cosine_about(centres, centroids, x.mean(0), centroids.mean(0) if origin is None else origin)
    return float(sim[np.arange(len(sim)), match(sim)].sum())


def choose_optimum(x: np.ndarray, centroids: np.ndarray, start, candidates: int, seed: int,
                   origin: np.ndarray | None = None) -> tuple[Any, dict]:
    """The k-means solution the centroids point to, among the probe features' own local optima.

    Started at the centroids, k-means stops at the local optimum nearest to where the synthesized
    samples happen to put them, so two seeds' centroids a little apart end in different optima
    (measured on W-4k: 90 % of the probe labels equal, and the top-20 % selections then only ~57 %
    alike). The optima themselves are a property of the probe features: `candidates` k-means++ runs
    find the common ones. We keep those no worse (inertia) than the centroid-started one, and choose
    the one whose centres fit the centroids best (the naming's summed cosine), so nearby centroids
    choose the same optimum. 0 candidates: the centroid-started solution, as the method does.
    """
    info = {"candidates": candidates, "start_inertia": float(start.inertia_)}
    best, best_fit = start, _fit_to_centroids(start.cluster_centers_, x, centroids, origin)
    for i in range(candidates):
        km = _kmeans(x, len(centroids), "k-means++", seed * 7919 + i)  # a stream of its own per run seed
        if km.inertia_ > start.inertia_ * (1 + 1e-9):
            continue  # a worse clustering of the probe set than the method's own: never preferred
        fit = _fit_to_centroids(km.cluster_centers_, x, centroids, origin)
        if fit > best_fit + 1e-9:
            best, best_fit = km, fit
    info.update(chosen_inertia=float(best.inertia_), chosen="start" if best is start else "candidate")
    return best, info


def assign(x: np.ndarray, centroids: np.ndarray, assignment: str, seed: int,
           candidates: int = 0, origin: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Cluster index of every probe row (in centroid order), the final cluster centres, and how the
    k-means solution was chosen (`choose_optimum`; only for `kmeans`)."""
    k = len(centroids)
    if assignment == "nearest":
        labels = ((x[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
        origin = x.mean(0)  # an empty group gets the probe mean: no direction, so margin 0
        centres = np.stack([x[labels == j].mean(0) if (labels == j).any() else origin for j in range(k)])
        return labels, centres, {}
    if assignment == "gmm":
        return _gmm(x, centroids, seed)
    if assignment not in ("kmeans", "kmeans-init-order"):
        raise ValueError(f"unknown assignment {assignment!r}; choose one of {', '.join(ASSIGNMENTS)}")
    km = _kmeans(x, k, centroids, seed)
    if assignment == "kmeans-init-order":  # the paper: one run from the centroids, names by position
        return km.labels_, km.cluster_centers_, {}
    km, info = choose_optimum(x, centroids, km, candidates, seed, origin)
    return km.labels_, km.cluster_centers_, info


def _gmm(x: np.ndarray, centroids: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """A spherical Gaussian mixture started at the centroids with the nearest-centroid shares as
    weights: unlike k-means it fits each domain's share and spread, so a common domain is not split
    to even out the cluster sizes.

    Every start parameter comes from the centroids, the spreads too: each component starts with the
    variance of its nearest group about that group's own mean. Given only means and weights,
    scikit-learn takes the starting spreads from a k-means run seeded by `random_state`, and that draw
    alone moved one seed's centroids between optima (W-4k: 77.5-88.1 % matched over 5 draws; four pools x
    three synthesis seeds: 81.5 % matched on average over the draws, 82.5 % with this start; README).
    `seed` is kept for the signature: nothing is drawn.
    """
    from sklearn.mixture import GaussianMixture

    k = len(centroids)
    nearest = _nearest(x, centroids)
    shares = np.bincount(nearest, minlength=k) / len(x)
    shares = (shares + 1e-3) / (shares + 1e-3).sum()  # an empty start keeps a little weight
    every = ((x - x.mean(0)) ** 2).mean()  # a group of fewer than 2 rows gets the probe set's spread
    spread = np.array([((x[nearest == j] - x[nearest == j].mean(0)) ** 2).mean() if (nearest == j).sum() > 1
                       else every for j in range(k)])  # per-dimension variance
    gm = GaussianMixture(k, covariance_type="spherical", means_init=centroids, weights_init=shares,
                         precisions_init=1.0 / np.maximum(spread, 1e-12), init_params="random_from_data",
                         random_state=seed, max_iter=300, reg_covar=1e-6).fit(x)
    return gm.predict(x), gm.means_, {"weights": gm.weights_.round(4).tolist(), "converged": bool(gm.converged_)}


def cosine_about(a: np.ndarray, b: np.ndarray, origin_a: np.ndarray, origin_b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] cosine similarities of a - origin_a and b - origin_b (0 for a zero vector)."""
    a, b = a - origin_a, b - origin_b
    na, nb = np.linalg.norm(a, axis=1, keepdims=True), np.linalg.norm(b, axis=1, keepdims=True)
    return (a / np.where(na > 0, na, 1)) @ (b / np.where(nb > 0, nb, 1)).T


def match(sim: np.ndarray) -> np.ndarray:
    """The domain of each cluster (row) under the one-to-one matching of maximal summed similarity."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(sim, maximize=True)
    out = np.empty(len(sim), dtype=np.int64)
    out[rows] = cols
    return out


def margins(sim: np.ndarray, domain_of: np.ndarray) -> np.ndarray:
    """Per cluster: summed similarity of the naming `domain_of` minus the best naming without that pair."""
    from scipy.optimize import linear_sum_assignment

    k = len(sim)
    if k < 2:
        return np.full(k, 2.0)  # one domain: nothing to confuse it with (2 = the widest cosine gap)
    chosen = float(sim[np.arange(k), domain_of].sum())
    out = np.empty(k)
    for j in range(k):
        forbidden = sim.copy()
        # below any feasible naming's total, whatever the matrix's units
        forbidden[j, domain_of[j]] = float(sim.min()) - k * float(sim.max() - sim.min()) - 1.0
        r, c = linear_sum_assignment(forbidden, maximize=True)
        out[j] = chosen - float(forbidden[r, c].sum())
    return out


def separations(centroids: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[K, K] distance of two centroids over the probe's std along the line joining them."""
    k = len(centroids)
    out = np.full((k, k), np.inf)
    for a in range(k):
        for b in range(a + 1, k):
            diff = centroids[a] - centroids[b]
            dist = float(np.linalg.norm(diff))
            spread = float((x @ (diff / dist)).std()) if dist > 0 else 1.0
            out[a, b] = out[b, a] = dist / max(spread, 1e-12)
    return out


def _z(a: np.ndarray) -> np.ndarray:
    """a on a common scale: minus its mean, over its std (over all entries; a constant matrix gives 0)."""
    sd = float(a.std())
    return (a - a.mean()) / sd if sd > 0 else np.zeros_like(a)


def naming_evidence(cosine: np.ndarray, reading: np.ndarray | None, how: str) -> tuple[np.ndarray, str]:
    """The [cluster, domain] matrix the names are matched on, and what it is (NAMINGS).

    `centroids`: the cosine of cluster centres and calibrated centroids; `model`: the model's reading
    of each cluster (daar.method.label_reader); `both`: the two added, each z-scored over its entries,
    so neither dominates by its units (their errors fall on different domain pairs: README).
    """
    if how == "centroids" or reading is None:
        return cosine, "cosine about each set's mean"
    if how == "model":
        return np.asarray(reading, np.float64), "model's name log-probability, centred per name"
    if how == "both":
        return _z(cosine) + _z(np.asarray(reading, np.float64)), "z(cosine) + z(model's name log-probability)"
    raise ValueError(f"unknown naming {how!r}; choose one of {', '.join(NAMINGS)}")


def name_clusters(x: np.ndarray, centroids: np.ndarray, centres: np.ndarray, names: list[str],
                  matched: bool, reading: np.ndarray | None = None, how: str = "centroids",
                  origin: np.ndarray | None = None) -> dict[str, Any]:
    """The domain of each cluster and how sure that is: the pseudo-labels artifact's `naming` metadata.

    `x`, `centroids` (calibrated) and `centres` (final cluster centres, in centroid order) are in
    the assignment space. `matched=False` keeps cluster i = domain i and only measures it. `reading`
    ([cluster, domain], cluster order) is the model's own reading of the clusters, used by `how`
    `model` and `both` (naming_evidence); the margins are in the units of the matrix matched on.
    """
    k = len(names)
    cosine = cosine_about(centres, centroids, x.mean(0), centroids.mean(0) if origin is None else origin)
    sim, metric = naming_evidence(cosine, reading, how)
    domain_of = match(sim) if matched else np.arange(k)
    m = margins(sim, domain_of)
    cluster_of = np.argsort(domain_of)  # the cluster named domain d
    sep = separations(centroids, x)
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
    extra = {} if reading is None else {"cosine": cosine[cluster_of].tolist(),
                                         "reading": np.asarray(reading)[cluster_of].tolist()}
    return {"order": "matched" if matched else "fixed", "metric": metric, "naming": how if reading is not None
            else "centroids", "domain_of_cluster": domain_of.tolist(),
            "similarity": sim[cluster_of].tolist(),  # row d: the cluster named d; column e: domain e
            **extra,
            "margins": {names[d]: float(m[cluster_of[d]]) for d in range(k)},
            "separation": {f"{names[a]}/{names[b]}": float(sep[a, b]) for a, b in pairs},
            "close_pairs": [[names[a], names[b], float(sep[a, b])] for a, b in pairs if sep[a, b] < CLOSE_SEPARATION],
            "close_separation": CLOSE_SEPARATION}


def warn_close_domains(naming: dict[str, Any]) -> None:
    """One warning per pair of domains whose calibrated centroids the probe set cannot tell apart."""
    for a, b, sep in naming.get("close_pairs", []):
        log.warning("domains %s and %s: their synthesized centroids are %.2f probe standard deviations apart "
                    "(below %.2f), too close for the pseudo-labels to tell them apart; give %s and %s more "
                    "distinct descriptions or examples in domains.yaml (--domains)", a, b, sep,
                    naming.get("close_separation", CLOSE_SEPARATION), a, b)


def pseudo_label(x: np.ndarray, centroids: np.ndarray, sample_std: np.ndarray | None, names: list[str],
                 calibration: str, assignment: str, seed: int, candidates: int = 0, naming_how: str = "centroids",
                 read: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Step 4 on arrays: (domain index per probe row, calibrated centroids, naming metadata).

    `read(clusters, centres, x)` (assignment space) gives the model's reading of the clusters
    ([cluster, domain]); it is asked only when the names are matched (`kmeans`) and `naming_how`
    uses it."""
    x, cents = calibrate(np.asarray(x, np.float64), np.asarray(centroids, np.float64), sample_std, calibration)
    origin = centroid_origin(x, cents, calibration)
    clusters, centres, chosen = assign(x, cents, assignment, seed, candidates, origin)
    matched = assignment in MATCHED
    reading = read(clusters, centres, x) if (matched and read is not None and naming_how != "centroids") else None
    naming = name_clusters(x, cents, centres, names, matched=matched, reading=reading, how=naming_how, origin=origin)
    if chosen:
        naming["mixture" if assignment == "gmm" else "optimum"] = chosen
    naming.update(calibration=calibration, assignment=assignment)
    return np.asarray(naming["domain_of_cluster"], dtype=np.int64)[clusters], cents, naming
