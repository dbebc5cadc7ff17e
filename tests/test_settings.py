"""Settings per concern (daar.settings) and the CLI generated from their metadata (daar.cli)."""

from __future__ import annotations

import argparse
import dataclasses
import re

import pytest
import yaml

from daar.cli import build_parser, config_from_args, main
from daar.errors import ConfigError
from daar.settings import EXPORT_FORMATS, FIELD_SECTION, SECTIONS, Config, flag_name


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _write(tmp_path, values, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values))
    return path


# -- building ---------------------------------------------------------------------------------------
def test_flat_and_nested_yaml_give_the_same_config(tmp_path):
    flat = {"data": "pool.jsonl", "layer": 5, "probe_lr": "1e-4", "budget": "20%", "seed": 7, "lora-r": 4,
            "extra": {"judge_batch": 2}}
    nested = {"input": {"data": "pool.jsonl"}, "features": {"layer": "5"}, "probes": {"probe_lr": 1e-4},
              "selection": {"budget": "20%"}, "run": {"seed": 7}, "train": {"lora_r": 4},
              "baselines": {"extra": {"judge_batch": 2}}}
    a = Config.from_yaml(_write(tmp_path, flat, "flat.yaml"))
    b = Config.from_yaml(_write(tmp_path, nested, "nested.yaml"))
    assert a == b
    assert a.features.layer == "5" and a.probes.probe_lr == 1e-4 and a.run.seed == 7 and a.train.lora_r == 4
    # both forms round-trip
    assert Config.from_mapping(a.to_dict()) == a == Config.from_mapping(a.to_dict(nested=True))
    assert set(a.to_dict()) == Config.names() and set(a.to_dict(nested=True)) == set(SECTIONS)


def test_unknown_key_names_the_file_and_lists_known_keys(tmp_path):
    path = _write(tmp_path, {"layr": 3})
    with pytest.raises(ConfigError) as info:
        Config.from_yaml(path)
    text = str(info.value)
    assert str(path) in text and "'layr'" in text and "did you mean 'layer'" in text
    assert "probe_lr" in text and "train_batch_size" in text
    with pytest.raises(ConfigError, match=r"unknown setting 'features.lr'.*Known in features: layer"):
        Config(features={"lr": 1})


def test_values_are_coerced_to_the_field_types_and_bad_types_are_named():
    cfg = Config(layer=3, budget=0.2, probe_epochs="2", with_scores="true", tau=1)
    assert (cfg.features.layer, cfg.selection.budget, cfg.probes.probe_epochs) == ("3", "0.2", 2)
    assert cfg.selection.with_scores is True and isinstance(cfg.synthesis.tau, float)
    with pytest.raises(ConfigError, match="'probe_epochs' expects an integer"):
        Config(probe_epochs="many")
    with pytest.raises(ConfigError, match="'batch_size' cannot be empty"):
        Config(batch_size=None)


def test_config_is_frozen_and_replace_returns_a_new_one():
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.run = None  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.features.layer = "4"  # type: ignore[misc]
    new = cfg.replace(layer="4", run={"seed": 1})
    assert (new.features.layer, new.run.seed) == ("4", 1) and (cfg.features.layer, cfg.run.seed) == ("3", 42)
    # dataclasses.replace with a flat key still changes just that field
    assert dataclasses.replace(new, label_field="src").selection.label_field == "src"
    assert dataclasses.replace(new, label_field="src").features.layer == "4"


def test_extra_from_flags_adds_to_the_yaml_extra(tmp_path):
    path = _write(tmp_path, {"extra": {"judge_batch": 4, "judge_max_chars": 100}})
    args = build_parser(["select"]).parse_args(["select", "--config", str(path), "--extra", "judge_batch=8"])
    assert config_from_args(args).baselines.extra == {"judge_batch": 8, "judge_max_chars": 100}


def test_centroids_follow_the_probe_layer_unless_set():
    assert Config().centroid_space == "3"
    assert Config(layer="5").centroid_space == "5"
    assert Config(layer="5", centroid_layer="embedding").centroid_space == "embedding"


def test_reference_preset_uses_the_papers_embedding_centroids():
    cfg = Config(preset="reference").apply_preset()
    assert cfg.centroid_space == "embedding" and cfg.features.pooling == "mean-padded"
    assert cfg.input.template == "reference-score" and cfg.synthesis.dedup_center is False


def test_require_names_the_flag():
    with pytest.raises(ConfigError, match="--export-format is required: a format"):
        Config().require(export_format="a format")


