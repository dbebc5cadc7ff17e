"""The selector registry: its lazy module map is true, and a name can belong to one class only."""

from __future__ import annotations

import importlib

import pytest

from daar.cli import main
from daar.selectors import base
from daar.selectors.base import SelectionResult, Selector, register_selector


def test_every_lazy_name_loads_from_its_module_and_is_registered_under_it():
    for name, module in sorted(base._MODULES.items()):
        importlib.import_module(module)
        assert name in base._REGISTRY, f"{module} does not register '{name}'"
        cls = base._REGISTRY[name]
        assert cls.__module__ == module, f"'{name}' is defined in {cls.__module__}, the map says {module}"
        assert cls.name == name and cls.description
        assert isinstance(base.get_selector(name), cls)
    # and nothing registered is missing from the map (it would not load in a fresh process)
    assert set(base._REGISTRY) <= set(base._MODULES)


def test_list_selectors_lists_every_mapped_name(capsys):
    assert main(["list-selectors"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert listed == sorted(base._MODULES)


def test_a_taken_name_is_refused_naming_both_classes(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))  # leave the real registry untouched

    class First(Selector):
        def select(self, ctx, budget):
            return SelectionResult(selected=[])

    class Second(First):
        pass

    register_selector("twice", "first")(First)
    register_selector("twice", "again")(First)  # the same class again (a re-import) is fine
    with pytest.raises(ValueError, match=r"'twice' is registered twice: by .*First and by .*Second"):
        register_selector("twice", "second")(Second)
    assert base._REGISTRY["twice"] is First
