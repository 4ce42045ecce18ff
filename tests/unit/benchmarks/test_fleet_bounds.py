"""P2's lower bounds (benchmarks/fleet_bounds.py) on hand-made runs.

Matrix: the busy integral of a PDB's allowance (at rest, one eviction, overlapping evictions, samples
outside the run, a coalesced watch); one PDB's chain (maxUnavailable 1, a wider allowance, nothing to
evict); the whole bound (work bound alone without PDB facts, the PDB chain above the work bound, the old
waves bound kept for comparison).
"""

from __future__ import annotations

import pytest

from benchmarks.fleet_bounds import BudgetFacts, budget_chain, busy_seconds, fleet_bounds, measured_budget


def test_a_budget_at_rest_is_never_busy() -> None:
    assert busy_seconds([(0.0, 1), (5.0, 1)], allowed=1, start=1.0, end=10.0) == 0.0


def test_one_eviction_holds_the_allowance_until_the_status_says_allowed_again() -> None:
    samples = [(0.0, 1), (2.0, 0), (5.5, 1)]
    assert busy_seconds(samples, allowed=1, start=1.0, end=10.0) == pytest.approx(3.5)


def test_overlapping_evictions_count_once_each() -> None:
    # Allowance 3: one eviction at 1 s, two more at 2 s; back one at a time at 4, 5 and 6 s.
    samples = [(0.0, 3), (1.0, 2), (2.0, 0), (4.0, 1), (5.0, 2), (6.0, 3)]
    assert busy_seconds(samples, allowed=3, start=0.0, end=10.0) == pytest.approx(1 + 2 * 3 + 2 * 1 + 1)


def test_the_integral_is_cut_at_the_run_s_ends() -> None:
    samples = [(0.0, 1), (2.0, 0), (12.0, 1)]  # the last recovery ends after the run
    assert busy_seconds(samples, allowed=1, start=0.0, end=10.0) == pytest.approx(8.0)
    assert busy_seconds([(-3.0, 0), (1.0, 1)], allowed=1, start=0.0, end=10.0) == pytest.approx(1.0)


def test_a_chain_of_max_unavailable_one_is_one_recovery_per_pod_but_the_last() -> None:
    facts = BudgetFacts("db-0", pods=4, allowed=1, evictions=5, busy_seconds=15.0)
    assert facts.recovery == pytest.approx(3.0)
    # Four evictions in a row, three recoveries between them, then the last node's restart.
    assert budget_chain(facts, tail=2.5) == pytest.approx(3 * 3.0 + 2.5)


def test_a_wider_allowance_evicts_in_rounds() -> None:
    facts = BudgetFacts("web-0", pods=280, allowed=28, evictions=280, busy_seconds=280 * 2.0)
    assert facts.rounds == 10
    assert budget_chain(facts, tail=1.0) == pytest.approx(9 * 2.0 + 1.0)
    assert budget_chain(BudgetFacts("web-1", pods=29, allowed=28, evictions=29, busy_seconds=29.0), tail=0) == 1.0


def test_a_budget_with_nothing_to_evict_bounds_nothing() -> None:
    assert budget_chain(BudgetFacts("idle", pods=0, allowed=1, evictions=0, busy_seconds=0.0), tail=9.0) == 0.0
    assert budget_chain(BudgetFacts("stuck", pods=3, allowed=0, evictions=0, busy_seconds=0.0), tail=9.0) == 0.0


STEPS = {
    "a": {"cordon": 0.2, "drain": 4.0, "restart-kubelet": 1.0, "verify": 2.0},
    "b": {"drain": 6.0, "restart-kubelet": 1.5, "verify": 2.0},
    "c": {"drain": 2.0, "restart-kubelet": 1.0, "verify": 1.5},
    "d": {"drain": 3.0, "restart-kubelet": 1.0, "verify": 2.0},
}


def test_without_pdb_facts_the_bound_is_the_work_bound() -> None:
    bounds = fleet_bounds(STEPS, ["a", "b", "c", "d"], 2)
    # Essentials 7, 9.5, 4.5, 6: work max(27 / 2, 9.5); waves max(7, 9.5) + max(4.5, 6).
    assert bounds.work == pytest.approx(13.5)
    assert bounds.waves == pytest.approx(15.5)
    assert bounds.tail == pytest.approx(2.5)
    assert bounds.budgets == 0.0
    assert bounds.bound == pytest.approx(13.5)


def test_a_long_pdb_chain_sets_the_bound() -> None:
    slow = BudgetFacts("db-0", pods=6, allowed=1, evictions=6, busy_seconds=6 * 4.0)
    quick = BudgetFacts("web-0", pods=6, allowed=3, evictions=6, busy_seconds=6 * 1.0)
    bounds = fleet_bounds(STEPS, ["a", "b", "c", "d"], 2, [quick, slow])
    assert bounds.budgets == pytest.approx(5 * 4.0 + 2.5)
    assert bounds.budget == "db-0"
    assert bounds.bound == pytest.approx(22.5)


def test_the_recovery_counts_completed_holds_only() -> None:
    # A StatefulSet's PDB: the first eviction held for 119 s (the recreated pod keeps its name, so the
    # disruption controller lists it as disrupted for its 2-minute timeout); the second was still held
    # when the run ended.
    samples = [(0.0, 1), (1.3, 0), (120.3, 1), (142.7, 0)]
    facts = measured_budget("db-2", pods=2, samples=samples, evictions=[1.0, 142.5], start=0.0, end=146.0)
    assert (facts.allowed, facts.evictions) == (1, 1)
    assert facts.recovery == pytest.approx(119.0)


def test_with_no_hold_completed_the_whole_run_counts() -> None:
    samples = [(0.0, 1), (2.0, 0)]
    facts = measured_budget("db-0", pods=2, samples=samples, evictions=[1.9], start=0.0, end=10.0)
    assert facts.evictions == 1
    assert facts.busy_seconds == pytest.approx(8.0)
