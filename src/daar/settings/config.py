"""`Config`: every section together, built the same way from flags, YAML files and keyword arguments.

Keys may be flat (`layer: 3`, `--layer 3`, `Config(layer="3")`: field names are unique across
sections) or nested (`features: {layer: 3}`); dashes and underscores are the same. Precedence:
defaults < YAML < flags. A Config is frozen: `cfg.replace(**keys)` returns a changed copy.
`validate()` runs once, after merging, and raises ConfigError with a message that says what to do.
It is the one place every setting is checked before anything is loaded or computed: each section's
types, choices and bounds, then what spans sections or lives outside them (the template renders,
the seeds suit every library, folders are not files, the environment variables, the domains file
parses, the probe file exists).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daar.errors import ConfigError
from daar.io import read_yaml
from daar.settings.base import FieldInfo, Section, env_int, flag_name
from daar.settings.jobs import PRESET_NAMES, EvalSettings, RunSettings, TrainSettings
from daar.settings.scale import ScaleSettings
from daar.settings.sections import (
    BaselineSettings,
    FeatureSettings,
    InputSettings,
    LMSettings,
    ProbeSettings,
    SelectionSettings,
    SynthesisSettings,
    budget_spec,
)

# Section attribute -> class, in manifest order.
SECTIONS: dict[str, type[Section]] = {cls.NAME: cls for cls in (
    InputSettings, LMSettings, FeatureSettings, SynthesisSettings, ProbeSettings, SelectionSettings,
    BaselineSettings, TrainSettings, EvalSettings, RunSettings, ScaleSettings)}
# Flat field name -> its section.
FIELD_SECTION: dict[str, str] = {name: sec for sec, cls in SECTIONS.items() for name in cls.names()}
if len(FIELD_SECTION) != sum(len(c.names()) for c in SECTIONS.values()) or set(FIELD_SECTION) & set(SECTIONS):
    raise TypeError("settings field names must be unique across sections and differ from section names")

# `--preset reference`: the authors' scripts' choices, for replication studies.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "reference": {"pooling": "mean-padded", "template": "reference-score", "centroid_source": "augmented",
                  "dedup_center": False, "centroid_layer": "embedding", "calibration": "none",
                  "assignment": "kmeans-init-order", "kmeans_candidates": 0, "naming": "centroids",
                  "synthesis_mode": "json", "samples_per_domain": 10, "probe_epochs": 1,
                  "head_ensemble": 1, "synthesis_chains": 1},
}
if tuple(PRESETS) != PRESET_NAMES:
    raise TypeError("PRESETS and RunSettings.preset's choices must name the same presets")


@dataclasses.dataclass(frozen=True, init=False)
class Config:
    """All settings, one frozen section per concern: `cfg.features.layer`, `cfg.run.seed`, ...

    `Config(**keys)` takes flat field names and/or whole sections (`features=FeatureSettings(...)`
    or a mapping `features={"layer": "5"}`); it does not validate (call `validate()`).
    """

    input: InputSettings
    lm: LMSettings
    features: FeatureSettings
    synthesis: SynthesisSettings
    probes: ProbeSettings
    selection: SelectionSettings
    baselines: BaselineSettings
    train: TrainSettings
    eval: EvalSettings
    run: RunSettings
    scale: ScaleSettings

    def __init__(self, **values: Any) -> None:
        sections = _overlay({name: cls() for name, cls in SECTIONS.items()}, values, "Config(...)")
        for name, section in sections.items():
            object.__setattr__(self, name, section)

    # -- building ----------------------------------------------------------------------------------
    @classmethod
    def names(cls) -> set[str]:
        """Every flat key (= field name = CLI flag without dashes = keyword argument)."""
        return set(FIELD_SECTION)

    @classmethod
    def field_info(cls, name: str) -> FieldInfo:
        """Default, help, choices, type and section of the field `name`."""
        return SECTIONS[FIELD_SECTION[name]].infos()[name]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: Config | None = None, source: str = "config") -> Config:
        """Overlay `values` (flat and/or nested keys) on `base` (or the defaults); `source` names them in errors."""
        start = base.sections() if base is not None else {name: c() for name, c in SECTIONS.items()}
        cfg = object.__new__(cls)
        for name, section in _overlay(start, values, source).items():
            object.__setattr__(cfg, name, section)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path, base: Config | None = None) -> Config:
        path = Path(path)
        values = read_yaml(path, "config file") or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of setting: value")
        return cls.from_mapping(values, base, source=str(path))

    def replace(self, **values: Any) -> Config:
        """A new Config with `values` (flat or nested keys) changed; this one stays as it is."""
        return Config.from_mapping(values, self, source="replace()")

    def apply_preset(self) -> Config:
        """The config with `--preset`'s values applied (`reference` overrides pooling, template, ...)."""
        if self.run.preset not in PRESETS:
            raise ConfigError(f"--preset '{self.run.preset}' is not one of: {', '.join(PRESETS)}")
        changes = PRESETS[self.run.preset]
        return self.replace(**changes) if changes else self

    def validate(self, out_may_be_file: bool = False) -> Config:
        """Each section's own checks, then the checks that span sections or read outside them; returns self.

        `out_may_be_file`: --out may name a file (daar export); everywhere else it is a folder.
        """
        for section in self.sections().values():
            section.validate()
        _check_template(self.input.template)
        _check_seeds(self)
        _check_folders(self, out_may_be_file)
        _check_environment()
        _check_inputs(self)
        return self

    def require(self, **reasons: str) -> Config:
        """Raise unless every named field is set: `cfg.require(data="the records to export")`."""
        for name, why in reasons.items():
            if getattr(getattr(self, FIELD_SECTION[name]), name) in (None, ""):
                raise ConfigError(f"{flag_name(name)} is required: {why}")
        return self

    # -- reading -----------------------------------------------------------------------------------
    def sections(self) -> dict[str, Section]:
        return {name: getattr(self, name) for name in SECTIONS}

    @property
    def centroid_space(self) -> str:
        """The layer the centroids and pseudo-labels live in (--centroid-layer, else --layer)."""
        return self.probes.centroid_space(self.features.layer)

    def to_dict(self, nested: bool = False) -> dict[str, Any]:
        """Flat {field: value} (round-trips through from_mapping and YAML), or {section: {field: value}}.

        Manifests store the nested form (`to_dict(nested=True)`): it reads by concern.
        """
        parts = {name: section.to_dict() for name, section in self.sections().items()}
        return parts if nested else {k: v for part in parts.values() for k, v in part.items()}


