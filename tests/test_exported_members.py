"""The public surface: ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import importlib
import types

import pytest

import fallom

MODULES = ["fallom", "fallom.testing", "fallom.extractors", "fallom.exporters", "fallom.trace",
           "fallom.evals"]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert list(exported) == sorted(exported)
    for member in exported:
        assert hasattr(module, member), member


def test_every_public_name_is_exported() -> None:
    public = {
        name for name, value in vars(fallom).items()
        if name.isidentifier() and not name.startswith("_")
        and not isinstance(value, types.ModuleType)
    }
    assert public <= set(fallom.__all__)
