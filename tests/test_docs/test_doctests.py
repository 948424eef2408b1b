"""The docstring examples of the package run as doctests (those marked
``+SKIP`` need a trained run or a dataset and are only read)."""
import doctest
import importlib
import pkgutil

import pytest

import mmsupertickets

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(mmsupertickets.__path__,
                                          'mmsupertickets.'))


@pytest.mark.parametrize('name', MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS,
                             verbose=False, report=True)
    assert result.failed == 0, f'{result.failed} example(s) failed in {name}'


def test_examples_are_found():
    finder = doctest.DocTestFinder()
    examples = sum(
        len(t.examples) for name in MODULES
        for t in finder.find(importlib.import_module(name)))
    assert examples > 50, examples
