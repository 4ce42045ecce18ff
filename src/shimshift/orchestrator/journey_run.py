"""`shimshift upgrade --to` past one minor: the journey's stages run in order, each operation on its node.

The order and every decision are core's (core/journey/sequence.py: the operations and what a failure leads
to; core/journey/stages.py: which run alone and which together, and where a resumed run goes on;
core/procedures/journey.py: what each operation does on its node). A barrier (an apply, a control-plane
node's kubeadm step, a cluster edit) runs alone; a stage of workers' ``kubeadm upgrade node`` runs through
the fleet's runner (orchestrator/fleet.py) at most ``--kubeadm-parallel`` at once; a stage's drains run
through the same runner: control plane first one at a time, then workers within ``--max-unavailable``, a
node whose drain a PDB would block right now passed over for another. The run stops at the first operation
that does not finish: a drain that failed has rolled its node back to that drain's start; the operations of
its stage already in flight finish (the fleet's ``--max-failures 1``: no new one starts), and the run stops
before the next stage. A kubeadm step or cluster edit stands where it stopped. The run is resumable either
way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from shimshift.core.actions import Procedure
from shimshift.core.errors import Refusal
from shimshift.core.fleet import BudgetSnapshot, FleetPhase, blocked_by, remaining_budgets
from shimshift.core.journey.sequence import ClusterEdit, KubeadmUpgrade, NodeDrain, Operation
from shimshift.core.journey.stages import StageKind, drain_phases, journey_stages, stage_resume
from shimshift.core.procedures.journey import KubeadmStepProcedure, cluster_edit, drain_settings, journey_drain
from shimshift.core.procedures.migration import NodeOutcome, OutcomeStatus
from shimshift.core.procedures.upgrade import UpgradeProcedure, UpgradeSettings
from shimshift.core.upgrade.binaries import Binary, PackageInstall, TargetBinary
from shimshift.core.upgrade.cri_dockerd_swap import ReplacementCriDockerd
from shimshift.orchestrator.fleet import run_fleet

__all__ = ["DrainGate", "JourneyBinaries", "JourneyResult", "operation_procedure", "run_operations"]


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


#: The journey's budgets when the caller has no cache (a cluster of nodes without PDBs): nothing to wait for.
NO_BUDGETS = BudgetSnapshot({}, {})


@dataclass(frozen=True)
class DrainGate:
    """How many drains of a stage may run at once, and the fleet's PDB arithmetic: ``budgets`` reads the
    cache, ``would_block`` asks the API server (a dry run) about one node, ``changed`` returns when a PDB
    or pod changes (orchestrator/fleet.py ``run_fleet``)."""

    max_unavailable: int = 1
    budgets: Callable[[], Awaitable[BudgetSnapshot]] | None = None
    would_block: Callable[[str, frozenset[str]], Awaitable[bool]] | None = None
    changed: Callable[[], Awaitable[None]] | None = None
    on_wait: Callable[[str], None] | None = None  # told which drains wait for which PDB, when that changes


async def run_operations(
    sequence: Sequence[Operation],
    *,
    finished: Collection[str],
    node_of: Callable[[Operation], str],
    procedure_of: Callable[[Operation], Procedure[NodeOutcome]],
    drive: Callable[[str, Procedure[NodeOutcome]], Awaitable[NodeOutcome]],
    on_outcome: Callable[[Operation, NodeOutcome], None] | None = None,
    gate: DrainGate | None = None,
    kubeadm_parallel: int = 1,
) -> JourneyResult:
    """Each stage from where the journal says the run is, in order, until an operation does not finish.
    ``finished``: the operation keys the journal holds as finished (a drain that had started goes on from
    its own steps' journal); ``drive`` runs a procedure on a node's executor; ``node_of`` names the node an
    operation's actions go to (a cluster edit: the first control-plane node's); ``kubeadm_parallel``: how
    many workers' ``kubeadm upgrade node`` of a stage run at once."""
    gate = gate or DrainGate()
    stages = journey_stages(sequence)
    point = stage_resume(stages, finished=finished)
    result = JourneyResult(done=point.done, total=len(sequence))
    for number in range(point.stage, len(stages)):
        pending = point.pending if number == point.stage else stages[number].operations
        if stages[number].kind is StageKind.DRAINS:
            drains = [op for op in pending if isinstance(op, NodeDrain)]
            outcomes = await _run_drains(drains, gate, procedure_of, drive, on_outcome)
        elif stages[number].kind is StageKind.KUBEADM:
            steps = [op for op in pending if isinstance(op, KubeadmUpgrade)]
            outcomes = await _run_kubeadm_nodes(steps, kubeadm_parallel, procedure_of, drive, on_outcome)
        else:
            op = pending[0]
            outcome = await drive(node_of(op), procedure_of(op))
            if on_outcome is not None:
                on_outcome(op, outcome)
            outcomes = [outcome]
        result.outcomes += outcomes
        result.done += sum(1 for outcome in outcomes if outcome.status is OutcomeStatus.MIGRATED)
        if len(outcomes) < len(pending) or any(o.status is not OutcomeStatus.MIGRATED for o in outcomes):
            return result
    return result


