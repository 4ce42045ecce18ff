"""One invocation of `shimshift migrate | plan | verify | rollback`: connect, select, run, report.

This is where the adapters are opened and closed; the step machine (node_migration) and the fleet
loop (fleet) only see ports.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from shimshift.adapters.journal import ClusterIdentity, Journal, RunRecord, RunStatus, StepPhase
from shimshift.adapters.kube.audit import audit_cluster
from shimshift.adapters.kube.connection import open_client
from shimshift.adapters.kube.drain import DrainResult, plan_drain
from shimshift.adapters.kube.kubeconfig import Kubeconfig, load_kubeconfig
from shimshift.adapters.kube.nodes import get_node
from shimshift.adapters.kube.workloads import kubelet_versions, scan_hardened_workloads
from shimshift.adapters.local import LocalNodeAccess
from shimshift.adapters.node_access import NodeAccess, NodePool
from shimshift.adapters.ssh import SSHNodeAccess
from shimshift.core.canary import DEFAULT_NAMESPACE, DEFAULT_TIMEOUT, CanarySettings
from shimshift.core.drain import DrainOptions
from shimshift.core.errors import REFUSED, Refusal
from shimshift.core.findings import Finding, Severity, Subject
from shimshift.core.fleet import (
    NO_NODE_GIVEN,
    ControlPlaneOrder,
    FleetNode,
    FleetPhase,
    parse_max_unavailable,
    plan_phases,
    recorded_selection,
    selection_record,
)
from shimshift.core.hardened_pods import GuardDecision, HardenedPodsRefusal, decide_guard
from shimshift.core.journey.sequence import JOURNEY_RUN_KEY
from shimshift.core.node_files import NODE_FILES
from shimshift.core.node_plan import NodePlan
from shimshift.core.procedures.journey import newest_plan_scope
from shimshift.core.procedures.migration import findings_of, recorded_plan
from shimshift.core.procedures.upgrade import UpgradeSettings
from shimshift.core.rollback_source import NodeRun, rollback_source
from shimshift.core.runtime_detect import Runtime
from shimshift.core.steps import Step
from shimshift.core.upgrade.plan import NodeUpgradePlan
from shimshift.core.wellknown import CRI_DOCKERD_SOCKET, is_control_plane
from shimshift.orchestrator.cluster_run import HeldRun, Journaled, RunOpening, held_run, run_copy
from shimshift.orchestrator.fleet import FleetResult, run_fleet
from shimshift.orchestrator.node_migration import (
    MigrationSettings,
    NodeMigration,
    NodeOutcome,
    OutcomeStatus,
    StepFailed,
)
from shimshift.orchestrator.ports import JournalPort, StepEvent
from shimshift.orchestrator.upgrade_run import UpgradeRequest, UpgradeRun, prepare_upgrade, select_upgrade_nodes
from shimshift.orchestrator.waits import announced, started_cache
from shimshift.orchestrator.wiring import GrpcCri, KubeCluster, RunJournal, plan_from_facts

# What a `shimshift rollback` run copies from the run that changed the node: the plan, and the upgrade's
# records of what it replaced and kept.
_CARRIED_TO_ROLLBACK = frozenset(
    str(step) for step in (Step.PREFLIGHT, Step.INSTALL_KUBEADM, Step.KUBEADM_UPGRADE, Step.INSTALL_KUBELET)
)

# A `shimshift rollback` run records its nodes under this key (a migrate run's options never have it).
ROLLBACK_RUN_KEY = "rollback_nodes"


@dataclass(frozen=True)
class Connection:
    """How to reach the cluster and its nodes (kubectl's and ssh's conventions)."""

    kubeconfig: Path | None = None
    context: str | None = None
    ssh_config: Path | None = None
    known_hosts: Path | None = None
    ssh_user: str | None = None
    local: bool = False  # shimshift runs as root on the one node it migrates
    journal: Path | None = None


@dataclass(frozen=True)
class MigrateOptions:
    nodes: tuple[str, ...] = ()
    selector: str | None = None
    all_nodes: bool = False
    max_unavailable: str = "1"
    control_plane: ControlPlaneOrder = ControlPlaneOrder.FIRST
    max_failures: int = 1
    rollback: bool = True
    drain: DrainOptions = field(default_factory=DrainOptions)
    health_timeout: float = 300.0
    install_cri_dockerd: Path | None = None
    report_dir: Path | None = None  # None: reports/ next to the journal (adapters/state_dir.py)
    # The operator accepts that kubelets < 1.24 on cri-dockerd refuse pods with allowPrivilegeEscalation:
    # false (core/hardened_pods.py); without it the guard refuses those nodes before anything changes.
    accept_refused_hardened_pods: bool = False
    # verify's canary pod (core/canary.py): None is the node's pause image.
    canary_image: str | None = None
    canary_namespace: str = DEFAULT_NAMESPACE
    canary_timeout: float = DEFAULT_TIMEOUT
    # Set by the guard when the run begins: no workload sets allowPrivilegeEscalation: false, so a kubelet
    # before 1.24 refuses nothing that runs today and the canary leaves that one field out.
    no_hardened_workloads: bool = False
    # `shimshift upgrade`: the migration and the next minor in the same drain (core/procedures/upgrade.py).
    upgrade: UpgradeRequest | None = None

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["upgrade"] = self.upgrade.to_record() if self.upgrade else None
        record["drain"] = {key: str(value) for key, value in asdict(self.drain).items()}
        record["install_cri_dockerd"] = str(self.install_cri_dockerd) if self.install_cri_dockerd else None
        record["report_dir"] = str(self.report_dir) if self.report_dir else None
        record["control_plane"] = str(self.control_plane)
        record["nodes"] = list(self.nodes)
        return record


@dataclass
class RunSummary:
    run_id: str
    cluster: str
    result: FleetResult


def cluster_identity(connection: Connection) -> ClusterIdentity:
    """Which cluster the journal files this connection's runs under (its server URL and CA)."""
    return _identity(load_kubeconfig(connection.kubeconfig, context=connection.context))


