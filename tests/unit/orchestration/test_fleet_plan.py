"""Fleet decisions: --max-unavailable parsing, phases and control-plane order, PDB-aware choice.

Matrix: max-unavailable as count / percent / rounding / refusals; control plane first / last / absent;
next-node choice with free, blocked and saturated slots.
"""

from __future__ import annotations

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.fleet import (
    ControlPlaneOrder,
    FleetNode,
    Phase,
    Start,
    next_start,
    parse_max_unavailable,
    plan_phases,
)


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [("1", 10, 1), ("3", 10, 3), ("25%", 10, 2), ("100%", 7, 7), ("10%", 3, 1), (" 2 ", 5, 2)],
)
def test_max_unavailable_counts(value: str, total: int, expected: int) -> None:
    assert parse_max_unavailable(value, total=total) == expected


@pytest.mark.parametrize("value", ["0", "abc", "-1", "150%", "1.5", ""])
def test_max_unavailable_refuses(value: str) -> None:
    with pytest.raises(Refusal) as caught:
        parse_max_unavailable(value, total=10)
    assert "--max-unavailable" in str(caught.value)


NODES = [FleetNode("w2", False), FleetNode("cp1", True), FleetNode("w1", False), FleetNode("cp0", True)]


def test_control_plane_first_runs_alone() -> None:
    phases = plan_phases(NODES, control_plane=ControlPlaneOrder.FIRST, max_unavailable=5)
    assert phases == [Phase("control-plane", ("cp0", "cp1"), 1), Phase("workers", ("w1", "w2"), 5)]


def test_control_plane_last() -> None:
    phases = plan_phases(NODES, control_plane=ControlPlaneOrder.LAST, max_unavailable=2)
    assert [phase.name for phase in phases] == ["workers", "control-plane"]


def test_workers_only() -> None:
    phases = plan_phases([FleetNode("a", False)], control_plane=ControlPlaneOrder.FIRST, max_unavailable=1)
    assert phases == [Phase("workers", ("a",), 1)]


BLOCKED = {"a": {"ns/pdb": 1}, "b": {"ns/pdb": 1}}


def test_choose_prefers_unblocked_node() -> None:
    start = next_start(["a", "b", "c"], demands=BLOCKED, remaining={"ns/pdb": 0}, in_flight=1, limit=3)
    assert start == Start("c")


def test_choose_waits_when_only_blocked_nodes_and_another_runs() -> None:
    assert next_start(["a"], demands=BLOCKED, remaining={"ns/pdb": 0}, in_flight=1, limit=3) is None


def test_choose_starts_blocked_node_when_nothing_runs() -> None:
    start = next_start(["a", "b"], demands=BLOCKED, remaining={"ns/pdb": 0}, in_flight=0, limit=1)
    assert start == Start("a", forced=True)


def test_choose_skips_nodes_the_server_found_blocked() -> None:
    start = next_start(["a", "b"], demands={}, remaining={}, in_flight=0, limit=2, passed_over=frozenset({"a"}))
    assert start == Start("b")


def test_choose_respects_limit() -> None:
    assert next_start(["a"], demands={}, remaining={}, in_flight=2, limit=2) is None
