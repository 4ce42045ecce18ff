"""`shimshift upgrade --to` past one minor: the journey's operations run in order, each on its node.

The order and every decision are core's (core/journey/sequence.py: the operations, where a resumed run goes
on, what a failure leads to; core/procedures/journey.py: what each operation does on its node). This module
makes each operation's procedure from the run's settings, hands it to the node's executor and stops at the
first operation that does not finish: a drain that failed has rolled its node back to that drain's start,
a kubeadm step or cluster edit stands where it stopped; the run is resumable either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from shimshift.core.actions import Procedure
from shimshift.core.errors import Refusal
from shimshift.core.journey.sequence import (
    ClusterEdit,
    KubeadmUpgrade,
    NodeDrain,
    Operation,
    resume_point,
)
from shimshift.core.procedures.journey import KubeadmStepProcedure, cluster_edit, drain_settings, journey_drain
from shimshift.core.procedures.migration import NodeOutcome, OutcomeStatus
from shimshift.core.procedures.upgrade import UpgradeProcedure, UpgradeSettings
from shimshift.core.upgrade.binaries import Binary, PackageInstall, TargetBinary
from shimshift.core.upgrade.cri_dockerd_swap import ReplacementCriDockerd

__all__ = ["JourneyBinaries", "JourneyResult", "operation_procedure", "run_operations"]


@dataclass(frozen=True)
class JourneyBinaries:
    """Where each release's kubeadm, kubelet and kubectl come from: checked ``--binaries DIR/v<release>``
    files by release (``"1.25.16"``), or the operator's package commands."""

    by_release: Mapping[str, tuple[TargetBinary, ...]] = field(default_factory=dict)
    packages: PackageInstall | None = None
    cri_dockerd: ReplacementCriDockerd | None = None  # --cri-dockerd PATH, checked

    def of(self, release: str) -> tuple[TargetBinary, ...] | None:
        if self.packages is not None:
            return None
        found = self.by_release.get(release)
        if found is None:
            raise Refusal(
                f"no binaries of v{release} were checked for this journey",
                hint=f"put kubeadm, kubelet and kubectl of v{release} in --binaries DIR/v{release}/",
                code="binary-missing",
            )
        return found

    def missing(self, sequence: Sequence[Operation]) -> list[str]:
        """The releases the journey needs that ``--binaries`` lacks (empty with package commands)."""
        if self.packages is not None:
            return []
        wanted = {str(op.release) for op in sequence if isinstance(op, KubeadmUpgrade)}
        wanted |= {str(op.to_release) for op in sequence if isinstance(op, NodeDrain)}
        return sorted(wanted - set(self.by_release), key=lambda text: tuple(int(part) for part in text.split(".")))


def operation_procedure(
    op: Operation,
    binaries: JourneyBinaries,
    *,
    drain_procedure: Callable[[NodeDrain, UpgradeSettings], UpgradeProcedure],
    health_timeout: float = 300.0,
) -> Procedure[NodeOutcome]:
    """The procedure of ``op``. ``drain_procedure`` makes the one-minor procedure of a drain from its
    settings (the caller's migration settings: canary, health timeout, journal's run id)."""
    if isinstance(op, ClusterEdit):
        return cluster_edit(op)
    if isinstance(op, KubeadmUpgrade):
        found = binaries.of(str(op.release))
        kubeadm = next((item for item in found or () if item.binary is Binary.KUBEADM), None)
        return KubeadmStepProcedure(op, kubeadm, binaries.packages, health_timeout=health_timeout).run()
    settings = drain_settings(
        op, binaries=binaries.of(str(op.to_release)), packages=binaries.packages, cri_dockerd=binaries.cri_dockerd
    )
    return journey_drain(op, drain_procedure(op, settings))


@dataclass
class JourneyResult:
    outcomes: list[NodeOutcome] = field(default_factory=list)
    done: int = 0  # operations finished, this run and earlier ones
    total: int = 0

    @property
    def finished(self) -> bool:
        return self.done == self.total

    @property
    def stopped(self) -> NodeOutcome | None:
        return next((outcome for outcome in self.outcomes if outcome.status is not OutcomeStatus.MIGRATED), None)


async def run_operations(
    sequence: Sequence[Operation],
    *,
    finished: Collection[str],
    started: Collection[str],
    node_of: Callable[[Operation], str],
    procedure_of: Callable[[Operation], Procedure[NodeOutcome]],
    drive: Callable[[str, Procedure[NodeOutcome]], Awaitable[NodeOutcome]],
    on_outcome: Callable[[Operation, NodeOutcome], None] | None = None,
) -> JourneyResult:
    """Each operation from where the journal says the run is, in order, until one does not finish.
    ``finished``/``started``: the operation keys the journal holds; ``drive`` runs a procedure on a node's
    executor; ``node_of`` names the node an operation's actions go to (a cluster edit: the first
    control-plane node's)."""
    point = resume_point(sequence, finished=finished, started=started)
    result = JourneyResult(done=point.index, total=len(sequence))
    for op in sequence[point.index :]:
        outcome = await drive(node_of(op), procedure_of(op))
        result.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(op, outcome)
        if outcome.status is not OutcomeStatus.MIGRATED:
            return result
        result.done += 1
    return result
