"""Typed settings, one frozen dataclass per concern, composed into `Config`.

    cfg = Config.from_yaml("run.yaml").replace(layer="5").apply_preset().validate()
    cfg.features.layer, cfg.lm.model, cfg.run.seed, cfg.centroid_space
    cfg.to_dict()             flat {field: value} (what YAML and from_mapping take back)
    cfg.to_dict(nested=True)  {section: {field: value}} (what manifests store)

Each field's default, help, choices and minimum are declared once (`setting(...)` in
sections.py / jobs.py); the CLI (daar.cli) and the flag tables are generated from them.
"""

from daar.settings.base import FieldInfo, Section, flag_name, setting
from daar.settings.config import FIELD_SECTION, PRESETS, SECTIONS, Config, parse_budget
from daar.settings.jobs import EXPORT_FORMATS, EvalSettings, RunSettings, TrainSettings
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
    parse_band,
)

__all__ = ["Config", "parse_budget", "budget_spec", "parse_band", "setting", "flag_name", "FieldInfo", "Section",
           "SECTIONS", "FIELD_SECTION", "PRESETS", "EXPORT_FORMATS", "InputSettings", "LMSettings",
           "FeatureSettings", "SynthesisSettings", "ProbeSettings", "SelectionSettings", "BaselineSettings",
           "TrainSettings", "EvalSettings", "RunSettings", "ScaleSettings"]