@dataclass(frozen=True)
class OpenedRun:
    """A run that changes nodes, opened: the cluster it is filed under, the journal, the API client, and
    the Lease held for the run (its id)."""

    identity: ClusterIdentity
    journal: Journal
    client: Any
    lease: Journaled


@contextlib.asynccontextmanager
async def opened_run(
    connection: Connection, opening: RunOpening, *, on_wait: Callable[[str], None] | None = None
) -> AsyncIterator[OpenedRun]:
    """The kubeconfig read, the journal opened, the API client and the cluster's Lease held for the block
    (orchestrator/cluster_run.py, `held_run`): a second run is refused before it reads or changes anything
    more. Everything is closed however the block ends, the Lease released with the run's status."""
    config = load_kubeconfig(connection.kubeconfig, context=connection.context)
    identity = _identity(config)
    journal = Journal(connection.journal)
    try:
        async with open_client(resolved=config) as client, held_run(
            client, journal, identity, opening, on_wait=on_wait
        ) as lease:
            yield OpenedRun(identity, journal, client, lease)
    finally:
        journal.close()


def _identity(config: Kubeconfig) -> ClusterIdentity:
    ca = config.ca_certificate()
    return ClusterIdentity.from_ca(config.server, ca) if ca else ClusterIdentity(config.server)


@contextlib.asynccontextmanager
async def node_pool(connection: Connection) -> AsyncIterator[NodePool]:
    async def connect(node: str) -> NodeAccess:
        if connection.local:
            return LocalNodeAccess(node)
        return await SSHNodeAccess.connect(
            node, ssh_config=connection.ssh_config, known_hosts=connection.known_hosts, username=connection.ssh_user
        )

    pool = NodePool(connect)
    try:
        yield pool
    finally:
        await pool.close()


