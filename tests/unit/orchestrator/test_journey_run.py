"""The journey's operations run in order (orchestrator/journey_run.py), on a small cluster played as data:
one control-plane node and one worker on cri-dockerd at 1.30, to 1.33 under kubeadm's checks (kubeadm
1.31, 1.32, 1.33 on both, then one drain each). Matrix: the whole run; a run killed in the worker's drain
and resumed from the journals; a worker whose drain fails (the run stops there, the worker is back at
1.30, the control plane stays at 1.33); the releases --binaries lacks. Then 1.23 on dockershim to 1.37.2
action by action under both skews (8 and 5 drains per node, kubeadm of every minor on every node), and
killed at random moments, then resumed to the same end."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from shimshift.core import actions as act
from shimshift.core.actions import Procedure
from shimshift.core.fleet import BudgetSnapshot
from shimshift.core.journey.releases import NEWEST_PATCH
from shimshift.core.journey.schedule import JourneyNode, plan_journey
from shimshift.core.journey.sequence import (
    ClusterEdit,
    JourneyOptions,
    KubeadmUpgrade,
    NodeDrain,
    Operation,
    journey_sequence,
)
from shimshift.core.journey.skew import SkewRules
from shimshift.core.node_files import KUBEADM_FLAGS_ENV, NODE_FILES
from shimshift.core.procedures.migration import MigrationSettings, NodeOutcome, OutcomeStatus, plan_from_facts
from shimshift.core.procedures.upgrade import UpgradeProcedure, UpgradeSettings
from shimshift.core.upgrade.binaries import Binary, TargetBinary
from shimshift.core.upgrade.cri_dockerd_swap import ReplacementCriDockerd
from shimshift.core.versions import KubernetesVersion, parse_cri_dockerd_version
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT
from shimshift.orchestrator.journey_run import DrainGate, JourneyBinaries, operation_procedure, run_operations
from tests.unit.core.nodes import cri_dockerd_node, dockershim_node
from tests.unit.core.procedures.node_world import Killed, UpgradeWorld, binary_digest, drive, kill_after


def v(minor: int) -> KubernetesVersion:
    return KubernetesVersion(minor, NEWEST_PATCH[minor])


def release(minor: int) -> str:
    return f"v{v(minor)}"


BINARIES = JourneyBinaries(
    {
        str(v(minor)): tuple(
            TargetBinary(b, f"/srv/k8s/{release(minor)}/{b}", release(minor), binary_digest(str(b), release(minor)))
            for b in Binary
        )
        for minor in (31, 32, 33)
    }
)
SEQUENCE = journey_sequence(
    plan_journey(
        [JourneyNode("cp1", True, v(30)), JourneyNode("w1", False, v(30))], control_plane=v(30), target=v(33)
    )
)


def cluster(**worker: Any) -> dict[str, UpgradeWorld]:
    worlds = {}
    for name, options in (("cp1", {}), ("w1", worker)):
        world = UpgradeWorld(
            files=cri_dockerd_node(30),
            kubelet_version=release(30),
            running_kubelet=release(30),
            annotation=CRI_DOCKERD_ENDPOINT,
            apiservers={"cp1": release(30)},
            **options,
        )
        world.by_digest = {binary_digest(str(b), release(m)): release(m) for b in Binary for m in range(30, 34)}
        worlds[name] = world
    return worlds


def drain_procedure(op: NodeDrain, settings: UpgradeSettings) -> UpgradeProcedure:
    return UpgradeProcedure(op.node, plan_from_facts, MigrationSettings(node_files=NODE_FILES), upgrade=settings)


def journal_keys(worlds: dict[str, UpgradeWorld], phase: str) -> set[str]:
    return {step for world in worlds.values() for step, seen in world.steps() if seen == phase and "/" not in step}


def run(worlds: dict[str, UpgradeWorld], binaries: JourneyBinaries = BINARIES) -> Any:
    async def on_node(node: str, procedure: Procedure[NodeOutcome]) -> NodeOutcome:
        outcome: NodeOutcome = drive(procedure, worlds[node])
        # One control plane: every node's API server view follows the first control-plane node's.
        for world in worlds.values():
            world.apiservers = dict(worlds["cp1"].apiservers)
        return outcome

    return play(
        SEQUENCE, worlds, on_node, lambda op: operation_procedure(op, binaries, drain_procedure=drain_procedure)
    )


def play(
    sequence: tuple[Operation, ...],
    worlds: dict[str, UpgradeWorld],
    on_node: Callable[[str, Procedure[NodeOutcome]], Awaitable[NodeOutcome]],
    procedure_of: Callable[[Operation], Procedure[NodeOutcome]],
    gate: DrainGate | None = None,
    kubeadm_parallel: int = 1,
) -> Any:
    """The run from where the worlds' journals stand (a cluster edit's actions go to cp1)."""
    return asyncio.run(
        run_operations(
            sequence,
            finished=journal_keys(worlds, "finished"),
            node_of=lambda op: "cp1" if isinstance(op, ClusterEdit) else op.node,
            procedure_of=procedure_of,
            drive=on_node,
            gate=gate,
            kubeadm_parallel=kubeadm_parallel,
        )
    )


def test_the_whole_journey_runs_each_operation_once_in_order() -> None:
    assert [op.key.split(":")[0] for op in SEQUENCE] == [
        *["kubeadm-apply", "kubeadm-node"] * 3,
        "drain-1",
        "drain-1",
    ]
    worlds = cluster()

    result = run(worlds)

    assert result.finished and result.stopped is None and result.done == len(SEQUENCE)
    for world in worlds.values():
        assert world.running_kubelet == release(33) and world.releases["/usr/bin/kubeadm"] == release(33)
    applies = [argv[3] for argv in worlds["cp1"].runs() if argv[1:3] == ("upgrade", "apply")]
    assert applies == [release(31), release(32), release(33)]
    assert len([argv for argv in worlds["w1"].runs() if argv[1:3] == ("upgrade", "node")]) == 3


def test_cri_dockerd_given_reaches_each_nodes_first_drain() -> None:
    digest = binary_digest("cri-dockerd", "0.4.6")
    given = ReplacementCriDockerd("/srv/cri-dockerd", parse_cri_dockerd_version("0.4.6"), digest)
    worlds = cluster()
    for world in worlds.values():
        world.by_digest[given.sha256] = "0.4.6"

    result = run(worlds, dataclasses.replace(BINARIES, cri_dockerd=given))

    assert result.finished, result.stopped
    for world in worlds.values():
        assert world.releases["/usr/bin/cri-dockerd"] == world.running_cri_dockerd == "0.4.6"
        uploads = [a.target for a in world.of_type(act.Upload)]
        # Once, in the node's one drain, before its kubelet (the kubeadm steps before it upload kubeadm only).
        assert uploads.count("/usr/bin/cri-dockerd") == 1
        assert uploads.index("/usr/bin/cri-dockerd") < uploads.index("/usr/bin/kubelet")


def test_a_run_killed_in_a_drain_resumes_from_the_journals() -> None:
    worker_drain = next(op for op in SEQUENCE if isinstance(op, NodeDrain) and op.node == "w1")
    worlds = cluster(fail=kill_after(worker_drain.step_key("write-config")))
    with pytest.raises(Killed):
        run(worlds)
    worlds["w1"].fail = lambda action: None
    kubeadm_runs = len([argv for world in worlds.values() for argv in world.runs() if argv[1:2] == ("upgrade",)])

    result = run(worlds)

    assert result.finished
    again = len([argv for world in worlds.values() for argv in world.runs() if argv[1:2] == ("upgrade",)])
    assert again == kubeadm_runs  # every kubeadm step had finished: none runs again
    assert result.outcomes[0].node == "w1" and worlds["w1"].running_kubelet == release(33)


def test_a_failed_worker_drain_stops_the_run_with_the_worker_back_and_the_control_plane_kept() -> None:
    worlds = cluster(new_kubelet_starts=False)

    result = run(worlds)

    assert not result.finished and result.stopped is not None
    assert (result.stopped.node, result.stopped.status) == ("w1", OutcomeStatus.ROLLED_BACK)
    assert result.stopped.resumable
    assert worlds["w1"].running_kubelet == release(30)
    assert worlds["cp1"].apiservers == {"cp1": release(33)} and worlds["cp1"].running_kubelet == release(33)
    assert result.done == len(SEQUENCE) - 1

    # The cause fixed, `--resume` tries that drain afresh and ends the journey.
    worlds["w1"].new_kubelet_starts = True
    resumed = run(worlds)
    assert resumed.finished and worlds["w1"].running_kubelet == release(33)


def test_the_releases_binaries_lack_are_named_before_the_run() -> None:
    partial = JourneyBinaries({str(v(31)): BINARIES.by_release[str(v(31))]})
    assert partial.missing(SEQUENCE) == [str(v(32)), str(v(33))]
    assert BINARIES.missing(SEQUENCE) == []
    assert all(isinstance(op, KubeadmUpgrade | NodeDrain) for op in SEQUENCE)


# 1.23 on dockershim to 1.37.2, action by action -----------------------------------------------------


def long_cluster(**worker: Any) -> dict[str, UpgradeWorld]:
    worlds = {}
    for name, options in (("cp1", {}), ("w1", worker)):
        world = UpgradeWorld(files=dockershim_node(23), apiservers={"cp1": "v1.23.17"}, **options)
        world.by_digest = {
            binary_digest(str(b), f"v{release}"): f"v{release}" for b in Binary for release in ALL_RELEASES
        }
        worlds[name] = world
    return worlds


ALL_RELEASES = [str(v(minor)) for minor in range(24, 37)] + ["1.37.2"]
ALL_BINARIES = JourneyBinaries(
    {
        release: tuple(
            TargetBinary(b, f"/srv/k8s/v{release}/{b}", f"v{release}", binary_digest(str(b), f"v{release}"))
            for b in Binary
        )
        for release in ALL_RELEASES
    }
)


def long_journey(rules: SkewRules) -> tuple[Operation, ...]:
    nodes = [JourneyNode("cp1", True, v(23), dockershim=True), JourneyNode("w1", False, v(23), dockershim=True)]
    return journey_sequence(
        plan_journey(nodes, control_plane=v(23), target=KubernetesVersion(37, 2), rules=rules),
        JourneyOptions(kubeadm_flags=("--ignore-preflight-errors=ImagePull",)),
    )


def run_long(sequence: tuple[Operation, ...], worlds: dict[str, UpgradeWorld]) -> Any:
    async def on_node(node: str, procedure: Procedure[NodeOutcome]) -> NodeOutcome:
        outcome: NodeOutcome = drive(procedure, worlds[node])
        for world in worlds.values():
            world.apiservers = dict(worlds["cp1"].apiservers)
        return outcome

    return play(
        sequence, worlds, on_node, lambda op: operation_procedure(op, ALL_BINARIES, drain_procedure=drain_procedure)
    )


@pytest.mark.parametrize(
    ("rules", "drains"), [(SkewRules.KUBEADM, 8), (SkewRules.KUBERNETES, 5), (SkewRules.LOCKSTEP, 14)]
)
def test_1_23_on_dockershim_to_1_37_drains_each_node_as_the_schedule_says(rules: SkewRules, drains: int) -> None:
    worlds = long_cluster()

    result = run_long(long_journey(rules), worlds)

    assert result.finished, result.stopped
    for name, world in worlds.items():
        assert len(world.of_type(act.Drain)) == drains, name
        kubeadm = [argv for argv in world.runs() if argv[1:3] in {("upgrade", "apply"), ("upgrade", "node")}]
        assert len(kubeadm) == 14  # the kubeadm of every minor, 1.24 to 1.37, on every node
        assert world.running_kubelet == "v1.37.2" and world.annotation == CRI_DOCKERD_ENDPOINT
        flags = world.files[KUBEADM_FLAGS_ENV] or b""
        assert b"--network-plugin" not in flags and b"--pod-infra-container-image" not in flags
    assert worlds["cp1"].apiservers == {"cp1": "v1.37.2"}


@pytest.mark.parametrize("seed", range(12))
def test_1_23_to_1_37_killed_at_a_random_moment_resumes_to_the_same_end(seed: int) -> None:
    sequence = long_journey(SkewRules.KUBERNETES)
    at = random.Random(seed).randrange(1, 1500)  # a whole run answers about 1500 actions
    count = 0

    def kill(action: act.Action) -> BaseException | None:
        nonlocal count
        count += 1
        return Killed() if count == at else None

    worlds = long_cluster()
    for world in worlds.values():
        world.fail = kill
    with contextlib.suppress(Killed):
        run_long(sequence, worlds)
    for world in worlds.values():
        world.fail = lambda action: None

    result = run_long(sequence, worlds)

    assert result.finished, result.stopped
    assert all(world.running_kubelet == "v1.37.2" for world in worlds.values())
    assert [len(world.of_type(act.Drain)) for world in worlds.values()] in ([5, 5], [5, 6], [6, 5])


# Drains together within --max-unavailable -------------------------------------------------------------

WIDE_NODES = ["cp1", "cp2", "w1", "w2", "w3"]
WIDE = journey_sequence(
    plan_journey(
        [JourneyNode(name, name.startswith("cp"), v(30)) for name in WIDE_NODES], control_plane=v(30), target=v(33)
    )
)


def wide_cluster(**by_node: dict[str, Any]) -> dict[str, UpgradeWorld]:
    worlds = {}
    for name in WIDE_NODES:
        world = UpgradeWorld(
            files=cri_dockerd_node(30),
            kubelet_version=release(30),
            running_kubelet=release(30),
            annotation=CRI_DOCKERD_ENDPOINT,
            apiservers={"cp1": release(30), "cp2": release(30)},
            **by_node.get(name, {}),
        )
        world.by_digest = {binary_digest(str(b), release(m)): release(m) for b in Binary for m in range(30, 34)}
        worlds[name] = world
    return worlds


def run_wide(
    worlds: dict[str, UpgradeWorld], gate: DrainGate, log: list[tuple[str, str]], kubeadm_parallel: int = 1
) -> Any:
    """Each operation takes a moment of the event loop, so drains of one stage overlap as the gate lets them;
    ``log`` gets ("start"/"end", key) in the order they happen."""
    current: dict[str, Operation] = {}

    def procedure_of(op: Operation) -> Procedure[NodeOutcome]:
        current[op.node if not isinstance(op, ClusterEdit) else "cp1"] = op
        return operation_procedure(op, BINARIES, drain_procedure=drain_procedure)

    async def on_node(node: str, procedure: Procedure[NodeOutcome]) -> NodeOutcome:
        key = current[node].key
        log.append(("start", key))
        await asyncio.sleep(0.01)
        outcome: NodeOutcome = drive(procedure, worlds[node])
        # One control plane, played by cp1's world: cp2's API server follows cp1's apply.
        for world in worlds.values():
            world.apiservers = {"cp1": worlds["cp1"].apiservers["cp1"], "cp2": worlds["cp1"].apiservers["cp1"]}
        log.append(("end", key))
        return outcome

    return play(WIDE, worlds, on_node, procedure_of, gate, kubeadm_parallel)


def most_at_once(log: list[tuple[str, str]], keys: set[str]) -> int:
    running, most = 0, 0
    for event, key in log:
        if key in keys:
            running += 1 if event == "start" else -1
            most = max(most, running)
    return most


def test_a_stages_drains_run_together_control_plane_alone_workers_within_max_unavailable() -> None:
    worlds = wide_cluster()
    log: list[tuple[str, str]] = []

    result = run_wide(worlds, DrainGate(max_unavailable=2), log)

    assert result.finished and result.done == len(WIDE)
    drains = {op.key: op for op in WIDE if isinstance(op, NodeDrain)}
    workers = {key for key, op in drains.items() if not op.control_plane}
    control = set(drains) - workers
    assert most_at_once(log, control) == 1
    assert most_at_once(log, workers) == 2
    assert most_at_once(log, set(drains)) == 2  # a worker never drains beside a control-plane node
    # Every barrier runs alone: nothing starts until it ends, and it starts when nothing runs.
    for index, (event, key) in enumerate(log):
        if event == "start" and key not in drains:
            assert log[index + 1] == ("end", key)
    ends = [key for event, key in log if event == "end"]
    assert ends.index(min(workers, key=ends.index)) > max(ends.index(key) for key in control)
    assert all(world.running_kubelet == release(33) for world in worlds.values())


def test_a_failed_drain_lets_those_in_flight_finish_starts_no_other_and_resumes_the_rest() -> None:
    worlds = wide_cluster(w1={"new_kubelet_starts": False})
    log: list[tuple[str, str]] = []

    result = run_wide(worlds, DrainGate(max_unavailable=2), log)

    assert result.stopped is not None and (result.stopped.node, result.stopped.status) == (
        "w1",
        OutcomeStatus.ROLLED_BACK,
    )
    # w1 and w2 ran together; w1 failed, w2 finished; w3 never started.
    assert worlds["w1"].running_kubelet == release(30) and worlds["w2"].running_kubelet == release(33)
    assert worlds["w3"].running_kubelet == release(30) and not worlds["w3"].of_type(act.Drain)
    assert result.done == len(WIDE) - 2

    worlds["w1"].new_kubelet_starts = True
    again: list[tuple[str, str]] = []
    resumed = run_wide(worlds, DrainGate(max_unavailable=2), again)
    assert resumed.finished
    assert sorted(key.split(":")[-1] for event, key in again if event == "start") == ["w1", "w3"]
    assert all(world.running_kubelet == release(33) for world in worlds.values())


def test_a_drain_a_pdb_would_block_waits_for_another_node_to_end() -> None:
    """w1 and w2 each hold a pod of one PDB that allows a single disruption: they never drain together,
    and w3 (no PDB) goes beside whichever drains first."""
    snapshot = BudgetSnapshot({"w1": {"ns/web": 1}, "w2": {"ns/web": 1}}, {"ns/web": 1})
    asked: list[str] = []

    async def budgets() -> BudgetSnapshot:
        return snapshot

    async def would_block(node: str, keys: frozenset[str]) -> bool:
        asked.append(node)
        return False

    worlds = wide_cluster()
    log: list[tuple[str, str]] = []

    said: list[str] = []
    result = run_wide(worlds, DrainGate(3, budgets, would_block, on_wait=said.append), log)

    assert result.finished
    # The drain held back is said, with the PDB it waits for and the drain it waits on, once.
    assert len(said) == 1 and said[0].startswith("drain 1 of w2 waits: PodDisruptionBudget ns/web allows no more")
    assert "while w1 runs" in said[0] or "while w1, w3 runs" in said[0], said
    web = {op.key for op in WIDE if isinstance(op, NodeDrain) and op.node in {"w1", "w2"}}
    assert most_at_once(log, web) == 1
    workers = {op.key for op in WIDE if isinstance(op, NodeDrain) and not op.control_plane}
    assert most_at_once(log, workers) == 2
    assert asked and set(asked) <= {"w1", "w2"}  # the server is asked only about a PDB at its last disruption


# The workers' kubeadm upgrade node of a step together, within --kubeadm-parallel ---------------------------


def worker_kubeadm(minor: int) -> set[str]:
    return {op.key for op in WIDE if isinstance(op, KubeadmUpgrade) and not op.control_plane and op.release == v(minor)}


def test_a_steps_workers_kubeadm_run_together_within_kubeadm_parallel_after_the_control_plane_alone() -> None:
    worlds = wide_cluster()
    log: list[tuple[str, str]] = []

    result = run_wide(worlds, DrainGate(max_unavailable=1), log, kubeadm_parallel=2)

    assert result.finished and result.done == len(WIDE)
    for minor in (31, 32, 33):
        workers = worker_kubeadm(minor)
        assert len(workers) == 3 and most_at_once(log, workers) == 2  # --kubeadm-parallel 2
        # From the first one's start to the last one's end nothing else runs: the apply and cp2's step have
        # ended, and the drains have not begun.
        span = [index for index, (_, key) in enumerate(log) if key in workers]
        assert all(key in workers for _, key in log[span[0] : span[-1] + 1])
        assert log.index(("end", f"kubeadm-node:v{v(minor)}:cp2")) < span[0]
    together = set().union(*(worker_kubeadm(minor) for minor in (31, 32, 33)))
    drains = {op.key for op in WIDE if isinstance(op, NodeDrain)}
    for index, (event, key) in enumerate(log):  # everything else but the drains runs alone
        if event == "start" and key not in together | drains:
            assert log[index + 1] == ("end", key)
    for node in WIDE_NODES:  # never two operations of one node at once
        assert most_at_once(log, {key for key in together | drains if key.endswith(f":{node}")}) == 1
    assert all(world.releases["/usr/bin/kubeadm"] == release(33) for world in worlds.values())


def test_a_failed_worker_kubeadm_lets_those_in_flight_finish_starts_no_other_undoes_nothing_and_resumes() -> None:
    worlds = wide_cluster(w1={"kubeadm_fails": True})
    log: list[tuple[str, str]] = []

    result = run_wide(worlds, DrainGate(max_unavailable=1), log, kubeadm_parallel=2)

    assert result.stopped is not None and (result.stopped.node, result.stopped.status) == ("w1", OutcomeStatus.FAILED)
    assert result.stopped.resumable
    # w1 and w2 ran together at 1.31; w1 failed, w2 finished; w3's never started, nor anything after.
    started = [key for event, key in log if event == "start"]
    assert started[-2:] == sorted(worker_kubeadm(31) - {f"kubeadm-node:v{v(31)}:w3"})
    assert result.done == [op.key for op in WIDE].index(f"kubeadm-node:v{v(31)}:w1") + 1  # the apply, cp2, w2
    # Nothing undone: the control plane stays at 1.31, w2 keeps its kubeadm 1.31 step.
    assert worlds["cp1"].apiservers == {"cp1": release(31), "cp2": release(31)}
    assert [argv[1:3] for argv in worlds["w2"].runs() if argv[1:2] == ("upgrade",)] == [("upgrade", "node")]
    assert not worlds["w3"].runs()

    worlds["w1"].kubeadm_fails = False
    again: list[tuple[str, str]] = []
    resumed = run_wide(worlds, DrainGate(max_unavailable=1), again, kubeadm_parallel=2)

    assert resumed.finished
    first = [key for event, key in again if event == "start"][:2]
    assert sorted(first) == [f"kubeadm-node:v{v(31)}:w1", f"kubeadm-node:v{v(31)}:w3"]
    assert len([argv for argv in worlds["w2"].runs() if argv[1:3] == ("upgrade", "node")]) == 3  # once per minor
    assert all(world.running_kubelet == release(33) for world in worlds.values())
