"""One node's migration: the pure procedure (core/procedures/migration.py) performed by the executor.

The story of what happens to a node, step by step, is told in core/procedures/migration.py; this
module only binds it to the node's ports for the session and the fleet.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shimshift.core.findings import Finding
from shimshift.core.node_plan import NodePlan
from shimshift.core.procedures.migration import (
    CRI_DOCKERD_ENDPOINT,
    CRI_DOCKERD_SOCKET,
    MigrationProcedure,
    MigrationSettings,
    NodeOutcome,
    OutcomeStatus,
    Planner,
    PreflightFacts,
    StepFailed,
)
from shimshift.core.procedures.upgrade import UpgradeProcedure, UpgradeSettings
from shimshift.core.steps import MIGRATION_STEPS, ROLLBACK_PREFIX
from shimshift.orchestrator.executor import NodeExecutor
from shimshift.orchestrator.ports import ClusterPort, CriPort, JournalPort, NodePort, StepEvent


@dataclass
class NodeMigration:
    node: str
    cluster: ClusterPort
    access: NodePort
    cri: CriPort
    journal: JournalPort
    planner: Planner
    settings: MigrationSettings = field(default_factory=MigrationSettings)
    on_event: Callable[[StepEvent], None] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Set for `shimshift upgrade`: the same node, the upgrade's procedure.
    upgrade: UpgradeSettings | None = None
    copy: Callable[[str], Awaitable[None]] | None = None  # the run's copy on the cluster (cluster_run.py)

    @property
    def procedure(self) -> MigrationProcedure:
        if self.upgrade is not None:
            return UpgradeProcedure(self.node, self.planner, self.settings, upgrade=self.upgrade)
        return MigrationProcedure(self.node, self.planner, self.settings)

    @property
    def executor(self) -> NodeExecutor:
        return NodeExecutor(
            self.node, self.cluster, self.access, self.cri, self.journal, on_event=self.on_event, clock=self.clock,
            copy=self.copy,
        )

    async def run(self) -> NodeOutcome:
        return await self.executor.drive(self.procedure.run())

    async def preflight(self) -> NodePlan:
        """Preflight alone (for `shimshift plan`): the checks and the plan, nothing changed."""
        return await self.executor.drive(self.procedure.preflight_only())

    async def preflight_detail(self) -> dict[str, Any]:
        """Preflight alone, as the journal would record it (the upgrade's plan included); nothing changed."""
        return await self.executor.drive(self.procedure.preflight())

    async def verify_now(self) -> list[Finding]:
        """What is wrong with the node as a migrated node, now (for `shimshift verify`); empty when right."""
        return await self.executor.drive(self.procedure.verify_now())

    async def rollback(self) -> None:
        """Restore files and annotation, restart, prove the dockershim state, uncordon if we cordoned."""
        await self.executor.drive(self.procedure.rollback())


__all__ = [
    "CRI_DOCKERD_ENDPOINT",
    "CRI_DOCKERD_SOCKET",
    "MIGRATION_STEPS",
    "ROLLBACK_PREFIX",
    "MigrationSettings",
    "NodeMigration",
    "NodeOutcome",
    "OutcomeStatus",
    "PreflightFacts",
    "StepFailed",
]
