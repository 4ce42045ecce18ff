"""One `shimshift upgrade --to` run past one minor, new or resumed: the cluster's Lease held, the journey
planned and its traps checked before the first change, the operations recorded in the journal, then run
(orchestrator/journey_run.py) on the nodes' executors.

A new run plans the journey the way `plan --to` does (orchestrator/journey_plan.py): every blocking finding
stops it before anything changes, as the NoNewPrivs guard stops `migrate`; so does a release whose
binaries ``--binaries`` lacks. The sequence (core/journey/sequence.py) is kept in the run's options; a
resumed run reads it back and goes on from the journal, never from a new plan of a half-way cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shimshift.adapters.journal import Journal, RunStatus
from shimshift.adapters.kube.connection import open_client
from shimshift.core.actions import Procedure
from shimshift.core.errors import OPTION_INVALID, Refusal
from shimshift.core.findings import Finding
from shimshift.core.fleet import parse_max_unavailable
from shimshift.core.journey.sequence import (
    JOURNEY_RUN_KEY,
    ClusterEdit,
    JourneyOptions,
    KubeadmMode,
    KubeadmUpgrade,
    NodeDrain,
    Operation,
    journey_sequence,
    sequence_from_record,
    sequence_record,
)
from shimshift.core.journey.skew import CONTROL_PLANE_MINORS_PER_APPLY, SkewRules
from shimshift.core.journey.stages import KUBEADM_PARALLEL
from shimshift.core.procedures.journey import drain_planner
from shimshift.core.procedures.migration import NodeOutcome
from shimshift.core.procedures.upgrade import UpgradeProcedure, UpgradeSettings
from shimshift.core.run_copy import RUN_RECORD_INVALID
from shimshift.core.upgrade.binaries import parse_install_commands, parse_target
from shimshift.core.upgrade.cri_dockerd_swap import ReplacementCriDockerd
from shimshift.core.wellknown import CRI_DOCKERD_SOCKET
from shimshift.orchestrator.cluster_run import RunOpening
from shimshift.orchestrator.executor import NodeExecutor
from shimshift.orchestrator.journey_plan import JourneyPlanRequest, control_plane_release, plan_whole_journey
from shimshift.orchestrator.journey_run import (
    DrainGate,
    JourneyBinaries,
    JourneyResult,
    operation_procedure,
    run_operations,
)
from shimshift.orchestrator.ports import StepEvent
from shimshift.orchestrator.session import (
    Connection,
    MigrateOptions,
    _begun,
    _close_if_untouched,
    cluster_identity,
    migration_settings,
    node_pool,
    opened_run,
)
from shimshift.orchestrator.upgrade_run import (
    UpgradeRequest,
    checked_binaries,
    checked_cri_dockerd,
    release_binaries_dir,
)
from shimshift.orchestrator.waits import started_cache
from shimshift.orchestrator.wiring import GrpcCri, KubeCluster, RunJournal, plan_from_facts

__all__ = [
    "JOURNEY_KEY",
    "JourneyBlocked",
    "JourneyRequest",
    "JourneySummary",
    "active_journey",
    "is_journey",
    "journey_max_unavailable",
    "run_journey",
]

#: The run's options keep the sequence and the request here (a resumed run reads them back).
JOURNEY_KEY = JOURNEY_RUN_KEY


@dataclass(frozen=True)
class JourneyRequest:
    """`upgrade --to` past one minor: the one-minor request's options, and the journey's own."""

    upgrade: UpgradeRequest
    skew: SkewRules = SkewRules.KUBEADM
    allow_cgroup_v1: bool = False
    kubelet_websockets_off: bool = False
    cri_dockerd: Path | None = None  # --cri-dockerd PATH
    kubeadm_parallel: int = KUBEADM_PARALLEL  # --kubeadm-parallel

    def to_record(self) -> dict[str, Any]:
        return {
            **self.upgrade.to_record(),
            "skew": str(self.skew),
            "allow_cgroup_v1": self.allow_cgroup_v1,
            "kubelet_websockets_off": self.kubelet_websockets_off,
            "cri_dockerd": None if self.cri_dockerd is None else str(self.cri_dockerd),
            "kubeadm_parallel": self.kubeadm_parallel,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> JourneyRequest:
        # Journeys begun before --cri-dockerd existed have no such key.
        cri_dockerd = Path(record["cri_dockerd"]) if record.get("cri_dockerd") else None
        return cls(
            UpgradeRequest.from_record(record),
            SkewRules(record["skew"]),
            bool(record["allow_cgroup_v1"]),
            # Journals written before the option existed lack it: those runs never asked for it.
            bool(record.get("kubelet_websockets_off", False)),
            cri_dockerd,
            _recorded_parallel(record.get("kubeadm_parallel", 1)),
        )


def _recorded_parallel(value: Any) -> int:
    """The run's ``--kubeadm-parallel`` as its journal keeps it. A journal written before the option lacks
    it: "1", the workers' kubeadm steps one after the other, as that run began them."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Refusal(
            f"the journal's kubeadm_parallel {value!r} is not a whole number of at least 1",
            hint="the journal is damaged; abandon the run and start a new one",
            code=RUN_RECORD_INVALID,
        )
    return value


