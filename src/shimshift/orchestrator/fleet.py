"""Runs NodeMigrations across the fleet: phases, --max-unavailable, PDB-aware order, --max-failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from shimshift.core.fleet import (
    BudgetSnapshot,
    FleetPhase,
    Refusals,
    budgets_to_probe,
    next_start,
    remaining_budgets,
    reserve,
)
from shimshift.orchestrator.node_migration import NodeOutcome, OutcomeStatus

# The longest the loop waits for a PDB to free up without hearing of any change (a lost watch event,
# or no watch at all); kubectl's own retry on HTTP 429 is 5 s (kubernetes/kubectl
# ``pkg/drain/drain.go``, ``evictPods``).
BLOCKED_RECHECK_SECONDS = 5.0

@dataclass
class FleetResult:
    outcomes: list[NodeOutcome] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    stopped_reason: str | None = None

    @property
    def failures(self) -> list[NodeOutcome]:
        bad = {OutcomeStatus.FAILED, OutcomeStatus.ROLLED_BACK, OutcomeStatus.REFUSED}
        return [outcome for outcome in self.outcomes if outcome.status in bad]


async def run_fleet(
    phases: Sequence[FleetPhase],
    *,
    migrate: Callable[[str], Coroutine[Any, Any, NodeOutcome]],
    drain_would_block: Callable[[str, frozenset[str]], Awaitable[bool]],
    max_failures: int,
    budgets: Callable[[], Awaitable[BudgetSnapshot]],
    budgets_changed: Callable[[], Awaitable[None]] | None = None,
    on_outcome: Callable[[NodeOutcome], None] | None = None,
    recheck_seconds: float = BLOCKED_RECHECK_SECONDS,
) -> FleetResult:
    """Migrate every phase in order; stop starting nodes once ``max_failures`` nodes failed.

    Which waiting node may start is decided from ``budgets`` (a cache read, no request); only the node
    about to start is checked with ``drain_would_block`` (the API server's dry run), and only for the
    PDBs the cache leaves at their last disruption (:func:`budgets_to_probe`). While nodes wait
    for a PDB, the loop wakes when ``budgets_changed`` returns (a PDB's status or a pod changed), when a
    node finishes, or after ``recheck_seconds``.

    Nodes refused by preflight count as failures too: an operator who set ``--max-failures 1`` wants
    to look at the first node that could not go, whatever the reason.
    """
    result = FleetResult()
    for phase in phases:
        waiting = list(phase.nodes)
        running: dict[asyncio.Task[NodeOutcome], str] = {}
        refusals = Refusals()
        while waiting or running:
            stop = len(result.failures) >= max_failures
            if stop and result.stopped_reason is None:
                result.stopped_reason = (
                    f"stopped after {len(result.failures)} failed node(s) (--max-failures {max_failures})"
                )
            if stop:
                result.not_started.extend(waiting)
                waiting.clear()
            elif waiting and len(running) < phase.concurrency:
                await _start_nodes(phase, waiting, running, migrate, drain_would_block, await budgets(), refusals)
            if not running and not waiting:
                continue
            await _wait_for_change(running, result, on_outcome, budgets_changed if waiting else None,
                                   recheck_seconds if waiting else None)
        if result.stopped_reason is not None:
            break
    finished = {outcome.node for outcome in result.outcomes}
    for phase in phases:
        for name in phase.nodes:
            if name not in finished and name not in result.not_started:
                result.not_started.append(name)
    return result


async def _start_nodes(
    phase: FleetPhase,
    waiting: list[str],
    running: dict[asyncio.Task[NodeOutcome], str],
    migrate: Callable[[str], Coroutine[Any, Any, NodeOutcome]],
    drain_would_block: Callable[[str, frozenset[str]], Awaitable[bool]],
    snapshot: BudgetSnapshot,
    refusals: Refusals,
) -> None:
    clock = asyncio.get_running_loop().time
    remaining = remaining_budgets(snapshot, in_flight=running.values())
    while start := next_start(
        waiting,
        demands=snapshot.demands,
        remaining=remaining,
        in_flight=len(running),
        limit=phase.concurrency,
        passed_over=refusals.passed_over(snapshot, now=clock()),
    ):
        demand = snapshot.demands.get(start.node, {})
        # A forced start is blocked by definition; asking the server would only confirm it.
        probe = frozenset() if start.forced else budgets_to_probe(demand, remaining)
        if probe and await drain_would_block(start.node, probe):
            refusals.remember(start.node, snapshot, now=clock())
            continue
        waiting.remove(start.node)
        reserve(remaining, demand)
        running[asyncio.create_task(migrate(start.node), name=f"migrate {start.node}")] = start.node


async def _wait_for_change(
    running: dict[asyncio.Task[NodeOutcome], str],
    result: FleetResult,
    on_outcome: Callable[[NodeOutcome], None] | None,
    budgets_changed: Callable[[], Awaitable[None]] | None,
    timeout: float | None,
) -> None:
    """Until a node finishes, the budgets change, or ``timeout``; records the finished nodes."""
    watched: set[asyncio.Future[Any]] = set(running)
    changed = asyncio.ensure_future(budgets_changed()) if budgets_changed is not None else None
    if changed is not None:
        watched.add(changed)
    try:
        if watched:
            await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        elif timeout is not None:
            await asyncio.sleep(timeout)
    finally:
        if changed is not None and not changed.done():
            changed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await changed
    for task in [task for task in running if task.done()]:
        running.pop(task)
        outcome = task.result()
        result.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