def _overlay(sections: dict[str, Section], values: Mapping[str, Any], source: str) -> dict[str, Section]:
    """`sections` with `values` applied. Whole sections apply first, then nested and flat keys in order
    (so `dataclasses.replace(cfg, label_field=None)`, which passes every section too, changes one field)."""
    out = dict(sections)
    changes: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name in SECTIONS and isinstance(value, Section):
            if not isinstance(value, SECTIONS[name]):
                raise ConfigError(f"{source}: '{name}' must be a {SECTIONS[name].__name__}")
            out[name] = value
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name in SECTIONS:
            if isinstance(value, Section):
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: '{name}' is a section; give a mapping of its settings "
                                  f"({', '.join(SECTIONS[name].names())})")
            for sub, sub_value in value.items():
                field = str(sub).replace("-", "_")
                if field not in SECTIONS[name].infos():
                    raise _unknown(source, f"{name}.{sub}", SECTIONS[name].names(), f"Known in {name}")
                changes[name][field] = sub_value
        elif name in FIELD_SECTION:
            changes[FIELD_SECTION[name]][name] = value
        else:
            raise _unknown(source, str(key), sorted(FIELD_SECTION) + list(SECTIONS), "Known")
    for name, fields in changes.items():
        if not fields:
            continue
        infos = SECTIONS[name].infos()
        typed = {}
        for field, value in fields.items():
            value = infos[field].coerce(value, source)
            if infos[field].kind is dict:  # --extra KEY=VALUE adds to the YAML's extra mapping
                value = {**getattr(out[name], field), **value}
            typed[field] = value
        out[name] = dataclasses.replace(out[name], **typed)  # type: ignore[type-var]
    return out