class JourneyBlocked(Refusal):
    """The journey's blocking findings: the run stops before its first change."""

    def __init__(self, findings: list[Finding]) -> None:
        blocking = [finding for finding in findings if finding.blocking]
        super().__init__(
            f"{len(blocking)} blocking finding(s) on the journey, first: {blocking[0].message}",
            hint="`shimshift plan --to` lists them with the way on for each; nothing was changed",
        )
        self.findings = blocking


@dataclass
class JourneySummary:
    run_id: str
    cluster: str
    result: JourneyResult


async def is_journey(connection: Connection, to: str) -> bool:
    """Whether ``--to`` is past one minor above the oldest kube-apiserver: the journey, not the one-minor
    upgrade (which stays exactly as it was for one minor)."""
    target = parse_target(to)
    async with open_client(connection.kubeconfig, context=connection.context) as client:
        oldest = await control_plane_release(client)
    return target.minor > oldest.minor + CONTROL_PLANE_MINORS_PER_APPLY


def active_journey(connection: Connection) -> bool:
    """Whether the cluster's unfinished run in this machine's journal is a journey (for `upgrade --resume`)."""
    journal = Journal(connection.journal)
    try:
        run = journal.active_run(cluster_identity(connection))
    finally:
        journal.close()
    return run is not None and JOURNEY_KEY in run.options


