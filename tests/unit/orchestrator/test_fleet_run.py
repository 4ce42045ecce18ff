"""The fleet loop: concurrency limit, PDB-aware ordering and --max-failures.

The migrate, dry-run and budget callables here are plain coroutines standing in for one node's work and
the cluster's cache; the real per-node work is exercised end to end in tests/e2e and on the kwok rig.
"""

from __future__ import annotations

import asyncio

from shimshift.core.fleet import BudgetSnapshot, FleetPhase
from shimshift.orchestrator.fleet import run_fleet
from shimshift.orchestrator.node_migration import NodeOutcome, OutcomeStatus


async def no_budgets() -> BudgetSnapshot:
    return BudgetSnapshot({}, {})


async def test_never_more_than_the_limit_at_once() -> None:
    active = 0
    peak = 0

    async def migrate(name: str) -> NodeOutcome:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return NodeOutcome(name, OutcomeStatus.MIGRATED)

    async def never_blocked(name: str, budgets: frozenset[str]) -> bool:
        return False

    phases = [FleetPhase("control-plane", ("cp",), 1), FleetPhase("workers", tuple(f"w{i}" for i in range(7)), 3)]
    result = await run_fleet(
        phases, migrate=migrate, drain_would_block=never_blocked, budgets=no_budgets, max_failures=1
    )
    assert peak == 3
    assert result.outcomes[0].node == "cp"
    assert len(result.outcomes) == 8 and not result.not_started


async def test_blocked_node_goes_after_the_free_ones() -> None:
    order: list[str] = []
    server_refuses = {"a"}
    allowed = {"ns/pdb": 1, "ns/other": 3}
    asked: list[tuple[str, frozenset[str]]] = []

    async def migrate(name: str) -> NodeOutcome:
        order.append(name)
        await asyncio.sleep(0.01)
        server_refuses.discard("a")  # another node's migration frees the PDB...
        allowed["ns/other"] += 1  # ...and a's other PDB publishes a new figure
        return NodeOutcome(name, OutcomeStatus.MIGRATED)

    async def would_block(name: str, budgets: frozenset[str]) -> bool:
        asked.append((name, budgets))
        return name in server_refuses

    async def budgets() -> BudgetSnapshot:
        return BudgetSnapshot({"a": {"ns/pdb": 1, "ns/other": 1}}, dict(allowed))

    result = await run_fleet(
        [FleetPhase("workers", ("a", "b"), 1)],
        migrate=migrate,
        drain_would_block=would_block,
        budgets=budgets,
        max_failures=1,
        recheck_seconds=0.01,
    )
    assert order == ["b", "a"]
    assert result.stopped_reason is None
    # b has no PDB to ask about; a only about the PDB at its last disruption, refused, and asked again
    # once one of its PDBs moved.
    assert asked == [("a", frozenset({"ns/pdb"})), ("a", frozenset({"ns/pdb"}))]


async def test_a_refused_node_is_not_asked_again_while_its_budget_stands_still() -> None:
    asked: list[str] = []
    release = asyncio.Event()

    async def migrate(name: str) -> NodeOutcome:
        if name == "b":
            await release.wait()
        return NodeOutcome(name, OutcomeStatus.MIGRATED)

    async def would_block(name: str, budgets: frozenset[str]) -> bool:
        asked.append(name)
        return not release.is_set()

    async def budgets() -> BudgetSnapshot:
        return BudgetSnapshot({"a": {"ns/pdb": 1}}, {"ns/pdb": 2 if release.is_set() else 1})

    async def finish_b_later() -> None:
        await asyncio.sleep(0.3)  # thirty wake-ups of the loop at recheck_seconds=0.01
        release.set()

    releaser = asyncio.create_task(finish_b_later())
    result = await run_fleet(
        [FleetPhase("workers", ("a", "b"), 2)],
        migrate=migrate,
        drain_would_block=would_block,
        budgets=budgets,
        max_failures=1,
        recheck_seconds=0.01,
    )
    await releaser
    assert {outcome.node for outcome in result.outcomes} == {"a", "b"}
    # Refused once; then its PDB allowed 2, which needs no dry run at all.
    assert asked == ["a"]


async def test_budgets_with_room_cost_no_dry_run() -> None:
    async def migrate(name: str) -> NodeOutcome:
        return NodeOutcome(name, OutcomeStatus.MIGRATED)

    async def would_block(name: str, budgets: frozenset[str]) -> bool:
        raise AssertionError(f"dry run of {name} for {sorted(budgets)} although every PDB has room")

    async def budgets() -> BudgetSnapshot:
        return BudgetSnapshot({"a": {"ns/p": 1}, "b": {"ns/p": 1}, "c": {"ns/q": 2}}, {"ns/p": 5, "ns/q": 4})

    result = await run_fleet(
        [FleetPhase("workers", ("a", "b", "c"), 3)],
        migrate=migrate,
        drain_would_block=would_block,
        budgets=budgets,
        max_failures=1,
    )
    assert len(result.outcomes) == 3


async def test_stops_starting_nodes_after_max_failures() -> None:
    async def migrate(name: str) -> NodeOutcome:
        status = OutcomeStatus.REFUSED if name == "a" else OutcomeStatus.MIGRATED
        return NodeOutcome(name, status, "cri-dockerd stopped")

    async def never_blocked(name: str, budgets: frozenset[str]) -> bool:
        return False

    result = await run_fleet(
        [FleetPhase("workers", ("a", "b", "c"), 1)],
        migrate=migrate,
        drain_would_block=never_blocked,
        budgets=no_budgets,
        max_failures=1,
    )
    assert [outcome.node for outcome in result.outcomes] == ["a"]
    assert result.not_started == ["b", "c"]
    assert result.stopped_reason is not None and "--max-failures 1" in result.stopped_reason