# Environment variables daar reads, checked with the settings (their readers raise too late).
ENVIRONMENT = {"DAAR_CACHE": "the cache folder (models, feature store, stage store)",
               "DAAR_SHARD_SIZE": "records per feature-store shard"}
# scikit-learn takes seeds in [0, 2**32 - 1] (k-means, splits); a larger one fails after the expensive stages.
SEED_LIMIT = 2**32 - 1


def _check_template(template: str) -> None:
    """Render a sample record, so a bad placeholder fails here instead of in the first batch."""
    from daar.data.render import Renderer  # the renderer owns the template rules; this only asks it

    try:
        Renderer.named(template).render_fields("instruction", "input", "output")
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise ConfigError(f"--template {template!r} cannot render a record ({exc}); give default, "
                          "reference-train, reference-score or a format string over {instruction}, {input}, "
                          "{output} and {prompt} (write a literal brace as {{ or }})") from None


def _check_seeds(cfg: Config) -> None:
    for name, value in (("seed", cfg.run.seed), ("head_seed", cfg.probes.head_seed)):
        if value is not None and not 0 <= value <= SEED_LIMIT:
            raise ConfigError(f"{flag_name(name)} must be in [0, {SEED_LIMIT}] (got {value}): scikit-learn "
                              "and numpy take 32-bit seeds")


def _not_a_file(path: str | None, what: str, hint: str) -> None:
    if path and Path(path).exists() and not Path(path).is_dir():
        raise ConfigError(f"{what} {path} is an existing file, not a folder; {hint}")


def _check_folders(cfg: Config, out_may_be_file: bool) -> None:
    if not out_may_be_file:
        _not_a_file(cfg.run.out, "--out", "give a new folder or the folder of an earlier run")
    _not_a_file(cfg.features.feature_cache, "--feature-cache", "give a folder")
    _not_a_file(cfg.features.stage_cache, "--stage-cache", "give a folder")


def _check_environment() -> None:
    _not_a_file(os.environ.get("DAAR_CACHE"), "environment variable DAAR_CACHE",
                f"point it at a folder for {ENVIRONMENT['DAAR_CACHE']}, or unset it")
    env_int("DAAR_SHARD_SIZE", minimum=1)


def _check_inputs(cfg: Config) -> None:
    """The files read late in a run (the probe set after the pool's features, the domains before
    synthesis) are read or looked at now, so a typo costs nothing."""
    probe = cfg.probes.probe_data
    if probe and not Path(probe).exists():
        raise ConfigError(f"--probe-data {probe}: file not found; check the path, or leave it out to sample "
                          "the probe set from the pool")
    if cfg.synthesis.domains:
        from daar.synth.domains import load_domains  # parses and checks the file; nothing is generated

        load_domains(cfg.synthesis.domains)


def _unknown(source: str, key: str, known: list[str] | tuple[str, ...], label: str) -> ConfigError:
    close = difflib.get_close_matches(key.split(".")[-1].replace("-", "_"), list(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"{source}: unknown setting '{key}'{hint}. {label}: {', '.join(known)}")


def parse_budget(budget: str | int | float | None, pool_size: int) -> int:
    """'8000' -> 8000; '0.2' or '20%' -> 20% of the pool (rounded). Errors name the fix."""
    if budget is None:
        raise ConfigError("--budget is required: a count (8000) or a fraction of the pool (0.2 or 20%)")
    spec = budget_spec(budget)
    text = str(budget).strip()
    k = spec if isinstance(spec, int) else round(spec * pool_size)
    if k < 1:
        raise ConfigError(f"--budget {text} selects no record from a pool of {pool_size}")
    if k > pool_size:
        raise ConfigError(f"--budget {text} is larger than the pool ({pool_size} usable records); "
                          "lower it or give a bigger pool")
    return k
