"""Fleet decisions: --max-unavailable parsing, phases and control-plane order, PDB-aware choice.

Matrix: max-unavailable as count / percent / rounding / refusals; control plane first / last / absent;
next-node choice with free, blocked and saturated slots; which PDBs a start asks the server about;
how long a refusal is remembered.
"""

from __future__ import annotations

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.fleet import (
    REFUSAL_MEMORY_SECONDS,
    BudgetSnapshot,
    ControlPlaneOrder,
    FleetNode,
    FleetPhase,
    Refusals,
    Start,
    budgets_to_probe,
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
    assert phases == [FleetPhase("control-plane", ("cp0", "cp1"), 1), FleetPhase("workers", ("w1", "w2"), 5)]


def test_control_plane_last() -> None:
    phases = plan_phases(NODES, control_plane=ControlPlaneOrder.LAST, max_unavailable=2)
    assert [phase.name for phase in phases] == ["workers", "control-plane"]


def test_workers_only() -> None:
    phases = plan_phases([FleetNode("a", False)], control_plane=ControlPlaneOrder.FIRST, max_unavailable=1)
    assert phases == [FleetPhase("workers", ("a",), 1)]


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


def test_only_a_budgets_last_disruption_is_worth_a_dry_run() -> None:
    demand = {"ns/tight": 1, "ns/roomy": 3, "ns/gone": 1}
    assert budgets_to_probe(demand, {"ns/tight": 1, "ns/roomy": 2}) == {"ns/tight", "ns/gone"}
    assert budgets_to_probe({}, {"ns/tight": 1}) == frozenset()


def test_a_refusal_holds_until_its_budget_publishes_another_figure() -> None:
    refusals = Refusals()
    before = BudgetSnapshot(BLOCKED, {"ns/pdb": 1})
    refusals.remember("a", before, now=100.0)
    assert refusals.passed_over(before, now=101.0) == {"a"}
    # Another PDB moving says nothing about a's.
    assert refusals.passed_over(BudgetSnapshot(BLOCKED, {"ns/pdb": 1, "ns/other": 4}), now=102.0) == {"a"}
    assert refusals.passed_over(BudgetSnapshot(BLOCKED, {"ns/pdb": 2}), now=103.0) == frozenset()
    assert refusals.passed_over(before, now=104.0) == frozenset(), "forgotten once its budget moved"


def test_a_refusal_nothing_explains_is_asked_again_after_a_while() -> None:
    refusals = Refusals()
    snapshot = BudgetSnapshot(BLOCKED, {"ns/pdb": 1})
    refusals.remember("b", snapshot, now=0.0)
    assert refusals.passed_over(snapshot, now=REFUSAL_MEMORY_SECONDS - 0.1) == {"b"}
    assert refusals.passed_over(snapshot, now=REFUSAL_MEMORY_SECONDS) == frozenset()
