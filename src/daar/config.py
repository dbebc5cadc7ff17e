"""One typed config object shared by the CLI, YAML files and the Python API.

A CLI flag `--foo-bar` sets the field `foo_bar`; a YAML file uses the same names (dashes or
underscores); Python passes them as keyword arguments. Precedence: defaults < YAML < flags.
`validate()` runs once, after merging, and raises ConfigError with a message that says what to do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from daar.errors import ConfigError


@dataclass
class Config:
    # -- input pool ------------------------------------------------------------------------------
    data: str | None = None
    schema: str = "auto"
    format: str = "auto"
    on_bad_record: str = "error"  # error | skip
    template: str = "default"  # renderer template name or literal format string
    # -- model and features ----------------------------------------------------------------------
    model: str = "default"
    layer: str = "3"
    pooling: str = "mean"
    max_length: int | None = None
    dtype: str = "auto"
    batch_size: int = 16
    device: str | None = None
    feature_cache: str | None = None  # feature store root; default <DAAR_CACHE>/features
    # -- domains and synthesis -------------------------------------------------------------------
    domains: str | None = None  # domains.yaml; default: the method's four domains
    generator_model: str | None = None  # default: --model
    generator_url: str | None = None  # OpenAI-compatible endpoint instead of local generate()
    seeds_per_domain: int = 5
    samples_per_domain: int = 10
    counter_examples: int = 3
    tau: float = 0.85
    seed_temperature: float = 0.9
    augment_temperature: float = 0.95
    top_p: float = 0.95
    max_new_tokens: int = 2048
    max_attempts: int = 120
    synth_batch: int = 8
    dedup_center: bool = True  # centre features before the phase-2 cosine (small models need it)
    # -- centroids, probe set, pseudo-labels -----------------------------------------------------
    probe_data: str | None = None
    probe_size: int | None = None  # default min(5000, 25% of the pool)
    # Feature space of the centroids and the pseudo-label assignment; None = the probe layer (--layer).
    # Measured on W-4k with the bundled model (README, "Where the pseudo-labels come from"): layer 3
    # labels the probe set far better than the paper's token-embedding layer ('embedding', kept for
    # --preset reference).
    centroid_layer: str | None = None
    assignment: str = "kmeans"  # kmeans (initialised at centroids) | nearest (fixed centroids)
    centroid_source: str = "all"  # all | augmented (reference scripts: phase-2 samples only)
    # -- probes ----------------------------------------------------------------------------------
    probe_epochs: int = 1
    probe_lr: float = 1e-5
    probe_batch_size: int = 1
    val_fraction: float = 0.03
    # -- selection -------------------------------------------------------------------------------
    method: str = "daar"
    budget: str | None = None  # a count ("8000") or a fraction ("0.2" / "20%")
    strategy: str = "top"  # top | customized | balanced
    major: str | None = None
    seed: int = 42
    with_scores: bool = False
    preset: str = "default"  # default | reference
    until: str | None = None  # run the DaaR stages up to this one and stop (no selection)
    out: str | None = None
    # -- baselines and comparison (daar compare / select --method NAME) ----------------------------
    methods: str | None = None  # comma-separated selector names for `daar compare`
    label_field: str | None = None  # user's own labels: diagnostics and the inter/intra bins only
    scorer_model: str | None = None  # small LM for ifd / deita scorers (default: --model)
    band: str = "0-20"  # percentile band for inter-diversity / intra-diversity bins
    similarity_threshold: float = 0.9  # deita's redundancy filter
    tag_min_count: int = 1  # instag: drop tags seen fewer times than this (alpha)
    knn: int | None = None  # facility-location: sparse k-nearest-neighbour similarities
    extra: dict[str, Any] = field(default_factory=dict)  # selector-specific options
    # -- LoRA fine-tuning (daar train) -------------------------------------------------------------
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lr: float = 5e-5
    warmup_ratio: float = 0.05
    epochs: float = 1.0
    train_batch_size: int = 4  # `daar train --batch-size`
    gradient_accumulation: int = 4
    train_max_length: int = 2048  # `daar train --max-length`
    max_steps: int | None = None
    group_by_length: bool = False  # batch records of similar length together (less padding, same epoch)
    chat_template: str = "auto"  # none | auto | a template name/string
    save_steps: int | None = None
    resume: bool = False
    merge: bool = False
    export_format: str | None = None  # llama-factory | ms-swift | sharegpt
    # -- evaluation (daar eval) --------------------------------------------------------------------
    adapter: str | None = None
    tasks: str | None = None  # comma-separated task names
    limit: int | None = None
    data_dir: str | None = None  # local benchmark files (default ../shared/data/eval when present)
    eval_batch_size: int = 8

    # ----------------------------------------------------------------------------------------------
    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_mapping(cls, values: dict[str, Any], base: Config | None = None, source: str = "config") -> Config:
        """Overlay `values` (flag-style or field-style keys) on `base` (or the defaults)."""
        cfg = dataclasses.replace(base) if base is not None else cls()
        known = cls.names()
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigError(f"{source}: unknown setting '{key}'. Known: {', '.join(sorted(known))}")
            setattr(cfg, name, value)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path, base: Config | None = None) -> Config:
        import yaml

        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: config file not found")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of setting: value")
        return cls.from_mapping(values, base, source=str(path))

    def apply_preset(self) -> Config:
        """`reference` switches to the authors' scripts' choices, for replication studies."""
        if self.preset == "reference":
            self.pooling = "mean-padded"
            self.template = "reference-score"
            self.centroid_source = "augmented"
            self.dedup_center = False
            self.centroid_layer = "embedding"
        elif self.preset != "default":
            raise ConfigError(f"unknown preset '{self.preset}'; use default or reference")
        return self

    def validate(self) -> Config:
        _choice("on_bad_record", self.on_bad_record, ("error", "skip"))
        _choice("pooling", self.pooling, ("mean", "last", "mean-padded"))
        _choice("dtype", self.dtype, ("auto", "bfloat16", "float16", "float32"))
        _choice("strategy", self.strategy, ("top", "customized", "balanced"))
        _choice("assignment", self.assignment, ("kmeans", "nearest"))
        _choice("centroid_source", self.centroid_source, ("all", "augmented"))
        for name in ("batch_size", "probe_epochs", "probe_batch_size", "samples_per_domain", "seeds_per_domain",
                     "max_attempts", "synth_batch", "max_new_tokens"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        if not 0 < self.tau <= 1:
            raise ConfigError("--tau must be in (0, 1]")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError("--val-fraction must be in [0, 1)")
        if self.until is not None:
            from daar.stages import STAGES

            _choice("until", self.until, STAGES)
        if self.strategy == "customized" and not self.major:
            raise ConfigError("--strategy customized needs --major DOMAIN (the domain to take 50% of)")
        return self

    @property
    def centroid_space(self) -> str:
        """The layer the centroids and pseudo-labels live in (--centroid-layer, else --layer)."""
        return str(self.centroid_layer) if self.centroid_layer not in (None, "") else str(self.layer)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"--{name.replace('_', '-')} '{value}' is not one of: {', '.join(allowed)}")


def parse_budget(budget: str | int | float | None, pool_size: int) -> int:
    """'8000' -> 8000; '0.2' or '20%' -> 20% of the pool (rounded). Errors name the fix."""
    if budget is None:
        raise ConfigError("--budget is required: a count (8000) or a fraction of the pool (0.2 or 20%)")
    text = str(budget).strip()
    try:
        if text.endswith("%"):
            k = round(float(text[:-1]) / 100 * pool_size)
        elif "." in text or "e" in text.lower():
            frac = float(text)
            if not 0 < frac <= 1:
                raise ConfigError(f"--budget {text}: a fraction must be in (0, 1]")
            k = round(frac * pool_size)
        else:
            k = int(text)
    except ValueError:
        raise ConfigError(f"--budget '{text}' is neither a count nor a fraction") from None
    if k < 1:
        raise ConfigError(f"--budget {text} selects no record from a pool of {pool_size}")
    if k > pool_size:
        raise ConfigError(f"--budget {text} is larger than the pool ({pool_size} usable records); "
                          "lower it or give a bigger pool")
    return k
