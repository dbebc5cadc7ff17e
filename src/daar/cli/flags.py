"""Argparse flags generated from the settings metadata (daar.settings): one field = one flag everywhere.

A command names the sections (and, where it takes only some, the fields) it uses; each section
becomes an argument group. Unset flags stay unset (argparse.SUPPRESS), so values from `--config`
YAML and the defaults show through; the help of each flag gets "(default: X)" from the field.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from daar.settings import SECTIONS, FieldInfo

S = argparse.SUPPRESS


class KeyValue(argparse.Action):
    """`--extra key=value` (repeatable) -> a dict; values are read as YAML scalars (600 -> int)."""

    def __call__(self, parser, namespace, values, option_string=None):
        import yaml

        key, sep, value = str(values).partition("=")
        if not sep or not key.strip():
            parser.error(f"{option_string} expects KEY=VALUE, got '{values}'")
        current = dict(getattr(namespace, self.dest, None) or {})
        current[key.strip().replace("-", "_")] = yaml.safe_load(value) if value.strip() else None
        setattr(namespace, self.dest, current)


def help_text(info: FieldInfo) -> str:
    """The field's help with its default appended, escaped for argparse's %-formatting."""
    label = info.default_label
    text = f"{info.help} (default: {label})" if label is not None else info.help
    return text.replace("%", "%%")


def _typed(info: FieldInfo):
    """argparse `type=` for a number field: the message names what is expected, the value and an example."""
    def convert(text: str):
        try:
            return info.kind(text)
        except ValueError:
            example = "a whole number, e.g. 8" if info.kind is int else "a number, e.g. 0.5 or 1e-5"
            raise argparse.ArgumentTypeError(f"expects {example}; got {text!r}") from None

    convert.__name__ = info.kind.__name__  # argparse names the type in some messages
    return convert


def add_field(group: Any, info: FieldInfo, choices: Sequence[str] | None = None) -> None:
    """One flag for one field: its type, choices, metavar and help all come from the field."""
    kwargs: dict[str, Any] = {"dest": info.name, "default": S, "help": help_text(info)}
    if info.kind is bool:
        kwargs["action"] = "store_false" if info.default is True else "store_true"
    elif info.kind is dict:
        kwargs.update(action=KeyValue, metavar=info.metavar or "KEY=VALUE")
    else:
        if info.kind in (int, float):
            kwargs["type"] = _typed(info)
        if choices or info.choices:
            kwargs["choices"] = list(choices or info.choices or ())
        elif info.metavar or info.kind is float:
            kwargs["metavar"] = info.metavar or "X"
    group.add_argument(info.flag, **kwargs)


def add_settings(parser: argparse.ArgumentParser, sections: Mapping[str, Iterable[str] | None],
                 choices: Mapping[str, Sequence[str]] | None = None) -> None:
    """Argument groups for `sections` ({section: field names, or None for all of its fields}).

    `choices` gives a field choices known only above the settings layer (e.g. --until's stages).
    """
    for name, fields in sections.items():
        cls = SECTIONS[name]
        group = parser.add_argument_group(name, cls.summary())
        infos = cls.infos()
        for field in fields if fields is not None else infos:
            add_field(group, infos[field], (choices or {}).get(field))


def common(parser: argparse.ArgumentParser) -> None:
    """--config and --quiet: every command that takes settings has them."""
    parser.add_argument("--config", metavar="YAML", help="YAML file of settings: flat keys (these flag names) "
                        "or nested sections (features: {layer: 3}); flags override it")
    quiet(parser)


def quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


# The sections and fields of a selection run (shared by `daar select` and `daar compare`).
SELECTION_SECTIONS: dict[str, Sequence[str] | None] = {
    "input": None, "lm": None, "features": None, "synthesis": None, "probes": None,
    "selection": ("method", "budget", "strategy", "major", "min_naming_margin", "force_naming", "with_scores",
                  "until", "label_field"),
    "baselines": None, "run": None,
}
