"""The `--extra KEY=VALUE` options: one table of every known key, its type, range, default and users.

The selectors (daar.selectors.baselines.common.option), `daar compare` and `daar eval` read their
options from this table, and `BaselineSettings.validate` checks every given value against it when
the settings are validated, i.e. before anything loads. It lives in settings, not beside the
selectors, because settings may not import selectors (the selectors import settings).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from daar.errors import ConfigError


@dataclass(frozen=True)
class ExtraKey:
    """One `--extra` key: `kind` is int, float, bool or str; null is allowed when `default` is None
    (the command's own default), unless `nullable` says otherwise."""

    kind: type
    default: Any
    help: str
    used_by: str
    minimum: float | None = None
    positive: bool = False  # > 0 rather than >= minimum (a time limit of 0 s would do nothing)
    example: str | None = None  # for the error message; else the default, else one by kind
    nullable: bool | None = None

    @property
    def allows_null(self) -> bool:
        return self.default is None if self.nullable is None else self.nullable

    def expects(self) -> str:
        if self.kind is bool:
            what = "true or false"
        elif self.kind is str:
            what = "a string"
        else:
            what = "a whole number" if self.kind is int else "a number"
            if self.positive:
                what += " > 0"
            elif self.minimum is not None:
                what += f" >= {self.minimum:g}"
        return what + (" (or null for the default)" if self.allows_null else "")

    def problem(self, value: Any) -> str | None:
        """Why `value` is not a valid value of this key, or None when it is."""
        if value is None:
            return None if self.allows_null else "it cannot be empty"
        if self.kind is bool:
            return None if isinstance(value, bool) else "it is not true or false"
        if self.kind is str:
            return None if isinstance(value, str | int) and not isinstance(value, bool) else "it is not a string"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "it is not a number"
        if not math.isfinite(value):
            return "it is not a finite number"
        if self.kind is int and not float(value).is_integer():
            return "it is not a whole number"
        if self.positive and value <= 0:
            return "it is not > 0"
        if self.minimum is not None and value < self.minimum:
            return f"it is below {self.minimum:g}"
        return None


_JUDGES = "the judged and scored baselines (alpagasus, instag, ifd, deita-*)"
EXTRAS: dict[str, ExtraKey] = {
    "judge_batch": ExtraKey(int, 16, "prompts per generate() call / records per scorer forward batch", _JUDGES, 1),
    "judge_time_limit": ExtraKey(float, None, "seconds; stop judging after this (what is judged is cached, a "
                                 "rerun resumes)", _JUDGES, 0),
    "judge_max_chars": ExtraKey(int, 3000, "long instructions / responses are cut to this many characters in "
                                "judge prompts", "alpagasus, instag", 1),
    "judge_max_new_tokens": ExtraKey(int, None, "override the judge's own default (alpagasus 16, instag 256)",
                                     "alpagasus, instag", 1),
    "scorer_max_length": ExtraKey(int, 512, "token limit of ifd / deita scorer sequences", "ifd, deita-*", 1),
    "center_features": ExtraKey(bool, True, "subtract the pool mean before cosine geometry",
                                "the feature-geometry baselines (kcenter, facility-location, deita-*, ...)"),
    "coverage_clusters": ExtraKey(int, None, "clusters of the coverage metric", "daar compare", 1),
    "selectors_use_labels": ExtraKey(bool, False, "let methods group by --label-field", "daar compare"),
    "max_gen_toks": ExtraKey(int, None, "generated tokens per answer (the task's own limit otherwise)", "daar eval", 1),
    "code_timeout": ExtraKey(float, None, "seconds per generated program in the sandbox (the sandbox's own "
                             "default otherwise)", "daar eval", positive=True, nullable=False),
    "heldout_rows": ExtraKey(str, None, "START:STOP rows of the pool for the held-out loss", "daar eval",
                             example="6250:6400"),
    "pool_dir": ExtraKey(str, None, "folder of the pool files for the held-out loss", "daar eval", example="DIR"),
}


def extra_default(name: str) -> Any:
    return EXTRAS[name].default


def check_extras(extra: Mapping[str, Any]) -> None:
    """Raise a ConfigError naming the first unknown key or bad value in `extra` and what to give instead."""
    for key, value in extra.items():
        spec = EXTRAS.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, EXTRAS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"--extra {key}: not a known option; {hint}the known ones are {', '.join(EXTRAS)}")
        problem = spec.problem(value)
        if problem is not None:
            default = "leave it out" if spec.default is None else f"leave it out for the default {spec.default}"
            raise ConfigError(f"--extra {key}={value!r}: {problem}; {key} ({spec.help}; used by {spec.used_by}) "
                              f"expects {spec.expects()}. Give e.g. --extra {key}={_example(spec)}, or {default}")


def _example(spec: ExtraKey) -> str:
    if spec.example is not None:
        return spec.example
    if spec.default is not None:
        return str(spec.default).lower() if spec.kind is bool else str(spec.default)
    return {int: "8", float: "60", bool: "true", str: "TEXT"}[spec.kind]