async def select_nodes(client: Any, options: MigrateOptions) -> list[FleetNode]:
    """Explicit names as given; with -l or --all, the matching nodes whose kubelet still uses dockershim."""
    if options.nodes:
        found = []
        for name in options.nodes:
            node = await get_node(client, name)
            found.append(FleetNode(name, is_control_plane(node.get("metadata", {}).get("labels") or {})))
        return found
    if not options.all_nodes and options.selector is None:
        raise Refusal("no nodes named", hint="name nodes, or pass -l SELECTOR or --all", code=NO_NODE_GIVEN)
    report = await audit_cluster(client, selector=options.selector, hardened=False)
    return [
        FleetNode(audit.name, audit.role == "control-plane")
        for audit in report.nodes
        # `upgrade` also takes nodes already on cri-dockerd: their kubelet may still be behind.
        if audit.runtime.runtime is Runtime.DOCKERSHIM or options.upgrade is not None
    ]


async def resumed_selection(client: Any, record: Mapping[str, Any], options: MigrateOptions) -> list[FleetNode]:
    """The nodes a resumed run works on: those its journal recorded when it began, whatever runtime they
    show now (a node killed after its annotation changed no longer looks like dockershim). Runs recorded
    before the selection was kept select again."""
    recorded = recorded_selection(record)
    return recorded if recorded is not None else await select_nodes(client, options)


