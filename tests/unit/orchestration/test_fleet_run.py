"""The fleet loop: concurrency limit, PDB-aware ordering and --max-failures.

The migrate and dry-run callables here are plain coroutines standing in for one node's work; the
real per-node work is exercised end to end in tests/e2e.
"""

from __future__ import annotations

import asyncio

from shimshift.core.fleet import Phase
from shimshift.orchestrator.fleet import run_fleet
from shimshift.orchestrator.node_migration import NodeOutcome, NodeStatus


async def test_never_more_than_the_limit_at_once() -> None:
    active = 0
    peak = 0

    async def migrate(name: str) -> NodeOutcome:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return NodeOutcome(name, NodeStatus.MIGRATED)

    async def never_blocked(name: str) -> bool:
        return False

    phases = [Phase("control-plane", ("cp",), 1), Phase("workers", tuple(f"w{i}" for i in range(7)), 3)]
    result = await run_fleet(phases, migrate=migrate, drain_would_block=never_blocked, max_failures=1)
    assert peak == 3
    assert result.outcomes[0].node == "cp"
    assert len(result.outcomes) == 8 and not result.not_started


async def test_blocked_node_goes_after_the_free_ones() -> None:
    order: list[str] = []
    blocked = {"a"}

    async def migrate(name: str) -> NodeOutcome:
        order.append(name)
        await asyncio.sleep(0.01)
        blocked.discard("a")  # another node's migration frees the PDB
        return NodeOutcome(name, NodeStatus.MIGRATED)

    async def would_block(name: str) -> bool:
        return name in blocked

    result = await run_fleet(
        [Phase("workers", ("a", "b"), 1)],
        migrate=migrate,
        drain_would_block=would_block,
        max_failures=1,
        recheck_seconds=0.01,
    )
    assert order == ["b", "a"]
    assert result.stopped_reason is None


async def test_stops_starting_nodes_after_max_failures() -> None:
    async def migrate(name: str) -> NodeOutcome:
        return NodeOutcome(name, NodeStatus.REFUSED if name == "a" else NodeStatus.MIGRATED, "cri-dockerd stopped")

    async def never_blocked(name: str) -> bool:
        return False

    result = await run_fleet(
        [Phase("workers", ("a", "b", "c"), 1)],
        migrate=migrate,
        drain_would_block=never_blocked,
        max_failures=1,
    )
    assert [outcome.node for outcome in result.outcomes] == ["a"]
    assert result.not_started == ["b", "c"]
    assert result.stopped_reason is not None and "--max-failures 1" in result.stopped_reason
