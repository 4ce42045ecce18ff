"""The journey's drains within `--max-unavailable`, against a real kube-apiserver and its disruption controller
(no kubelets): the stages read back from a real journal, the fleet's PDB arithmetic on the real watch cache and
the server's dry-run eviction, real cordons. The node side of each operation (kubeadm, the kubelet swap) is
the lab's; here an operation cordons its node (a drain, with shimshift's cordon), journals itself and ends.

Matrix: a journey of 1.30 -> 1.32 on cp + w1, w2, w3 with a PDB that lets one of w1/w2's pods go, recorded
with `--max-unavailable 2`: kubeadm steps alone, cp's drains alone, then at most two workers cordoned at once
and w1 and w2 never together; with `--max-unavailable 3`, a drain of w3 that fails: the one in flight (w1)
finishes, none starts (w2), the run stops before the next barrier, and the run resumed from the journal
finishes only what was left; a journal whose options lack max_unavailable and kubeadm_parallel (the shape
before) runs one drain and one kubeadm step at a time; recorded with `--kubeadm-parallel 2`, the workers'
`kubeadm upgrade node` of each step at most two at once, after the apply alone, before the drains; one of
them failing: the one in flight finishes, w3's never starts, nothing is uncordoned or undone, and the run
resumed from the journal runs only the two left, then the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from shimshift.adapters.journal import Journal
from shimshift.core.drain import DrainOptions
from shimshift.core.journey.releases import NEWEST_PATCH
from shimshift.core.journey.schedule import JourneyNode, plan_journey
from shimshift.core.journey.sequence import (
    JOURNEY_RUN_KEY,
    ClusterEdit,
    KubeadmUpgrade,
    NodeDrain,
    Operation,
    journey_sequence,
    sequence_from_record,
    sequence_record,
)
from shimshift.core.procedures.migration import NodeOutcome, OutcomeStatus
from shimshift.core.versions import KubernetesVersion
from shimshift.orchestrator.journey_run import DrainGate, JourneyResult, run_operations
from shimshift.orchestrator.journey_session import JourneyRequest, journey_max_unavailable
from shimshift.orchestrator.session import Connection, MigrateOptions, cluster_identity
from shimshift.orchestrator.upgrade_run import UpgradeRequest
from shimshift.orchestrator.waits import started_cache
from shimshift.orchestrator.wiring import KubeCluster, RunJournal

if TYPE_CHECKING:
    from tests.apiserver_fixture import LocalApiServer
    from tests.kube_world import World

CONTROL_PLANE = {"node-role.kubernetes.io/control-plane": ""}


def v(minor: int) -> KubernetesVersion:
    return KubernetesVersion(minor, NEWEST_PATCH[minor])


@pytest.fixture(autouse=True)
async def whole_cluster(world: World) -> None:
    """Only this test's nodes in the shared API server: the cordon count below is the cluster's."""
    nodes = await world.call("GET", "/api/v1/nodes")
    for node in nodes.get("items") or []:
        await world.call("DELETE", f"/api/v1/nodes/{node['metadata']['name']}", ok=(200, 202, 404))


async def cluster_of(world: World) -> dict[str, str]:
    """cp, w1, w2, w3; pods of one ReplicaSet on w1 and w2 under a PDB that lets one of them go."""
    names = {"cp": await world.node("cp", labels=CONTROL_PLANE, kubelet="v1.30.14")}
    for base in ("w1", "w2", "w3"):
        names[base] = await world.node(base, kubelet="v1.30.14")
    owner = await world.owner("ReplicaSet", "web")
    for index, base in enumerate(("w1", "w2")):
        await world.pod(f"web-{index}", node=names[base], owner=owner, labels={"app": "web"})
    await world.pod("other", node=names["w3"], owner=await world.owner("ReplicaSet", "other"))
    budget = await world.pdb("web", labels={"app": "web"}, min_available=1)
    await world.wait_pdb(budget, allowed=1)
    return names


def sequence_of(names: dict[str, str]) -> tuple[Operation, ...]:
    nodes = [JourneyNode(names[base], base == "cp", v(30)) for base in ("cp", "w1", "w2", "w3")]
    return journey_sequence(plan_journey(nodes, control_plane=v(30), target=v(32)))


def begin(
    journal: Journal,
    apiserver: LocalApiServer,
    sequence: tuple[Operation, ...],
    kubeadm_parallel: int | None = None,
    **options: Any,
) -> str:
    request = JourneyRequest(UpgradeRequest(str(v(32))), kubeadm_parallel=kubeadm_parallel or 1).to_record()
    if kubeadm_parallel is None:
        del request["kubeadm_parallel"]  # a journal written before the option existed
    journey = {"request": request, "sequence": sequence_record(sequence)}
    record = {**MigrateOptions(**options).to_record(), JOURNEY_RUN_KEY: journey}
    if "max_unavailable" not in options:
        del record["max_unavailable"]  # a journal written before the option was read by the journey
    return journal.begin_run(cluster_identity(Connection(kubeconfig=apiserver.kubeconfig)), options=record).id


def nothing() -> Generator[Any, Any, NodeOutcome]:
    """The procedure handed to ``drive``, which plays the operation itself (see the module)."""
    raise AssertionError("not driven")
    yield


async def run_from_journal(
    journal: Journal, run_id: str, kube: Any, world: World, log: list[tuple[str, str, int]],
    fails: Callable[[Operation], bool] = lambda op: False,
) -> JourneyResult:
    """The run as journey_session.py goes on from a journal: its sequence, --max-unavailable and
    --kubeadm-parallel read back, the finished operations from each node's steps. ``log``: (start|end, key,
    nodes cordoned at that start)."""
    run = journal.run(run_id)
    assert run is not None
    sequence = sequence_from_record(run.options[JOURNEY_RUN_KEY]["sequence"])
    request = JourneyRequest.from_record(run.options[JOURNEY_RUN_KEY]["request"])
    nodes = sorted({op.node for op in sequence if not isinstance(op, ClusterEdit)})
    steps = RunJournal(journal, run_id)
    finished = {step for node in nodes for step in steps.finished_steps(node)}
    by_node: dict[str, Operation] = {}

    def procedure_of(op: Operation) -> Any:
        by_node[op.node if not isinstance(op, ClusterEdit) else nodes[0]] = op
        return nothing()

    async with started_cache(kube, None) as cache:
        cluster = KubeCluster(kube, DrainOptions(), cache=cache)

        async def drive(node: str, procedure: Any) -> NodeOutcome:
            op = by_node[node]
            steps.record(node=node, step=op.key, phase="started")
            if isinstance(op, NodeDrain):
                await cluster.cordon(node)
            listed = await world.call("GET", "/api/v1/nodes")
            cordoned = sum(1 for item in listed["items"] if item["spec"].get("unschedulable"))
            log.append(("start", op.key, cordoned))
            # An operation that fails, fails fast: the others of its stage are still in flight when it does.
            await asyncio.sleep(0.05 if fails(op) else 0.4)
            if isinstance(op, NodeDrain):
                await cluster.uncordon_if_ours(node)
            log.append(("end", op.key, 0))
            if fails(op):
                status = OutcomeStatus.ROLLED_BACK if isinstance(op, NodeDrain) else OutcomeStatus.FAILED
                return NodeOutcome(node, status, "failed (played)", resumable=True)
            steps.record(node=node, step=op.key, phase="finished")
            return NodeOutcome(node, OutcomeStatus.MIGRATED)

        return await run_operations(
            sequence,
            finished=finished,
            node_of=lambda op: nodes[0] if isinstance(op, ClusterEdit) else op.node,
            procedure_of=procedure_of,
            drive=drive,
            gate=DrainGate(
                journey_max_unavailable(run.options, nodes=len(nodes)),
                cache.snapshot,
                cluster.drain_would_block,
                cache.budgets_changed,
            ),
            kubeadm_parallel=request.kubeadm_parallel,
        )


def most_at_once(log: list[tuple[str, str, int]], keys: set[str]) -> int:
    running, most = 0, 0
    for event, key, _ in log:
        if key in keys:
            running += 1 if event == "start" else -1
            most = max(most, running)
    return most


def alone_but(log: list[tuple[str, str, int]], together: set[str]) -> bool:
    """Whether every operation not in ``together`` ran alone: its end is the next event after its start."""
    return all(
        log[index + 1][:2] == ("end", key)
        for index, (event, key, _) in enumerate(log)
        if event == "start" and key not in together
    )


@dataclass
class Setup:
    """cluster_of's nodes, their journey's sequence, each node's drain key, and the run's journal."""

    names: dict[str, str]
    sequence: tuple[Operation, ...]
    drains: dict[str, str]
    journal: Journal


@pytest.fixture
async def journey_setup(world: World, tmp_path: Path) -> AsyncIterator[Setup]:
    names = await cluster_of(world)
    sequence = sequence_of(names)
    drains = {base: next(op.key for op in sequence if isinstance(op, NodeDrain) and op.node == name)
              for base, name in names.items()}
    journal = Journal(tmp_path / "journal.db")
    try:
        yield Setup(names, sequence, drains, journal)
    finally:
        journal.close()


async def test_drains_run_within_max_unavailable_and_the_pdb_barriers_alone(
    journey_setup: Setup, world: World, kube: Any, apiserver: LocalApiServer
) -> None:
    drains, sequence = journey_setup.drains, journey_setup.sequence
    workers = {drains["w1"], drains["w2"], drains["w3"]}
    run_id = begin(journey_setup.journal, apiserver, sequence, max_unavailable="2")
    log: list[tuple[str, str, int]] = []

    result = await run_from_journal(journey_setup.journal, run_id, kube, world, log)

    assert result.finished and result.done == len(sequence)
    assert most_at_once(log, workers) == 2  # --max-unavailable 2
    assert most_at_once(log, {drains["w1"], drains["w2"]}) == 1  # the PDB lets one go
    assert max(cordoned for event, _, cordoned in log if event == "start") <= 2
    assert alone_but(log, workers)  # every kubeadm step and cp's drain


async def test_a_failed_drain_lets_the_one_in_flight_finish_and_the_run_resumes_from_the_journal(
    journey_setup: Setup, world: World, kube: Any, apiserver: LocalApiServer
) -> None:
    drains, sequence = journey_setup.drains, journey_setup.sequence
    run_id = begin(journey_setup.journal, apiserver, sequence, max_unavailable="3")
    log: list[tuple[str, str, int]] = []

    stopped = await run_from_journal(
        journey_setup.journal, run_id, kube, world, log,
        fails=lambda op: isinstance(op, NodeDrain) and op.node == journey_setup.names["w3"],
    )

    # w1 and w3 start (w2 waits: the PDB lets one of w1/w2 go); w3 fails, w1 finishes, w2 never starts.
    assert stopped.stopped is not None and stopped.stopped.node == journey_setup.names["w3"]
    started = {key for event, key, _ in log if event == "start"}
    assert drains["w2"] not in started and {drains["w1"], drains["w3"]} <= started
    assert stopped.done == len(sequence) - 2
    listed = await world.call("GET", "/api/v1/nodes")
    assert not any(item["spec"].get("unschedulable") for item in listed["items"])  # each drain uncordoned

    again: list[tuple[str, str, int]] = []
    resumed = await run_from_journal(journey_setup.journal, run_id, kube, world, again)

    assert resumed.finished and resumed.done == len(sequence)
    assert sorted(key for event, key, _ in again if event == "start") == sorted([drains["w2"], drains["w3"]])


async def test_a_journal_without_the_options_runs_one_operation_at_a_time(
    journey_setup: Setup, world: World, kube: Any, apiserver: LocalApiServer
) -> None:
    run_id = begin(journey_setup.journal, apiserver, journey_setup.sequence)
    recorded = journey_setup.journal.run(run_id)
    assert recorded is not None and "max_unavailable" not in recorded.options
    log: list[tuple[str, str, int]] = []

    result = await run_from_journal(journey_setup.journal, run_id, kube, world, log)

    assert result.finished
    assert most_at_once(log, {op.key for op in journey_setup.sequence}) == 1


def kubeadm_of_workers(setup: Setup) -> dict[str, set[str]]:
    """Each step's workers' `kubeadm upgrade node` keys, by release."""
    found: dict[str, set[str]] = {}
    for op in setup.sequence:
        if isinstance(op, KubeadmUpgrade) and not op.control_plane:
            found.setdefault(str(op.release), set()).add(op.key)
    return found


async def test_the_workers_kubeadm_steps_run_within_kubeadm_parallel_between_the_apply_and_the_drains(
    journey_setup: Setup, world: World, kube: Any, apiserver: LocalApiServer
) -> None:
    sequence = journey_setup.sequence
    run_id = begin(journey_setup.journal, apiserver, sequence, kubeadm_parallel=2, max_unavailable="1")
    log: list[tuple[str, str, int]] = []

    result = await run_from_journal(journey_setup.journal, run_id, kube, world, log)

    assert result.finished and result.done == len(sequence)
    steps = kubeadm_of_workers(journey_setup)
    assert sorted(steps) == [str(v(31)), str(v(32))]
    for keys in steps.values():
        assert len(keys) == 3 and most_at_once(log, keys) == 2  # --kubeadm-parallel 2
        span = [index for index, (_, key, _) in enumerate(log) if key in keys]
        assert all(key in keys for _, key, _ in log[span[0] : span[-1] + 1])  # nothing else meanwhile
    together = set().union(*steps.values())
    assert alone_but(log, together)  # the applies and, with --max-unavailable 1, the drains


async def test_a_failed_kubeadm_step_lets_the_one_in_flight_finish_and_the_run_resumes_with_the_two_left(
    journey_setup: Setup, world: World, kube: Any, apiserver: LocalApiServer
) -> None:
    names, sequence = journey_setup.names, journey_setup.sequence
    run_id = begin(journey_setup.journal, apiserver, sequence, kubeadm_parallel=2, max_unavailable="3")
    first = kubeadm_of_workers(journey_setup)[str(v(31))]
    failing = next(key for key in first if key.endswith(names["w1"]))
    log: list[tuple[str, str, int]] = []

    journal = journey_setup.journal
    stopped = await run_from_journal(journal, run_id, kube, world, log, fails=lambda op: op.key == failing)

    # w1 and w2 start (names in order, two at once); w1 fails fast, w2 finishes, w3's never starts.
    assert stopped.stopped is not None and stopped.stopped.node == names["w1"]
    assert stopped.stopped.status is OutcomeStatus.FAILED
    started = [key for event, key, _ in log if event == "start"]
    assert sorted(started) == sorted([f"kubeadm-apply:v{v(31)}:{names['cp']}", failing,
                                      *(key for key in first if key.endswith(names["w2"]))])
    assert stopped.done == 2  # the apply and w2's step: nothing undone

    again: list[tuple[str, str, int]] = []
    resumed = await run_from_journal(journal, run_id, kube, world, again)

    assert resumed.finished and resumed.done == len(sequence)
    assert sorted(key for event, key, _ in again[:4] if event == "start") == sorted(
        key for key in first if not key.endswith(names["w2"])
    )
