"""The public surface, pinned (as httpx's tests/test_exported_members.py does): what the package
exports is exactly ``__all__``, and every exception a user can meet is in it."""

from __future__ import annotations
import __future__

import inspect
import typing
from types import ModuleType

import mistral_magic
from mistral_magic import errors

NOT_EXPORTED = (typing.Any, typing.TYPE_CHECKING, __future__.annotations)  # the module's own helpers


def test_the_package_exports_exactly_its_all():
    public = {
        name
        for name, value in vars(mistral_magic).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and value not in NOT_EXPORTED
    }
    assert sorted(public) == sorted(set(mistral_magic.__all__) - {"__version__"})
    assert all(hasattr(mistral_magic, name) for name in mistral_magic.__all__)


def test_every_exception_of_the_tree_is_exported():
    tree = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, errors.MistralMagicError)
        and value.__module__ == errors.__name__
    }
    assert tree <= set(mistral_magic.__all__), sorted(tree - set(mistral_magic.__all__))
    assert all(getattr(mistral_magic, name) is getattr(errors, name) for name in tree)


def test_the_tree_in_the_docstring_names_every_exception():
    drawn = set(errors.__doc__.split())
    tree = [name for name in mistral_magic.__all__ if inspect.isclass(getattr(mistral_magic, name))]
    assert [name for name in tree if name not in drawn] == []
