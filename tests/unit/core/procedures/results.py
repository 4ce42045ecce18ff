"""Whether a value is what an action declares it returns (core/actions.py ``returns``), for the tests' worlds:
a world that answers an action with another shape than the executor's ports would is caught where it answers."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from shimshift.core import actions as act


def conforms(value: object, expected: object) -> bool:
    """``value`` is an instance of the type expression ``expected`` (unions, None, and the element types of
    list, tuple and Mapping)."""
    if expected is None:
        return value is None
    if expected is Any:
        return True
    origin = typing.get_origin(expected)
    if origin in (types.UnionType, typing.Union):
        return any(conforms(value, option) for option in typing.get_args(expected))
    if origin is None:
        assert isinstance(expected, type), expected
        return isinstance(value, expected)
    arguments = typing.get_args(expected)
    if not isinstance(value, origin):
        return False
    if origin is tuple:
        assert len(arguments) == 2 and arguments[1] is Ellipsis, expected  # only tuple[X, ...] is declared
        return all(conforms(item, arguments[0]) for item in value)
    if origin is list:
        return all(conforms(item, arguments[0]) for item in value)
    if origin is Mapping:
        assert isinstance(value, Mapping)
        return all(conforms(k, arguments[0]) and conforms(v, arguments[1]) for k, v in value.items())
    raise AssertionError(f"no check for {expected}")


def check_result(action: act.Action, value: object) -> None:
    expected = type(action).returns
    assert conforms(value, expected), f"{action!r} answered {value!r}, but it returns {expected}"
