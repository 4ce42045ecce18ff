"""The test tiers, checked at collection: a test that needs the Docker lab carries the `e2e` marker.

`-m "not e2e"` is how a run leaves the lab out, so an unmarked test that needs it would start (or wait
for) the one shared lab in a run that promised not to. "Needs the lab" is read from pytest's own
fixture closure: the test asks for `lab` or `lab_lock` (tests/e2e/conftest.py), directly or through any
fixture that depends on them (`node_state`, `upgrade_lab`, ...). Loaded by tests/conftest.py for every run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterable

# The fixtures that hand out the lab; every other lab fixture depends on one of them.
LAB_FIXTURES = frozenset({"lab", "lab_lock"})


def unmarked_lab_tests(items: Iterable[pytest.Item]) -> list[str]:
    """The node ids of the tests that reach a lab fixture but carry no `e2e` marker."""
    return [
        item.nodeid
        for item in items
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("e2e") is None
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unmarked = unmarked_lab_tests(items)
    if unmarked:
        raise pytest.UsageError(
            "these tests use the lab but are not marked e2e (add `pytestmark = pytest.mark.e2e`): "
            + ", ".join(unmarked)
        )
