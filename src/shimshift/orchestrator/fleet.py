"""Runs NodeMigrations across the fleet: phases, --max-unavailable, PDB-aware order, --max-failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from shimshift.core.fleet import Phase, choose_next
from shimshift.orchestrator.node_migration import NodeOutcome, NodeStatus

# Polling for a PDB to free up is cheap (one dry-run eviction per pod); once every few seconds matches
# kubectl's own 5 s retry on HTTP 429 (../shared/reference/peer-tools.md §1.4).
BLOCKED_RECHECK_SECONDS = 5.0


@dataclass
class FleetResult:
    outcomes: list[NodeOutcome] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    stopped_reason: str | None = None

    @property
    def failures(self) -> list[NodeOutcome]:
        bad = {NodeStatus.FAILED, NodeStatus.ROLLED_BACK, NodeStatus.REFUSED}
        return [outcome for outcome in self.outcomes if outcome.status in bad]


async def run_fleet(
    phases: Sequence[Phase],
    *,
    migrate: Callable[[str], Coroutine[Any, Any, NodeOutcome]],
    drain_would_block: Callable[[str], Awaitable[bool]],
    max_failures: int,
    on_outcome: Callable[[NodeOutcome], None] | None = None,
    recheck_seconds: float = BLOCKED_RECHECK_SECONDS,
) -> FleetResult:
    """Migrate every phase in order; stop starting nodes once ``max_failures`` nodes failed.

    Nodes refused by preflight count as failures too: an operator who set ``--max-failures 1`` wants
    to look at the first node that could not go, whatever the reason.
    """
    result = FleetResult()
    for phase in phases:
        waiting = list(phase.nodes)
        running: dict[asyncio.Task[NodeOutcome], str] = {}
        while waiting or running:
            stop = len(result.failures) >= max_failures
            if stop and result.stopped_reason is None:
                result.stopped_reason = (
                    f"stopped after {len(result.failures)} failed node(s) (--max-failures {max_failures})"
                )
            if not stop:
                blocked = (
                    frozenset([name for name in waiting if await drain_would_block(name)]) if waiting else frozenset()
                )
                while name := choose_next(waiting, blocked=blocked, in_flight=len(running), limit=phase.concurrency):
                    waiting.remove(name)
                    running[asyncio.create_task(migrate(name), name=f"migrate {name}")] = name
            else:
                result.not_started.extend(waiting)
                waiting.clear()
            if not running:
                if waiting:
                    await asyncio.sleep(recheck_seconds)
                continue
            done, _ = await asyncio.wait(
                running, timeout=recheck_seconds if waiting else None, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                running.pop(task)
                outcome = task.result()
                result.outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
        if result.stopped_reason is not None:
            break
    for phase in phases:
        for name in phase.nodes:
            if name not in {outcome.node for outcome in result.outcomes} and name not in result.not_started:
                result.not_started.append(name)
    return result