async def migrate(
    connection: Connection,
    options: MigrateOptions,
    *,
    resume: bool = False,
    take_over: str | None = None,
    on_event: Callable[[StepEvent], None] | None = None,
    on_outcome: Callable[[NodeOutcome], None] | None = None,
    on_plan: Callable[[list[FleetNode]], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    command: str = "migrate",
) -> RunSummary:
    """`migrate` or `upgrade` (``command``, as the cluster's Lease names the run), new or ``resume``d."""
    opening = RunOpening(options.canary_namespace, command, resume=resume, take_over=take_over)
    async with opened_run(connection, opening, on_wait=on_wait) as opened:
        identity, journal, client, lease = opened.identity, opened.journal, opened.client, opened.lease
        run: RunRecord | None = None
        copy = lease.held.copier(journal, lease.run_id)
        if resume:
            run = journal.resume_run(lease.run_id)
            await _begun(lease.held, journal, run)
            if run.options.get(ROLLBACK_RUN_KEY):
                # A `shimshift rollback` that was killed: finish it, never migrate those nodes.
                result = await _roll_back(
                    journal, run.id, client, connection, tuple(run.options[ROLLBACK_RUN_KEY]), on_event, copy
                )
                journal.finish_run(run.id, status=_status(result, rollback=True))
                return RunSummary(run.id, identity.server, result)
            options = _options_from_record(run.options)
            # A resumed run works on the nodes its run recorded, whatever their runtime now.
            selected = await resumed_selection(client, run.options, options)
        else:
            # Select and order the nodes before a new run is begun: a refusal or an unreachable
            # cluster here leaves no unfinished run behind to block the next `migrate`.
            selected = await select_nodes(client, options)
        selected, phases, upgrade = await _set_up(
            client, options, selected, recorded=run.options if run is not None else None
        )
        if run is None and upgrade is not None:
            # The NoNewPrivs guard stands aside: no node is uncordoned before its kubelet is 1.24+
            # (the upgrade's verify checks the release and runs the canary with the field set).
            run = journal.begin_run(
                identity,
                options={**options.to_record(), **upgrade.record(), **selection_record(selected)},
                run_id=lease.run_id,
            )
            await _begun(lease.held, journal, run)
        if run is None:
            # The guard is decided before a run begins (a resume finishes what that decision allowed).
            decision = await guard_hardened_pods(client, selected, options)
            if decision.blocked:
                raise HardenedPodsRefusal.of(decision)
            options = replace(options, no_hardened_workloads=not decision.workloads)
            run = journal.begin_run(
                identity,
                options={**options.to_record(), **_guard_record(decision), **selection_record(selected)},
                run_id=lease.run_id,
            )
            await _begun(lease.held, journal, run)
        if on_plan is not None:
            on_plan(selected)
        try:
            result = await _run_fleet(
                journal, run.id, client, connection, options, phases, on_event, on_outcome, upgrade, copy, on_wait
            )
        except BaseException:
            _close_if_untouched(journal, run.id)
            raise
        if any(outcome.resumable for outcome in result.outcomes):
            # A node stopped half-way for a person (never rolled back): `--resume` goes on from there.
            return RunSummary(run.id, identity.server, result)
        journal.finish_run(run.id, status=_status(result))
        return RunSummary(run.id, identity.server, result)


async def _run_fleet(
    journal: Journal,
    run_id: str,
    client: Any,
    connection: Connection,
    options: MigrateOptions,
    phases: list[FleetPhase],
    on_event: Callable[[StepEvent], None] | None,
    on_outcome: Callable[[NodeOutcome], None] | None,
    upgrade: UpgradeRun | None = None,
    copy: Callable[[str], Awaitable[None]] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> FleetResult:
    run_journal = RunJournal(journal, run_id)
    async with started_cache(client, on_wait) as cache, node_pool(connection) as pool:
        cluster = KubeCluster(client, options.drain, cache=cache)

        async def migrate_one(name: str) -> NodeOutcome:
            try:
                async with announced(f"node {name}'s sshd (connecting)", on_wait):
                    access = await pool.get(name)
            except Refusal as error:
                found = [finding.to_json() for finding in _preflight_findings(error, name)]
                run_journal.record(
                    node=name,
                    step=str(Step.PREFLIGHT),
                    phase="failed",
                    detail={"message": str(error), "findings": found},
                )
                if copy is not None:
                    await copy(name)
                return NodeOutcome(name, OutcomeStatus.REFUSED, str(error), str(Step.PREFLIGHT))
            settings = upgrade.settings_for(name) if upgrade is not None else None
            migration = _migration(
                name, cluster, access, run_journal, options, on_event, run_id=run_id, upgrade=settings, copy=copy
            )
            return await migration.run()

        return await run_fleet(
            phases,
            migrate=migrate_one,
            drain_would_block=cluster.drain_would_block,
            budgets=cache.snapshot,
            budgets_changed=cache.budgets_changed,
            max_failures=options.max_failures,
            on_outcome=on_outcome,
        )


async def _set_up(
    client: Any, options: MigrateOptions, selected: list[FleetNode], *, recorded: Mapping[str, Any] | None = None
) -> tuple[list[FleetNode], list[FleetPhase], UpgradeRun | None]:
    """The selected nodes in the phases they run in, and the upgrade's set-up for them: what `migrate` and
    `plan` both do once the nodes are chosen. An upgrade keeps only the nodes whose kubelet is behind
    ``--to``, except in a resumed run (``recorded``), which keeps the nodes it began with."""
    max_unavailable = parse_max_unavailable(options.max_unavailable, total=max(1, len(selected)))
    if options.upgrade is None:
        phases = plan_phases(selected, control_plane=options.control_plane, max_unavailable=max_unavailable)
        return selected, phases, None
    if recorded is None:
        wanted = set(await select_upgrade_nodes(client, [node.name for node in selected], options.upgrade.to))
        selected = [node for node in selected if node.name in wanted]
    upgrade, phases = await prepare_upgrade(
        client, options.upgrade, selected, max_unavailable=max_unavailable, recorded=recorded
    )
    return selected, phases, upgrade


async def _begun(held: HeldRun, journal: Journal, run: RunRecord) -> None:
    """The run's record written to the cluster (orchestrator/cluster_run.py) before any node is touched; if
    that fails (a 403 on configmaps, say), the run is closed as untouched so it does not block the next."""
    try:
        await held.record_run(run_copy(run, held))
    except BaseException:
        _close_if_untouched(journal, run.id)
        raise


def _close_if_untouched(journal: Journal, run_id: str) -> None:
    """End a run that stopped before it recorded any step: with nothing to resume, it must not stay
    unfinished and block the next run. A run that touched a node stays open for `--resume`."""
    if not journal.timeline(run_id):
        journal.finish_run(run_id, status=RunStatus.FAILED)


def _options_from_record(record: dict[str, Any]) -> MigrateOptions:
    drain = record.get("drain", {})
    defaults = DrainOptions()
    return MigrateOptions(
        nodes=tuple(record.get("nodes", ())),
        selector=record.get("selector"),
        all_nodes=bool(record.get("all_nodes")),
        max_unavailable=str(record.get("max_unavailable", "1")),
        control_plane=ControlPlaneOrder(record.get("control_plane", "first")),
        max_failures=int(record.get("max_failures", 1)),
        rollback=bool(record.get("rollback", True)),
        drain=_drain_from_record(drain, defaults),
        health_timeout=float(record.get("health_timeout", 300.0)),
        install_cri_dockerd=Path(record["install_cri_dockerd"]) if record.get("install_cri_dockerd") else None,
        report_dir=Path(record["report_dir"]) if record.get("report_dir") else None,
        accept_refused_hardened_pods=bool(record.get("accept_refused_hardened_pods", False)),
        canary_image=record.get("canary_image"),
        canary_namespace=str(record.get("canary_namespace", DEFAULT_NAMESPACE)),
        canary_timeout=float(record.get("canary_timeout", DEFAULT_TIMEOUT)),
        no_hardened_workloads=bool(record.get("no_hardened_workloads", False)),
        upgrade=UpgradeRequest.from_record(record["upgrade"]) if record.get("upgrade") else None,
    )


async def guard_hardened_pods(client: Any, selected: list[FleetNode], options: MigrateOptions) -> GuardDecision:
    """The guard's facts from the cluster (the selected nodes' kubelets, the hardened workloads), decided
    by core before the run touches any node."""
    versions = await kubelet_versions(client, [node.name for node in selected]) if selected else {}
    workloads = await scan_hardened_workloads(client) if selected else []
    return decide_guard(
        nodes=[(node.name, versions.get(node.name, "")) for node in selected],
        workloads=workloads,
        accepted=options.accept_refused_hardened_pods,
    )


def _guard_record(decision: GuardDecision) -> dict[str, Any]:
    """What the journal keeps of an accepted guard: the workloads the operator accepted, for the report."""
    if not decision.refused_nodes:
        return {}
    return {"accepted_hardened_workloads": [workload.label() for workload in decision.workloads]}


def _drain_from_record(record: dict[str, str], defaults: DrainOptions) -> DrainOptions:
    values: dict[str, Any] = {}
    for key, default in asdict(defaults).items():
        if key not in record:
            continue
        text = record[key]
        if isinstance(default, bool):
            values[key] = text == "True"
        elif isinstance(default, int):
            values[key] = int(text)
        elif isinstance(default, float):
            values[key] = float(text)
        elif default is None:
            values[key] = None if text == "None" else text
        elif isinstance(default, str):
            values[key] = text
    return DrainOptions(**values)


@dataclass
class MemoryJournal:
    """JournalPort kept in memory: for `plan`, which must leave no trace, and for read-only views."""

    records: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    def record(self, *, node: str, step: str, phase: str, detail: Mapping[str, Any] | None = None) -> None:
        self.records.append((node, step, phase, dict(detail or {})))

    def finished_steps(self, node: str) -> list[str]:
        return [step for name, step, phase, _ in self.records if name == node and phase == "finished"]

    def recorded_steps(self, node: str) -> list[str]:
        return [step for name, step, _, _ in self.records if name == node]

    def step_detail(self, node: str, step: str) -> Mapping[str, Any] | None:
        found = None
        for name, recorded, phase, detail in self.records:
            if name == node and recorded == step and phase == "finished":
                found = detail
        return found


@dataclass
class NodePlanReport:
    node: str
    plan: NodePlan | None
    drain: DrainResult | None
    problem: str | None = None
    findings: list[Finding] = field(default_factory=list)
    upgrade: NodeUpgradePlan | None = None  # `plan --to`: what the upgrade adds, step by step

    @property
    def blocked(self) -> bool:
        return self.problem is not None or any(finding.blocking for finding in self.findings)


async def plan(connection: Connection, options: MigrateOptions) -> list[NodePlanReport]:
    """Everything `migrate` would do, in order, without changing anything: preflight, file diffs,
    API changes, and the server's answer to a dry-run eviction of every pod."""
    reports = []
    async with open_client(connection.kubeconfig, context=connection.context) as client:
        selected, phases, upgrade = await _set_up(client, options, await select_nodes(client, options))
        findings: dict[str, list[Finding]] = {}
        if upgrade is None:
            guard = await guard_hardened_pods(client, selected, options)
            findings = {finding.subject.name: [finding] for finding in guard.findings if finding.subject is not None}
        cluster = KubeCluster(client, options.drain)
        async with node_pool(connection) as pool:
            for name in [name for phase in phases for name in phase.nodes]:
                try:
                    access = await pool.get(name)
                    settings = upgrade.settings_for(name) if upgrade is not None else None
                    migration = _migration(name, cluster, access, MemoryJournal(), options, upgrade=settings)
                    detail = await migration.preflight_detail()
                    node_plan = recorded_plan(detail, node=name)
                except (Refusal, StepFailed) as error:
                    refused = _preflight_findings(error, name)
                    reports.append(NodePlanReport(name, None, None, _message(error), findings.get(name, []) + refused))
                    continue
                drain = await plan_drain(client, name, options.drain)
                node_upgrade = NodeUpgradePlan.from_record(detail["upgrade_plan"]) if "upgrade_plan" in detail else None
                reports.append(
                    NodePlanReport(name, node_plan, drain, findings=findings.get(name, []), upgrade=node_upgrade)
                )
    return reports


def _migration(
    name: str,
    cluster: KubeCluster,
    access: NodeAccess,
    journal: JournalPort,
    options: MigrateOptions,
    on_event: Callable[[StepEvent], None] | None = None,
    *,
    run_id: str = "",
    upgrade: UpgradeSettings | None = None,
    copy: Callable[[str], Awaitable[None]] | None = None,
) -> NodeMigration:
    return NodeMigration(
        node=name,
        cluster=cluster,
        access=access,
        cri=GrpcCri(node=name, remote_socket=CRI_DOCKERD_SOCKET),
        journal=journal,
        planner=plan_from_facts,
        settings=migration_settings(options, run_id),
        on_event=on_event,
        upgrade=upgrade,
        copy=copy,
    )


def migration_settings(options: MigrateOptions, run_id: str) -> MigrationSettings:
    """What every node's procedure of a run gets from the run's options (the journey's drains too)."""
    canary = CanarySettings(
        image=options.canary_image,
        namespace=options.canary_namespace,
        timeout=options.canary_timeout,
        accept_refused_hardened_pods=options.accept_refused_hardened_pods,
        no_hardened_workloads=options.no_hardened_workloads,
    )
    return MigrationSettings(
        rollback_on_failure=options.rollback,
        health_timeout=options.health_timeout,
        node_files=NODE_FILES,
        cri_dockerd_binary=options.install_cri_dockerd.read_bytes() if options.install_cri_dockerd else None,
        canary=canary,
        run_id=run_id,
    )


def _message(error: Exception) -> str:
    return error.message if isinstance(error, StepFailed) else str(error)


# The code of `verify` for a node no run planned (docs/findings.md).
NOT_RECORDED = "no-migration-recorded"

# The code of a refusal met before or during preflight whose rule has not named itself (docs/findings.md).
PREFLIGHT_REFUSED = "preflight-refused"


def _preflight_findings(error: Refusal | StepFailed, node: str) -> list[Finding]:
    """Why preflight refused ``node``, as the findings its rules gave (file, line and hint kept)."""
    return [
        (replace(finding, code=PREFLIGHT_REFUSED) if finding.code == REFUSED else finding).about(Subject.of_node(node))
        for finding in findings_of(error)
    ]


def newest_run_planning(journal: Journal, identity: ClusterIdentity, node: str) -> str | None:
    """The newest `migrate` or one-minor `upgrade` run that recorded a plan for ``node`` (rollback works from
    that plan: it puts a node back on dockershim, which no journey drain past the first can go back to)."""
    for run in sorted(journal.runs(identity), key=lambda item: item.started_at, reverse=True):
        for record in journal.timeline(run.id, node):
            if record.step == str(Step.PREFLIGHT) and record.phase is StepPhase.FINISHED:
                return run.id
    return None


def _node_runs(journal: Journal, identity: ClusterIdentity, node: str) -> list[NodeRun]:
    """The runs of this cluster that recorded ``node``, newest first (what core/rollback_source.py decides on)."""
    found = []
    for run in sorted(journal.runs(identity), key=lambda item: item.started_at, reverse=True):
        records = journal.timeline(run.id, node)
        if records:
            planned = any(r.step == str(Step.PREFLIGHT) and r.phase is StepPhase.FINISHED for r in records)
            found.append(NodeRun(run.id, journey=JOURNEY_RUN_KEY in run.options, planned=planned))
    return found


def newest_plan_records(
    journal: Journal, identity: ClusterIdentity, node: str
) -> list[tuple[str, str, str, dict[str, Any]]] | None:
    """The journal records of the newest plan for ``node``, from any run, a journey's included (verify checks
    the node against it), named as the procedure that made the plan named them (a journey drain's prefix
    taken off: core/procedures/journey.py ``newest_plan_scope``); None: no run planned the node."""
    for run in sorted(journal.runs(identity), key=lambda item: item.started_at, reverse=True):
        records = journal.timeline(run.id, node)
        scope = newest_plan_scope([r.step for r in records if r.phase is StepPhase.FINISHED])
        if scope is not None:
            return [
                (node, r.step.removeprefix(scope), str(r.phase), r.detail) for r in records if r.step.startswith(scope)
            ]
    return None


async def verify(
    connection: Connection, nodes: tuple[str, ...], options: MigrateOptions | None = None
) -> dict[str, list[Finding]]:
    """For each node, what is wrong with it as a migrated node (empty list: verified). ``options``
    carries the canary's settings."""
    config = load_kubeconfig(connection.kubeconfig, context=connection.context)
    identity = _identity(config)
    journal = Journal(connection.journal)
    results: dict[str, list[Finding]] = {}
    try:
        async with open_client(resolved=config) as client:
            cluster = KubeCluster(client, DrainOptions())
            # The canary keeps allowPrivilegeEscalation: false on a kubelet < 1.24 only while some workload
            # needs it, as migrate's does (core/canary.py).
            chosen = options or MigrateOptions()
            chosen = replace(chosen, no_hardened_workloads=not await scan_hardened_workloads(client))
            async with node_pool(connection) as pool:
                for name in nodes:
                    planned = newest_plan_records(journal, identity, name)
                    if planned is None:
                        text = "no migration of this node is recorded in the journal"
                        results[name] = [Finding(Severity.ERROR, NOT_RECORDED, text, Subject.of_node(name))]
                        continue
                    view = MemoryJournal(planned)
                    try:
                        migration = _migration(name, cluster, await pool.get(name), view, chosen)
                        results[name] = await migration.verify_now()
                    except (Refusal, StepFailed) as error:
                        results[name] = [finding.about(Subject.of_node(name)) for finding in findings_of(error)]
    finally:
        journal.close()
    return results


def _status(result: FleetResult, *, rollback: bool = False) -> RunStatus:
    """A migration run succeeded when every node is on cri-dockerd; a rollback run when none failed."""
    if rollback:
        failed = any(outcome.status is OutcomeStatus.FAILED for outcome in result.outcomes)
    else:
        failed = bool(result.failures or result.not_started)
    return RunStatus.FAILED if failed else RunStatus.SUCCEEDED


async def _roll_back(
    journal: Journal,
    run_id: str,
    client: Any,
    connection: Connection,
    nodes: tuple[str, ...],
    on_event: Callable[[StepEvent], None] | None,
    copy: Callable[[str], Awaitable[None]] | None = None,
) -> FleetResult:
    """Roll NODES back in run RUN_ID, whose journal already holds each node's plan."""
    result = FleetResult()
    run_journal = RunJournal(journal, run_id)
    cluster = KubeCluster(client, DrainOptions())
    async with node_pool(connection) as pool:
        for name in nodes:
            try:
                preflight = run_journal.step_detail(name, str(Step.PREFLIGHT)) or {}
                settings = None
                if "upgrade_plan" in preflight:
                    # An upgraded node: its binaries and kubeadm's files go back too (a worker only).
                    recorded = NodeUpgradePlan.from_record(preflight["upgrade_plan"])
                    settings = UpgradeSettings(to=recorded.to_version.lstrip("v"), role=recorded.role)
                migration = _migration(
                    name, cluster, await pool.get(name), run_journal, MigrateOptions(), on_event, upgrade=settings,
                    copy=copy,
                )
                await migration.rollback()
                result.outcomes.append(NodeOutcome(name, OutcomeStatus.ROLLED_BACK, "back on dockershim"))
            except (Refusal, StepFailed) as error:
                result.outcomes.append(NodeOutcome(name, OutcomeStatus.FAILED, _message(error)))
    return result


async def rollback(
    connection: Connection,
    nodes: tuple[str, ...],
    *,
    on_event: Callable[[StepEvent], None] | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    take_over: str | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> RunSummary:
    """Put NODES back on dockershim from the plan their newest migration recorded, in a run of its own."""
    opening = RunOpening(namespace, "rollback", take_over=take_over, adopt=True)
    async with opened_run(connection, opening, on_wait=on_wait) as opened:
        identity, journal, client, lease = opened.identity, opened.journal, opened.client, opened.lease
        sources = {name: rollback_source(name, _node_runs(journal, identity, name)) for name in nodes}
        unknown = [name for name, run_id in sources.items() if run_id is None]
        if unknown:
            raise Refusal(
                f"no migration recorded for {', '.join(unknown)}",
                hint="rollback restores what a shimshift migration recorded; nothing to restore",
                file=str(journal.path),
                code=NOT_RECORDED,
            )
        run = journal.begin_run(identity, options={ROLLBACK_RUN_KEY: list(nodes)}, run_id=lease.run_id)
        await _begun(lease.held, journal, run)
        for name, source in sources.items():
            assert source is not None
            # The rollback run carries the plan it undoes (and, after an upgrade, what its steps kept and
            # which binaries they replaced), so a crash during it resumes from there.
            for record in journal.timeline(source, name):
                if record.step in _CARRIED_TO_ROLLBACK and record.phase is StepPhase.FINISHED:
                    journal.record(run.id, name, record.step, StepPhase.FINISHED, record.detail)
        copy = lease.held.copier(journal, run.id)
        result = await _roll_back(journal, run.id, client, connection, nodes, on_event, copy)
        journal.finish_run(run.id, status=_status(result, rollback=True))
        return RunSummary(run.id, identity.server, result)
