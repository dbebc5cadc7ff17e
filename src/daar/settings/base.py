"""One place per setting: `setting()` declares a field's default, help, choices and bounds together.

Everything else is generated from that declaration: the CLI flags and their help (with the
default appended, so no help text repeats a default by hand), the YAML / keyword checks and the
generic part of `validate()`. A `Section` is a frozen dataclass of one concern's settings;
`daar.settings.config.Config` composes them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

from daar.errors import ConfigError

_KIND_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping"}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
# Integers reach torch and numpy as int64; a larger value would overflow there, long after validation.
INT_LIMIT = 2**63 - 1


def setting(default: Any = None, *, help: str, choices: Sequence[str] | None = None, metavar: str | None = None,
            minimum: float | None = None, flag: str | None = None, default_text: str | None = None,
            factory: Callable[[], Any] | None = None) -> Any:
    """A settings field. `help` says what the setting does, never its default (the parser adds it).

    `default_text` describes a default that is computed elsewhere (a None default resolved at run
    time, e.g. "--model"); `minimum` is checked by `Section.validate`; `flag` overrides the CLI
    flag name (a bool field defaulting to True gets `--no-NAME`).
    """
    meta = {"help": help, "choices": tuple(choices) if choices else None, "metavar": metavar,
            "minimum": minimum, "flag": flag, "default_text": default_text}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_name(name: str) -> str:
    """The CLI flag of a field name: `max_new_tokens` -> `--max-new-tokens`."""
    return "--" + name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """What the parser generator, the coercion and the validators need to know about one field."""

    name: str
    section: str
    kind: type  # int | float | str | bool | dict
    optional: bool  # None is a valid value
    default: Any
    help: str
    choices: tuple[str, ...] | None
    metavar: str | None
    minimum: float | None
    default_text: str | None
    custom_flag: str | None

    @property
    def flag(self) -> str:
        if self.custom_flag:
            return self.custom_flag
        if self.kind is bool and self.default is True:
            return flag_name(f"no_{self.name}")
        return flag_name(self.name)

    @property
    def default_label(self) -> str | None:
        """How `--help` shows the default; None when there is nothing worth showing (unset, off, empty)."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.default is False or self.default == {}:
            return None
        if self.default is True:
            return "on"
        return str(self.default)

    def coerce(self, value: Any, source: str) -> Any:
        """`value` as this field's type (YAML gives `layer: 3` as an int, `lr: 1e-5` as a string)."""
        where = f"{source}: '{self.name}'"
        if value is None:
            if self.optional:
                return None
            raise ConfigError(f"{where} cannot be empty; give {_KIND_WORDS[self.kind]} or leave the key out")
        kind = self.kind
        try:
            if kind is bool:
                if isinstance(value, bool):
                    return value
                if str(value).strip().lower() in _TRUE | _FALSE:
                    return str(value).strip().lower() in _TRUE
                raise ValueError
            if isinstance(value, bool):  # bool is an int subclass: `epochs: true` is a mistake
                raise ValueError
            if kind is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                return int(value) if not isinstance(value, str) else int(value.strip())
            if kind is float:
                return float(value)
            if kind is str:
                if isinstance(value, str | int | float):
                    return str(value)
                raise ValueError
            if kind is dict:
                if isinstance(value, Mapping):
                    return dict(value)
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"{where} expects {_KIND_WORDS[kind]}, got {value!r}") from None
        return value


def _kind(hint: Any) -> tuple[type, bool]:
    """(base type, optional) of an annotation such as `int | None` or `dict[str, Any]`."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _kind(args[0])[0], True
    if origin is dict or hint is dict:
        return dict, False
    if hint in (int, float, str, bool):
        return hint, False
    raise TypeError(f"settings fields must be int, float, str, bool or dict (optionally | None), not {hint}")


@functools.cache
def _infos(cls: type[Section]) -> dict[str, FieldInfo]:
    hints = typing.get_type_hints(cls)
    out: dict[str, FieldInfo] = {}
    for f in dataclasses.fields(cls):
        kind, optional = _kind(hints[f.name])
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        m = f.metadata
        if "help" not in m:
            raise TypeError(f"{cls.__name__}.{f.name} must be declared with setting(...)")
        out[f.name] = FieldInfo(f.name, cls.NAME, kind, optional or default is None, default, m["help"],
                                m["choices"], m["metavar"], m["minimum"], m["default_text"], m["flag"])
    return out


class Section:
    """Base of one concern's frozen settings dataclass (`NAME` is its attribute on Config).

    `validate()` checks every field's declared choices and minimum; subclasses add their own rules
    after calling `super().validate()`. Errors name the flag and say what to do.
    """

    NAME: ClassVar[str]

    @classmethod
    def infos(cls) -> dict[str, FieldInfo]:
        return _infos(cls)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.infos())

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring: the argparse group's description."""
        return (cls.__doc__ or "").strip().splitlines()[0]

    def validate(self) -> Self:
        for name, info in self.infos().items():
            value = getattr(self, name)
            if value is None:
                continue
            if info.kind is float and not math.isfinite(value):
                raise ConfigError(f"{info.flag} must be a finite number (got {value})")
            if info.kind is int and abs(value) > INT_LIMIT:
                raise ConfigError(f"{info.flag} {value} is too large (the limit is {INT_LIMIT})")
            if info.choices and value not in info.choices:
                raise ConfigError(f"{info.flag} '{value}' is not one of: {', '.join(info.choices)}")
            if info.minimum is not None and value < info.minimum:
                raise ConfigError(f"{info.flag} must be >= {info.minimum:g} (got {value})")
        return self

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` (field names of this section), coerced to the fields' types."""
        infos = self.infos()
        unknown = sorted(set(changes) - set(infos))
        if unknown:
            raise ConfigError(f"{self.NAME}: unknown setting(s) {', '.join(unknown)}. "
                              f"Known: {', '.join(infos)}")
        typed = {k: infos[k].coerce(v, self.NAME) for k, v in changes.items()}
        return dataclasses.replace(self, **typed)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def bad(name: str, problem: str) -> ConfigError:
    """A ConfigError naming the flag of field `name`: `--tau must be in (0, 1] (got 2)`."""
    return ConfigError(f"{flag_name(name)} {problem}")


def check_range(section: Section, name: str, lo: float, hi: float, *, lo_open: bool = False,
                hi_open: bool = False) -> None:
    """Raise unless lo <= value <= hi (with open ends where asked); None passes."""
    value = getattr(section, name)
    if value is None:
        return
    ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise bad(name, f"must be in {interval} (got {value})")


def env_int(name: str, minimum: int = 1, environ: Mapping[str, str] | None = None) -> int | None:
    """The integer in environment variable `name`, None when unset; anything else is a ConfigError."""
    import os

    text = (os.environ if environ is None else environ).get(name, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.lstrip("+").isdigit()) or int(text) < minimum or int(text) > INT_LIMIT:
        raise ConfigError(f"environment variable {name}={text!r} must be an integer >= {minimum}; "
                          f"fix it or unset it (unset {name})")
    return int(text)