async def run_journey(
    connection: Connection,
    request: JourneyRequest | None,
    options: MigrateOptions,
    *,
    resume: bool = False,
    take_over: str | None = None,
    on_event: Callable[[StepEvent], None] | None = None,
    on_operation: Callable[[Operation, NodeOutcome], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> JourneySummary:
    """The journey, new (``request``) or resumed (its request and sequence from the journal)."""
    opening = RunOpening(options.canary_namespace, "upgrade", resume=resume, take_over=take_over)
    async with opened_run(connection, opening, on_wait=on_wait) as opened:
        identity, journal, client, lease = opened.identity, opened.journal, opened.client, opened.lease
        copy = lease.held.copier(journal, lease.run_id)
        if resume:
            run = journal.resume_run(lease.run_id)
            recorded = run.options.get(JOURNEY_KEY)
            if not recorded:
                raise Refusal(
                    "the run to resume is not a journey",
                    hint="resume it with the command that began it",
                    code=OPTION_INVALID,
                )
            await _begun(lease.held, journal, run)
            request = JourneyRequest.from_record(recorded["request"])
            sequence = sequence_from_record(recorded["sequence"])
            binaries = await _binaries(request, sequence)
        else:
            if request is None:
                raise Refusal("no --to given", hint="give --to, or --resume", code=OPTION_INVALID)
            sequence, binaries = await _planned(connection, request)
            record = {"request": request.to_record(), "sequence": sequence_record(sequence)}
            run = journal.begin_run(identity, options={**options.to_record(), JOURNEY_KEY: record},
                                    run_id=lease.run_id)
            await _begun(lease.held, journal, run)
        run_journal = RunJournal(journal, run.id)
        nodes = sorted({_node_of(op, sequence) for op in sequence})
        finished = {step for node in nodes for step in run_journal.finished_steps(node) if "/" not in step}
        async with started_cache(client, on_wait) as cache, node_pool(connection) as pool:
            cluster = KubeCluster(client, options.drain, cache=cache)

            async def drive(node: str, procedure: Procedure[NodeOutcome]) -> NodeOutcome:
                cri = GrpcCri(node=node, remote_socket=CRI_DOCKERD_SOCKET)
                executor = NodeExecutor(node, cluster, await pool.get(node), cri, run_journal, on_event=on_event,
                                        copy=copy)
                outcome: NodeOutcome = await executor.drive(procedure)
                return outcome

            def drain_procedure(op: NodeDrain, settings: UpgradeSettings) -> UpgradeProcedure:
                return UpgradeProcedure(op.node, drain_planner(op, plan_from_facts),
                                        migration_settings(options, run.id), upgrade=settings)

            try:
                max_unavailable = journey_max_unavailable(run.options, nodes=len(nodes))
                result = await run_operations(
                    sequence,
                    finished=finished,
                    node_of=lambda op: _node_of(op, sequence),
                    procedure_of=lambda op: operation_procedure(
                        op, binaries, drain_procedure=drain_procedure, health_timeout=options.health_timeout
                    ),
                    drive=drive,
                    on_outcome=on_operation,
                    gate=DrainGate(
                        max_unavailable, cache.snapshot, cluster.drain_would_block, cache.budgets_changed, on_wait
                    ),
                    kubeadm_parallel=request.kubeadm_parallel,
                )
            except BaseException:
                _close_if_untouched(journal, run.id)
                raise
        if result.finished:
            journal.finish_run(run.id, status=RunStatus.SUCCEEDED)
        # Otherwise the run stays open: every stop of the journey is resumable (core/journey/sequence.py).
        return JourneySummary(run.id, identity.server, result)


async def _planned(connection: Connection, request: JourneyRequest) -> tuple[tuple[Operation, ...], JourneyBinaries]:
    """The journey as `plan --to` makes it, refused on any blocking finding, with its binaries checked."""
    plan = await plan_whole_journey(
        connection,
        JourneyPlanRequest(
            to=request.upgrade.to,
            skew=request.skew,
            allow_cgroup_v1=request.allow_cgroup_v1,
            kubelet_websockets_off=request.kubelet_websockets_off,
            binaries_dir=request.upgrade.binaries_dir,
            install_commands=request.upgrade.install_commands,
            cri_dockerd=request.cri_dockerd,
        ),
    )
    if plan.blocked:
        raise JourneyBlocked(plan.findings)
    options = JourneyOptions(
        allow_cgroup_v1=request.allow_cgroup_v1,
        kubelet_websockets_off=request.kubelet_websockets_off,
        kubeadm_flags=tuple(request.upgrade.kubeadm_flags),
    )
    sequence = journey_sequence(plan.journey, options)
    found = {release.lstrip("v"): items for release, items in plan.binaries.items()}
    binaries = _journey_binaries(request, found, plan.cri_dockerd)
    missing = binaries.missing(sequence)
    if missing:
        raise Refusal(
            f"no binaries for {', '.join(f'v{release}' for release in missing)} on the journey",
            hint="give --binaries DIR with a folder per release (DIR/v1.25.16/...), or --install-command",
            code="binary-missing",
        )
    return sequence, binaries


async def _binaries(request: JourneyRequest, sequence: tuple[Operation, ...]) -> JourneyBinaries:
    """A resumed run's binaries, checked again (they may have moved since the run began)."""
    replacement = None if request.cri_dockerd is None else await checked_cri_dockerd(request.cri_dockerd)
    if request.upgrade.binaries_dir is None:
        return _journey_binaries(request, {}, replacement)
    releases = {str(op.release) for op in sequence if isinstance(op, KubeadmUpgrade)}
    releases |= {str(op.to_release) for op in sequence if isinstance(op, NodeDrain)}
    found = {}
    for release in sorted(releases):
        folder = release_binaries_dir(Path(request.upgrade.binaries_dir), parse_target(release))
        found[release] = await checked_binaries(folder, release)
    return _journey_binaries(request, found, replacement)


def _journey_binaries(
    request: JourneyRequest, found: Mapping[str, Any], cri_dockerd: ReplacementCriDockerd | None
) -> JourneyBinaries:
    if request.upgrade.install_commands:
        packages = parse_install_commands(request.upgrade.install_commands)
        return JourneyBinaries(packages=packages, cri_dockerd=cri_dockerd)
    return JourneyBinaries(dict(found), cri_dockerd=cri_dockerd)


def journey_max_unavailable(options: Mapping[str, Any], *, nodes: int) -> int:
    """The run's ``--max-unavailable`` as its options in the journal keep it: a resumed run keeps the one it
    began with. A journal without it (none is known, but the field is optional) means "1", one drain at a
    time, which is how every journey ran before its drains could run together."""
    return parse_max_unavailable(str(options.get("max_unavailable", "1")), total=max(1, nodes))


def _node_of(op: Operation, sequence: tuple[Operation, ...]) -> str:
    """The node an operation's actions go to: its own; a cluster edit's, the node that applies."""
    if isinstance(op, ClusterEdit):
        steps = [o.kubeadm if isinstance(o, NodeDrain) else o for o in sequence]
        return next(o.node for o in steps if isinstance(o, KubeadmUpgrade) and o.mode is KubeadmMode.APPLY)
    return op.node
