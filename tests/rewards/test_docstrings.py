"""The docstring examples of the rewards and metrics modules run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import synaray.metrics
import synaray.rewards

PACKAGES = (synaray.rewards, synaray.metrics)
MODULES = [package.__name__ for package in PACKAGES] + sorted(
    f"{package.__name__}.{info.name}"
    for package in PACKAGES for info in pkgutil.iter_modules(package.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
