"""`--extra KEY=VALUE`: every known key's type and range is checked when the settings are validated
(before anything loads); a bad value or an unknown key is an error naming the key, the value and the fix."""

from __future__ import annotations

import pytest
import yaml

from daar.cli import main
from daar.errors import ConfigError
from daar.settings import Config
from daar.settings.extras import EXTRAS, check_extras
from data_helpers import ALPACA_ROWS, write_jsonl


@pytest.mark.parametrize(("pair", "words"), [
    ("judge_batch=abc", ["--extra judge_batch='abc'", "not a number", "a whole number >= 1",
                         "--extra judge_batch=16", "default 16"]),
    ("judge_batch=0", ["judge_batch=0", "below 1"]),
    ("judge_batch=2.5", ["judge_batch=2.5", "not a whole number"]),
    ("judge_batch=", ["judge_batch=None", "cannot be empty"]),
    ("judge_time_limit=-1", ["judge_time_limit=-1", "below 0", "or null for the default"]),
    ("judge_time_limit=.inf", ["judge_time_limit=inf", "not a finite number"]),
    ("center_features=maybe", ["center_features='maybe'", "not true or false", "=true"]),
    ("code_timeout=0", ["code_timeout=0", "not > 0", "daar eval"]),
    ("max_gen_toks=true", ["max_gen_toks=True", "not a number"]),
    ("judge_bach=3", ["--extra judge_bach", "not a known option", "did you mean 'judge_batch'"]),
])
def test_a_bad_extra_exits_2_before_anything_loads(tmp_path, capsys, pair, words):
    pool = write_jsonl(tmp_path / "pool.jsonl", ALPACA_ROWS)
    # the model does not exist: the run must stop at the settings, long before it would look for one
    rc = main(["select", "--data", str(pool), "--method", "random", "--budget", "2", "--model",
               str(tmp_path / "no-model"), "--out", str(tmp_path / "out"), "--extra", pair, "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / "out").exists()


def test_a_bad_extra_in_yaml_is_named_too(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"extra": {"scorer_max_length": "long"}}))
    with pytest.raises(ConfigError, match=r"--extra scorer_max_length='long': it is not a number.*ifd"):
        Config.from_yaml(conf).validate()


def test_good_extras_pass_as_cli_yaml_and_kwargs_give_them():
    good = {"judge_batch": 8, "judge_time_limit": 0, "judge_max_chars": 100, "judge_max_new_tokens": None,
            "scorer_max_length": 64, "center_features": False, "coverage_clusters": 5,
            "selectors_use_labels": True, "max_gen_toks": 8, "code_timeout": 2.5, "heldout_rows": "0:3",
            "pool_dir": "/data/pool"}
    assert set(good) == set(EXTRAS)  # every declared key has a valid value here
    check_extras(good)
    assert Config.from_mapping({"extra": good}).validate().baselines.extra == good


def test_the_selectors_read_their_defaults_from_the_one_table():
    from daar.selectors.baselines import common

    class Ctx:
        cfg = Config.from_mapping({"extra": {"judge_batch": 3}})

    assert common.option(Ctx, "judge_batch") == 3
    assert common.option(Ctx, "scorer_max_length") == EXTRAS["scorer_max_length"].default == 512