async def _run_drains(
    drains: Sequence[NodeDrain],
    gate: DrainGate,
    procedure_of: Callable[[Operation], Procedure[NodeOutcome]],
    drive: Callable[[str, Procedure[NodeOutcome]], Awaitable[NodeOutcome]],
    on_outcome: Callable[[Operation, NodeOutcome], None] | None,
) -> list[NodeOutcome]:
    """One stage's drains through the fleet's runner; after a failure no new drain starts and those in
    flight finish (``max_failures=1``). Returns the outcomes of the drains that ran, in the order they ended."""
    by_node = {op.node: op for op in drains}
    started: set[str] = set()
    running: set[str] = set()
    said: dict[str, tuple[str, ...]] = {}

    last = [NO_BUDGETS]

    async def budgets() -> BudgetSnapshot:
        last[0] = NO_BUDGETS if gate.budgets is None else await gate.budgets()
        _say_waits(last[0])
        return last[0]

    def _say_waits(snapshot: BudgetSnapshot) -> None:
        """Which worker drains a PDB holds back while a slot is free, said once per change: a drain that
        waits is never silent. Asked when the runner reads the budgets (it has a slot to fill) and when a
        drain starts (the runner has just passed over those it could not start)."""
        if gate.on_wait is None or len(running) >= gate.max_unavailable:
            return
        if any(op.control_plane and op.node not in started for op in drains):
            return
        remaining = remaining_budgets(snapshot, in_flight=running)
        for node in sorted(set(by_node) - started):
            blocking = blocked_by(snapshot.demands.get(node, {}), remaining)
            if blocking and said.get(node) != blocking:
                gate.on_wait(
                    f"drain {by_node[node].number} of {node} waits: PodDisruptionBudget {', '.join(blocking)} "
                    f"allows no more disruptions while {', '.join(sorted(running)) or 'no drain'} runs; it starts "
                    "when one ends or the budget frees (alone, if nothing else can go: then it waits in the drain, "
                    "at most --drain-timeout)"
                )
            said[node] = blocking

    async def would_block(node: str, keys: frozenset[str]) -> bool:
        return False if gate.would_block is None else await gate.would_block(node, keys)

    async def drain(node: str) -> NodeOutcome:
        started.add(node)
        running.add(node)
        _say_waits(last[0])
        try:
            return await drive(node, procedure_of(by_node[node]))
        finally:
            running.discard(node)

    fleet = await run_fleet(
        drain_phases(drains, max_unavailable=gate.max_unavailable),
        migrate=drain,
        drain_would_block=would_block,
        max_failures=1,
        budgets=budgets,
        budgets_changed=gate.changed,
        on_outcome=None if on_outcome is None else lambda outcome: on_outcome(by_node[outcome.node], outcome),
    )
    return fleet.outcomes


async def _run_kubeadm_nodes(
    steps: Sequence[KubeadmUpgrade],
    parallel: int,
    procedure_of: Callable[[Operation], Procedure[NodeOutcome]],
    drive: Callable[[str, Procedure[NodeOutcome]], Awaitable[NodeOutcome]],
    on_outcome: Callable[[Operation, NodeOutcome], None] | None,
) -> list[NodeOutcome]:
    """One stage of workers' ``kubeadm upgrade node`` through the fleet's runner, at most ``parallel`` at once;
    after a failure no new one starts and those in flight finish (``max_failures=1``). No PDB to mind: the
    step evicts nothing and restarts nothing on a worker (core/journey/stages.py). Returns the outcomes of
    the steps that ran, in the order they ended."""
    by_node = {op.node: op for op in steps}

    async def budgets() -> BudgetSnapshot:
        return NO_BUDGETS

    async def never_blocks(node: str, keys: frozenset[str]) -> bool:
        return False

    async def upgrade(node: str) -> NodeOutcome:
        return await drive(node, procedure_of(by_node[node]))

    fleet = await run_fleet(
        [FleetPhase("kubeadm upgrade node", tuple(by_node), max(1, parallel))],
        migrate=upgrade,
        drain_would_block=never_blocks,
        max_failures=1,
        budgets=budgets,
        on_outcome=None if on_outcome is None else lambda outcome: on_outcome(by_node[outcome.node], outcome),
    )
    return fleet.outcomes