# -- validation -------------------------------------------------------------------------------------
BAD = {  # section -> (one bad value, the flag its message names)
    "input": ({"on_bad_record": "maybe"}, "--on-bad-record 'maybe' is not one of"),
    "lm": ({"dtype": "float8"}, "--dtype 'float8' is not one of"),
    "features": ({"layer": "top"}, "--layer must be 'embedding' or a decoder layer number"),
    "synthesis": ({"tau": 1.5}, "--tau must be in (0, 1]"),
    "probes": ({"val_fraction": 1.0}, "--val-fraction must be in [0, 1)"),
    "scale": ({"shard_size": 0}, "--shard-size must be >= 1"),
    "selection": ({"strategy": "customized"}, "customized needs --major"),
    "baselines": ({"band": "20"}, "--band '20' should look like 0-20"),
    "train": ({"lr": 0}, "--lr must be > 0"),
    "eval": ({"limit": 0}, "--limit must be >= 1"),
    "run": ({"seed": -1}, "--seed must be >= 0"),
}


def test_every_section_has_a_bad_value_case():
    assert set(BAD) == set(SECTIONS)


@pytest.mark.parametrize("section", sorted(BAD))
def test_each_section_rejects_a_bad_value_with_exit_2(section, tmp_path, capsys):
    values, message = BAD[section]
    assert FIELD_SECTION[next(iter(values))] == section
    with pytest.raises(ConfigError, match=re.escape(message)):
        getattr(Config(**values), section).validate()
    rc = main(["embed", "--config", str(_write(tmp_path, values)), "--data", "unused.jsonl", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_bad_flag_values_exit_2(capsys):
    assert main(["select", "--data", "x.jsonl", "--tau", "2", "-q"]) == 2
    assert "--tau must be in (0, 1]" in capsys.readouterr().err
    assert main(["train", "--data", "x.jsonl", "--out", "o", "--train-batch-size", "0", "-q"]) == 2
    assert "--train-batch-size must be >= 1" in capsys.readouterr().err
    assert main(["select", "--data", "x.jsonl", "--budget", "lots", "-q"]) == 2
    assert "--budget 'lots' is neither a count" in capsys.readouterr().err


# -- the generated CLI ------------------------------------------------------------------------------
def test_one_flag_is_one_field_in_every_command():
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            if action.dest in FIELD_SECTION:
                assert action.option_strings == [Config.field_info(action.dest).flag], (name, action.dest)


def test_help_shows_each_default_from_the_field_metadata():
    select = _subparsers(build_parser())["select"]
    seen = set()
    for action in select._actions:
        if action.dest not in FIELD_SECTION:
            continue
        info = Config.field_info(action.dest)
        seen.add(action.dest)
        assert "(default" not in info.help  # defaults are never written into help texts by hand
        label = info.default_label
        if label is not None:
            assert action.help.replace("%%", "%").endswith(f"(default: {label})"), action.dest
    assert {"layer", "tau", "probe_lr", "budget", "seed", "knn", "extra"} <= seen
    assert Config.field_info("tau").default_label == "0.85" and Config.field_info("dedup_center").flag == (
        "--no-dedup-center")


def test_train_takes_train_batch_size_and_select_batch_size_is_the_feature_batch(capsys):
    subs = _subparsers(build_parser())
    train_flags = {s for a in subs["train"]._actions for s in a.option_strings}
    assert {"--train-batch-size", "--train-max-length"} <= train_flags
    assert not {"--batch-size", "--max-length"} & train_flags
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--train-batch-size" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["select", "--help"])
    assert "--batch-size" in capsys.readouterr().out
    args = build_parser(["select"]).parse_args(["select", "--batch-size", "3", "--max-length", "64"])
    cfg = config_from_args(args)
    assert (cfg.features.batch_size, cfg.features.max_length) == (3, 64)
    assert (cfg.train.train_batch_size, cfg.train.train_max_length) == (4, 2048)


def test_unset_flags_let_yaml_values_show_through(tmp_path):
    path = _write(tmp_path, {"features": {"layer": 7}, "seed": 3})
    args = build_parser(["select"]).parse_args(["select", "--config", str(path), "--seed", "5"])
    cfg = config_from_args(args)
    assert cfg.features.layer == "7" and cfg.run.seed == 5


def test_flag_names_and_choices_are_shared_with_the_code():
    from daar.train.export import EXPORT_FORMATS as written

    assert written == EXPORT_FORMATS == Config.field_info("export_format").choices
    assert flag_name("train_max_length") == "--train-max-length"


def test_readme_flag_table_is_generated_from_the_settings():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("flag_tables", root / "scripts" / "flag_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check", str(root / "README.md")]) == 0
