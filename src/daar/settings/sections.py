"""The settings of the selection pipeline, one frozen dataclass per concern.

Field names are unique across all sections, so a flat key (`layer: 3`, `--layer 3`, `layer=3`)
always names one field. Defaults, help and choices are declared here once; help texts never
repeat a default (the CLI appends it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Self

from daar.settings.base import Section, bad, check_range, setting
from daar.settings.extras import check_extras

POOLINGS = ("mean", "last", "mean-padded")
DTYPES = ("auto", "bfloat16", "float16", "float32")
_EMBEDDING = ("embedding", "embeddings", "emb")


def _check_layer(name: str, value: str | None) -> None:
    """'embedding' or a decoder layer number >= 1 (what FeatureExtractor accepts)."""
    if value is None:
        return
    text = str(value).strip().lower()
    if text in _EMBEDDING or (text.isdigit() and int(text) >= 1):
        return
    raise bad(name, f"must be 'embedding' or a decoder layer number >= 1, got '{value}'")


@dataclass(frozen=True)
class InputSettings(Section):
    """Input: the records file and how each record becomes text."""

    NAME = "input"
    data: str | None = setting(help="records file (.jsonl / .json / .parquet / .csv) or a datasets.save_to_disk "
                               "folder", metavar="PATH")
    schema: str = setting("auto", choices=("auto", "alpaca", "sharegpt", "messages", "text"),
                          help="record schema; auto detects it from the records")
    format: str = setting("auto", choices=("auto", "jsonl", "json", "parquet", "csv", "hf"),
                          help="input file format; auto goes by the file extension")
    on_bad_record: str = setting("error", choices=("error", "skip"),
                                 help="error: stop at the first bad record, naming file and line; "
                                 "skip: write it to rejects.jsonl with the reason")
    template: str = setting("default", help="renderer template: default, reference-train, reference-score or a "
                            "format string")


@dataclass(frozen=True)
class LMSettings(Section):
    """Language model: which one, in what precision, on which device."""

    NAME = "lm"
    model: str = setting("default", help="HF id or local folder; 'default' = the bundled SmolLM2-135M-Instruct")
    dtype: str = setting("auto", choices=DTYPES, help="weight precision; auto = bfloat16 where it is fast (a "
                         "bf16 GPU, a CPU with AVX-512 BF16 / AMX; daar train: a bf16 GPU only), else float32 "
                         "(float16 on older GPUs)")
    device: str | None = setting(help="cpu, cuda or cuda:N", default_text="cuda if available, else cpu")


@dataclass(frozen=True)
class FeatureSettings(Section):
    """Features: the pooled hidden states that probes and geometry baselines read."""

    NAME = "features"
    layer: str = setting("3", metavar="LAYER", help="'embedding' or decoder layer K (the model is loaded truncated to K layers)")
    pooling: str = setting("mean", choices=POOLINGS, help="mean over real tokens, the last token, or "
                           "mean-padded (the reference scripts' mean over 1024 padded positions)")
    max_length: int | None = setting(minimum=1, metavar="N",
                                     help="token limit per text, longer ones are truncated (daar eval: the "
                                     "lm-eval context window and the heldout-loss truncation)",
                                     default_text="1024 (layer K), 512 (embedding); eval: the model's, "
                                     "heldout-loss 2048")
    batch_size: int = setting(16, minimum=1, metavar="N",
                              help="texts per forward pass of the ifd / deita scorers (length-bucketed; feature "
                              "extraction batches by --feature-batch-tokens)")
    feature_batch_tokens: int | None = setting(minimum=1, metavar="N",
                                               help="feature extraction: padded tokens per forward pass "
                                               "(batches of similar-length texts up to this budget)",
                                               default_text="4096 on a CPU, 131072 on a GPU")
    feature_cache: str | None = setting(help="feature store folder", metavar="DIR",
                                        default_text="$DAAR_CACHE/features")
    stage_cache: str | None = setting(help="stage store folder: the DaaR stages' fingerprinted outputs, reused "
                                      "by any run with the same inputs", metavar="DIR",
                                      default_text="$DAAR_CACHE/stages")

    def validate(self) -> Self:
        super().validate()
        _check_layer("layer", self.layer)
        return self


@dataclass(frozen=True)
class SynthesisSettings(Section):
    """Synthesis: how the model writes example records of each domain."""

    NAME = "synthesis"
    domains: str | None = setting(help="domains.yaml: a list of name, description, optional examples (skip "
                                  "synthesis for that domain) and tau", metavar="PATH",
                                  default_text="the method's four domains")
    generator_model: str | None = setting(help="model that writes the domain samples", metavar="MODEL",
                                          default_text="--model")
    generator_url: str | None = setting(help="OpenAI-compatible server (e.g. vLLM) that generates instead of "
                                        "a local model", metavar="URL")
    # Default two-step, measured with the bundled model on 2 cores (README, "Synthesis a small model can
    # do"): 12 samples in each of the 4 domains in 311 s, while json mode capped every domain at 4-6
    # samples (mostly meta text) in 405 s.
    synthesis_mode: str = setting("two-step", choices=("two-step", "json"),
                                  help="two-step: ask for one plain-text question, then answer it as an ordinary "
                                  "chat turn (what small generators such as the bundled model manage); json: one "
                                  "instruction/input/output JSON object per reply (the method's form, for strong "
                                  "generators)")
    seeds_per_domain: int = setting(5, minimum=1, metavar="N", help="phase-1 seed samples per domain")
    # 15, not the paper's 10: with 5 + 10 samples the bundled model's centroids moved the probe partition from seed
    # to seed on a 40/30/20/10 mix (81 % of labels equal), with 5 + 15 they agreed on 99 % (README, "Stable partitions")
    samples_per_domain: int = setting(15, minimum=1, metavar="N", help="phase-2 samples to accept per domain")
    counter_examples: int = setting(3, minimum=0, metavar="N",
                                    help="existing samples of the domain shown in a phase-2 prompt as "
                                    "counter-examples (two-step mode: their instructions only)")
    tau: float = setting(0.85, help="phase-2 similarity threshold: a candidate at least this similar to an "
                         "accepted sample is rejected (a domain may set its own: the built-in mathematics "
                         "domain uses 0.90)")
    seed_temperature: float = setting(0.9, minimum=0, help="sampling temperature of the phase-1 seeds")
    augment_temperature: float = setting(0.95, minimum=0, help="sampling temperature of the phase-2 candidates")
    answer_temperature: float | None = setting(None, minimum=0, metavar="T",
                                               help="two-step mode: sampling temperature of the answers (0: "
                                               "greedy); unset: the phase's temperature")
    top_p: float = setting(0.95, help="nucleus sampling mass of both phases")
    max_new_tokens: int = setting(2048, minimum=1, metavar="N",
                                  help="json mode: length limit of a reply (the paper's 2048 suits a GPU; 160-256 "
                                  "on a CPU)")
    question_tokens: int = setting(64, minimum=1, metavar="N",
                                   help="two-step mode: length limit of a generated question (enough for one "
                                   "question on a CPU or a GPU; more only lets small models ramble on)")
    answer_tokens: int = setting(160, minimum=1, metavar="N",
                                 help="two-step mode: length limit of a generated answer; the default keeps a CPU "
                                 "run short (answers end mid-sentence), on a GPU 512-1024 lets them finish")
    max_attempts: int = setting(120, minimum=1, metavar="N",
                                help="generation attempts per domain before the cap stops it (reported)")
    # 2 chains at batch 64, not 1 at batch 16: the same synthesis time on 2 CPU cores one after another (batch 64
    # generates ~2x faster), less side by side, and fewer seeds fall into poor probe partitions (README,
    # "Independent chains")
    synthesis_chains: int = setting(2, minimum=1, metavar="N",
                                    help="independent syntheses (chains, each from its own seed and shown only its "
                                    "own samples), pooled per domain; one chain's samples share a bias that more "
                                    "samples of the same chain keep (README, \"Independent chains\"). With local "
                                    "generation on a CPU the chains run side by side, one per core (the same samples "
                                    "as one after another)")
    synth_batch: int = setting(64, minimum=1, metavar="N",
                               help="candidates generated per batch, all domains together (2 CPU cores: 64 "
                               "generates ~2x the tokens/s of 16; a GPU takes 128 or more)")
    dedup_center: bool = setting(True, help="centre features before the phase-2 cosine (small models need it); "
                                 "--no-dedup-center compares raw features, as the reference scripts do")

    def validate(self) -> Self:
        super().validate()
        check_range(self, "tau", 0, 1, lo_open=True)
        check_range(self, "top_p", 0, 1, lo_open=True)
        return self


@dataclass(frozen=True)
class ProbeSettings(Section):
    """Probes: the probe set, centroids, pseudo-labels and the psi_dom / psi_div heads."""

    NAME = "probes"
    probe_data: str | None = setting(help="probe set file, disjoint from the pool", metavar="PATH",
                                     default_text="a seeded sample of the pool")
    probe_size: int | None = setting(minimum=1, metavar="N", help="probe set size",
                                     default_text="min(5000, 25% of the pool)")
    # Measured on W-4k with the bundled model (README, "Where the pseudo-labels come from"): layer 3
    # labels the probe set far better than the paper's token-embedding layer (kept by --preset reference).
    centroid_layer: str | None = setting(help="feature space of the centroids and pseudo-labels: K or embedding",
                                         metavar="LAYER",
                                         default_text="--layer")
    # The choices mirror daar.method.naming (CALIBRATIONS, ASSIGNMENTS); tests check they agree.
    # gmm + shift-mixture, measured against kmeans + shift on W-4k and three unequal mixes (40/30/20/10 and
    # 10/20/30/40 with 250-record probes, 40/30/20/10 with a 1,000-record probe), 3 seeds each, probe labels
    # (README, "Unequal mixes"): probe named 68.5 -> 80.1 % on average, all four names right in 8 -> 11 of 12.
    assignment: str = setting("gmm", choices=("kmeans", "gmm", "nearest", "kmeans-init-order"),
                              help="kmeans: k-means initialised at the centroids, each cluster named by an "
                              "optimal matching to them; gmm: a spherical Gaussian mixture started there, named "
                              "the same way (fits unequal domain shares); nearest: the nearest fixed centroid; kmeans-init-order: "
                              "k-means, cluster i named domain i (the paper)")
    # Measured on W-4k and a 40/30/20/10 mix with two synthesis seeds (README, "Stable partitions"):
    # the single centroid-started k-means lands in seed-dependent optima; choosing among candidates
    # made both seeds' probe partitions equal.
    kmeans_candidates: int = setting(100, minimum=0, metavar="N",
                                     help="with --assignment kmeans: k-means++ runs on the probe features whose "
                                     "optima (no worse than the centroid-started one) may be chosen instead, the "
                                     "one the centroids fit best; 0: the centroid-started solution only (the paper)")
    calibration: str = setting("shift-mixture", choices=("none", "shift", "shift-mixture", "standardize"),
                               help="correct the offset of the synthesized centroids before assignment: shift "
                               "their mean onto the probe features' mean; shift-mixture: shift their mean "
                               "weighted by each domain's estimated share of the probe set there (unequal "
                               "mixes); standardize: also match the per-dimension scale; none: the paper")
    # Measured on W-4k and a 40/30/20/10 mix, 3 seeds, two synthesis batch sizes (README, "Naming by the
    # model"): all four names right in 4 of 12 runs by the centroids, 9 of 12 with both; two of both's
    # three wrong namings had margins under --min-naming-margin (the centroids' wrong ones: 0.14-0.54).
    naming: str = setting("both", choices=("both", "centroids", "model"),
                          help="with --assignment kmeans or gmm, how the clusters get their domain names: centroids: "
                          "the optimal matching of cluster centres to the synthesized centroids; model: the "
                          "model reads the probe texts nearest each cluster centre and scores each domain's "
                          "name; both: the two added (each z-scored)")
    naming_texts: int = setting(8, minimum=1, metavar="N",
                                help="with --naming model / both: probe texts the model reads per cluster")
    centroid_source: str = setting("all", choices=("all", "augmented"),
                                   help="centroids of all synthesized samples, or of the phase-2 samples only "
                                   "(the reference scripts)")
    # The method trains each head for one epoch over 5,000 probe records at batch 1: ~5,000 optimiser
    # steps at lr 1e-5. On a smaller probe set one epoch leaves the heads untrained (measured: psi_dom
    # validation accuracy 25-37 % on a 250-record probe set), so the default keeps the step count.
    probe_epochs: int | None = setting(minimum=1, metavar="N", help="training epochs of psi_dom and psi_div",
                                       default_text="enough for the method's ~5,000 optimiser steps (1 epoch "
                                       "on its 5,000-record probe set)")
    probe_lr: float = setting(1e-5, help="learning rate of psi_dom and psi_div")
    probe_batch_size: int = setting(1, minimum=1, metavar="N", help="batch size of psi_dom and psi_div")
    val_fraction: float = setting(0.03, help="share of the probe set held out to report the heads' accuracy")
    head_seed: int | None = setting(metavar="N", default_text="--seed",
                                    help="seed of the heads' initialisation, order and validation split alone, "
                                    "to tell their share of a selection's variance from synthesis's")
    # 16 members, not the paper's 1: with synthesis and pseudo-labels fixed, one head's seed alone moved the
    # W-4k selection to 71.8 % overlap, eight averaged heads to 88.1 %; across full seeds (synthesis included)
    # W-4k overlapped 88.1 % with 8 members and 91.2 % (every pair >= 90 %) with 16 (README, 2026-12-03).
    # Cost: 16x one head's time (~2.5 min per head on 2 cores with the fused kernel, daar/perf/rank1_adam.c).
    head_ensemble: int = setting(16, minimum=1, metavar="N",
                                 help="train psi_dom and psi_div N times from different initialisations and "
                                 "orders and average their predictions (1 = the paper; more = a selection "
                                 "that depends less on one head's initialisation, at N times the head cost)")

    def validate(self) -> Self:
        super().validate()
        _check_layer("centroid_layer", self.centroid_layer or None)
        if self.probe_lr <= 0:
            raise bad("probe_lr", f"must be > 0 (got {self.probe_lr})")
        check_range(self, "val_fraction", 0, 1, hi_open=True)
        return self

    def centroid_space(self, layer: str) -> str:
        """The layer of the centroids and pseudo-labels: --centroid-layer, else the probe `layer`."""
        return str(self.centroid_layer) if self.centroid_layer not in (None, "") else str(layer)


@dataclass(frozen=True)
class SelectionSettings(Section):
    """Selection: which method picks records, how many, and how they are grouped."""

    NAME = "selection"
    method: str = setting("daar", help="selector name (see daar list-selectors)")
    budget: str | None = setting(help="records to select: a count (8000) or a fraction of the pool (0.2 or 20%)")
    strategy: str = setting("top", choices=("top", "customized", "balanced"),
                            help="top: highest predicted entropy overall; customized: half from --major; "
                            "balanced: an equal share per pseudo-domain")
    major: str | None = setting(help="with --strategy customized: the domain to take 50% of", metavar="DOMAIN")
    min_naming_margin: float = setting(0.1, minimum=0, help="customized / balanced refuse to run when a "
                                       "pseudo-domain's naming margin (report.html) is below this")
    force_naming: bool = setting(False, help="run customized / balanced even when a pseudo-domain's name is unsure")
    with_scores: bool = setting(False, help="add <method>_score (and daar_domain for daar) to selected.jsonl")
    # The stage names live in daar.method (settings must not import the method): the CLI takes its
    # choices from daar.method.STAGE_NAMES and `daar.runs.select` checks the value.
    until: str | None = setting(help="run the DaaR stages up to this one (cached in the stage store) and stop, "
                                "without selecting", metavar="STAGE")
    methods: str | None = setting(help="daar compare: comma-separated selector names, e.g. daar,random,ifd",
                                  metavar="NAMES")
    label_field: str | None = setting(help="record field with your own labels: diagnostics and the inter-/intra-"
                                      "diversity bins only", metavar="FIELD")
    diagnostics: str | None = setting(choices=("pseudo-domains",), help="daar compare: extra columns that cost "
                                      "more compute; pseudo-domains = DaaR's pseudo-domain mix and mean predicted "
                                      "entropy of every selection (always on when daar is among --methods)")

    def validate(self) -> Self:
        super().validate()
        if self.strategy == "customized" and not self.major:
            raise bad("strategy", "customized needs --major DOMAIN (the domain to take 50% of)")
        if self.budget is not None:
            budget_spec(self.budget)
        return self


def parse_band(text: str) -> tuple[float, float]:
    """'20-40' -> (20.0, 40.0); percent bounds with 0 <= lo < hi <= 100."""
    try:
        lo_text, hi_text = str(text).replace("%", "").split("-")
        lo, hi = float(lo_text), float(hi_text)
    except ValueError:
        raise bad("band", f"'{text}' should look like 0-20 (percentiles LO-HI)") from None
    if not 0 <= lo < hi <= 100:
        raise bad("band", f"{text}: need 0 <= LO < HI <= 100")
    return lo, hi


@dataclass(frozen=True)
class BaselineSettings(Section):
    """Baselines: options of the other selectors (see daar list-selectors)."""

    NAME = "baselines"
    scorer_model: str | None = setting(help="model that scores ifd / deita-* (HF id or folder)", metavar="MODEL",
                                       default_text="--model")
    band: str = setting("0-20", metavar="LO-HI", help="inter-/intra-diversity percentile band per group; "
                        "0-20 = the most similar")
    similarity_threshold: float = setting(0.9, help="deita: skip a record whose cosine to one already chosen "
                                          "is at least this")
    tag_min_count: int = setting(1, minimum=1, metavar="N", help="instag: drop tags seen in fewer records")
    knn: int | None = setting(minimum=1, metavar="K", help="facility-location: keep only each record's K most "
                              "similar records (sparse, O(nK) memory)", default_text="dense up to 16384 "
                              "records, else 100")
    extra: dict[str, Any] = setting(factory=dict, metavar="KEY=VALUE",
                                    help="selector / eval option (repeatable, YAML `extra:` mapping): "
                                    "judge_time_limit, judge_batch, judge_max_new_tokens, judge_max_chars, "
                                    "scorer_max_length, center_features, coverage_clusters, selectors_use_labels "
                                    "(compare: let methods group by --label-field); eval: max_gen_toks, "
                                    "code_timeout, heldout_rows, pool_dir")

    def validate(self) -> Self:
        super().validate()
        parse_band(self.band)
        check_range(self, "similarity_threshold", -1, 1)
        check_extras(self.extra)  # every --extra key and value, against the one table (settings.extras)
        return self


def budget_spec(budget: str | int | float) -> int | float:
    """A count (int) or a fraction of the pool (float in (0, 1]). Errors name the fix.

    '8000', '1e3' and '2.0' are counts (a whole number >= 1, however written); '0.2', '20%' and '1.0'
    are fractions ('1.0' = the whole pool, as it always was; '1' is one record).
    """
    text = str(budget).strip()
    if text.isascii() and text.lstrip("+").isdigit():  # isdigit alone also takes '¹', which int() refuses
        count = int(text)  # exact, however long
        if count < 1:
            raise bad("budget", f"{text} selects no record; give a count >= 1 or a fraction in (0, 1]")
        return count
    try:
        value = float(text[:-1] if text.endswith("%") else text)
    except ValueError:
        raise bad("budget", f"'{text}' is neither a count (8000) nor a fraction (0.2 or 20%)") from None
    if not math.isfinite(value):
        raise bad("budget", f"'{text}' is not a finite number; give a count (8000) or a fraction (0.2 or 20%)")
    if text.endswith("%"):
        # the fraction, not the percentage, must be > 0: '1e-322%' is > 0 but its /100 underflows to 0.0
        if not (0 < value <= 100 and value / 100 > 0):
            raise bad("budget", f"{text}: a percentage must be in (0%, 100%]")
        return value / 100
    if value >= 1 and value.is_integer() and not (value == 1 and "." in text):
        return int(value)
    if 0 < value <= 1:
        return value
    if value <= 0:
        raise bad("budget", f"{text} selects no record; give a count >= 1 or a fraction in (0, 1]")
    raise bad("budget", f"{text} is neither a count (a whole number, e.g. 8000 or 1e3) nor a fraction in (0, 1] "
              "(0.2 or 20%)")
