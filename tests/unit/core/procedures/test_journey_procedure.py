"""The journey's operations step by step (core/procedures/journey.py), against a node played as data
(tests/unit/core/procedures/node_world.py).

Matrix: a drain of a cri-dockerd node past 1.27 (kubelet and kubectl swapped, no kubeadm, the rejected
flag gone, steps named under the drain); a dockershim node's first drain (migrated); two drains of one
node in one journal; a drain whose kubelet does not come up (back to the drain's start, resumable); a run
killed in a drain and resumed; kubeadm upgrade node on a worker at 1.34 (kubeadm replaced,
instance-config.yaml first), apply on the first control-plane node, a failed kubeadm (stopped, never
undone, resumed at its step); the failCgroupV1 edit of the cluster's kubelet configuration; the drain to 1.36
with --kubelet-websockets-off (the gate written in its write-config, taken out again by its rollback).
"""

from __future__ import annotations

from typing import Any

import pytest

from shimshift.core import actions as act
from shimshift.core.journey.releases import NEWEST_PATCH
from shimshift.core.journey.sequence import (
    ClusterEdit,
    KubeadmMode,
    KubeadmUpgrade,
    NodeDrain,
    NodeEdit,
)
from shimshift.core.node_files import DEFAULT_KUBELET, INSTANCE_CONFIG, KUBEADM_FLAGS_ENV, KUBELET_CONFIG, NODE_FILES
from shimshift.core.procedures.journey import (
    KubeadmStepProcedure,
    cluster_edit,
    drain_planner,
    drain_settings,
    journey_drain,
    newest_plan_scope,
)
from shimshift.core.procedures.migration import MigrationSettings, OutcomeStatus, plan_from_facts
from shimshift.core.procedures.upgrade import UpgradeProcedure
from shimshift.core.upgrade.binaries import Binary, TargetBinary
from shimshift.core.upgrade.cri_dockerd_swap import ReplacementCriDockerd
from shimshift.core.versions import KubernetesVersion, parse_cri_dockerd_version
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT
from tests.unit.core.nodes import cri_dockerd_node, dockershim_node
from tests.unit.core.procedures.node_world import (
    CRI_DOCKERD_BINARY,
    CRI_DOCKERD_PID,
    Killed,
    UpgradeWorld,
    binary_digest,
    drive,
    kill_after,
)


def v(minor: int) -> KubernetesVersion:
    return KubernetesVersion(minor, NEWEST_PATCH[minor])


def release(minor: int) -> str:
    return f"v{v(minor)}"


def binaries(minor: int) -> tuple[TargetBinary, ...]:
    return tuple(
        TargetBinary(b, f"/srv/k8s/{release(minor)}/{b}", release(minor), binary_digest(str(b), release(minor)))
        for b in Binary
    )


def world(files: dict[str, bytes | None], minor: int, **options: Any) -> UpgradeWorld:
    node = UpgradeWorld(
        files=files,
        kubelet_version=release(minor),
        running_kubelet=release(minor),
        annotation=CRI_DOCKERD_ENDPOINT if minor >= 24 else "/var/run/dockershim.sock",
        **options,
    )
    node.by_digest = {binary_digest(str(b), release(m)): release(m) for b in Binary for m in NEWEST_PATCH}
    return node


def drain(
    node: str, number: int, start: int, end: int, *, migrate: bool = False, edits: tuple[NodeEdit, ...] = ()
) -> NodeDrain:
    edits = ((NodeEdit.MIGRATE,) if migrate else ()) + edits
    return NodeDrain(node, False, number, v(start), v(end), migrate, edits)


def drain_run(op: NodeDrain, cri_dockerd: ReplacementCriDockerd | None = None) -> Any:
    settings = drain_settings(op, binaries=binaries(op.to_release.minor), packages=None, cri_dockerd=cri_dockerd)
    procedure = UpgradeProcedure(
        op.node,
        drain_planner(op, plan_from_facts),  # as the journey's run makes it (orchestrator/journey_session.py)
        MigrationSettings(node_files=NODE_FILES),
        upgrade=settings,
    )
    return journey_drain(op, procedure)


def started(node: UpgradeWorld) -> list[str]:
    return [step for step, phase in node.steps() if phase == "started"]


# Drains ------------------------------------------------------------------------------------------------


def test_a_drain_past_1_27_swaps_kubelet_and_kubectl_only_and_drops_the_flag_that_kubelet_rejects() -> None:
    node = world(cri_dockerd_node(25), 25, apiservers={"cp1": release(27)})
    op = drain("w1", 3, 25, 27)

    outcome = drive(drain_run(op), node)

    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert node.releases["/usr/bin/kubelet"] == node.releases["/usr/bin/kubectl"] == release(27)
    assert node.releases["/usr/bin/kubeadm"] == release(25)  # kubeadm ran at the control-plane step
    assert not [argv for argv in node.runs() if argv[1:2] == ("upgrade",)]
    assert [a.target for a in node.of_type(act.Upload)] == ["/usr/bin/kubelet", "/usr/bin/kubectl"]
    assert b"--container-runtime=remote" not in (node.files[KUBEADM_FLAGS_ENV] or b"")
    assert CRI_DOCKERD_ENDPOINT.encode() in (node.files[KUBEADM_FLAGS_ENV] or b"")
    assert node.running_kubelet == release(27) and not node.cordoned
    # Every step is the drain's: named under its key, and the drain itself recorded around them.
    names = [step for step, _ in node.steps()]
    assert names[0] == names[-1] == op.key
    assert all(name == op.key or name.startswith(op.step_key("")) for name in names)
    assert node.steps()[-1] == (op.key, "finished")


def test_a_dockershim_nodes_first_drain_migrates_it() -> None:
    node = world(dockershim_node(23), 23, apiservers={"cp1": release(24)})
    outcome = drive(drain_run(drain("w1", 1, 23, 24, migrate=True)), node)
    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert node.annotation == CRI_DOCKERD_ENDPOINT
    assert b"--network-plugin" not in (node.files[KUBEADM_FLAGS_ENV] or b"")
    assert node.running_kubelet == release(24)


def test_two_drains_of_one_node_each_run_every_step_once() -> None:
    node = world(cri_dockerd_node(25), 25, apiservers={"cp1": release(27)})
    first, second = drain("w1", 3, 25, 27), drain("w1", 4, 27, 30)
    assert drive(drain_run(first), node).status is OutcomeStatus.MIGRATED
    node.apiservers = {"cp1": release(30)}
    assert drive(drain_run(second), node).status is OutcomeStatus.MIGRATED

    ran_restart = [step for step in started(node) if step.endswith("/restart-kubelet")]
    assert ran_restart == [first.step_key("restart-kubelet"), second.step_key("restart-kubelet")]
    assert node.running_kubelet == release(30)
    assert node.releases["/usr/bin/kubelet.shimshift-v1.27.16.bak"] == release(27)


def test_a_failed_drain_goes_back_to_the_releases_that_drain_began_with() -> None:
    node = world(cri_dockerd_node(25), 25, apiservers={"cp1": release(28)}, new_kubelet_starts=False)
    before = {path: data for path, data in node.files.items() if data is not None}
    op = drain("w1", 2, 25, 28)

    outcome = drive(drain_run(op), node)

    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.ROLLED_BACK, "verify"), outcome.message
    assert outcome.resumable and "goes back to kubelet and kubectl 1.25.16" in outcome.message
    assert node.releases["/usr/bin/kubelet"] == node.releases["/usr/bin/kubectl"] == release(25)
    assert {path: data for path, data in node.files.items() if data is not None} == before
    assert node.running_kubelet == release(25) and not node.cordoned
    # No kubeadm ran in the drain, so no kubeadm file is restored; the binaries and the node's files are.
    rollback = [step.removeprefix(op.step_key("")) for step in started(node) if "/rollback:" in step]
    assert rollback[0] == "rollback:restore-binaries" and "rollback:restore-kubeadm-files" not in rollback
    assert node.steps()[-1] == (op.key, "failed")


GATE_OFF = b"--feature-gates=ExtendWebSocketsToKubelet=false"


def test_the_drain_reaching_1_36_turns_the_websocket_gate_off_in_kubelet_extra_args() -> None:
    files = cri_dockerd_node(33)
    node = world(files, 33, apiservers={"cp1": release(36)})
    op = drain("w1", 7, 33, 36, edits=(NodeEdit.KUBELET_WEBSOCKETS_OFF,))

    outcome = drive(drain_run(op), node)

    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert node.files[DEFAULT_KUBELET] == b'KUBELET_EXTRA_ARGS="' + GATE_OFF + b'"\n'
    assert node.files[KUBEADM_FLAGS_ENV] == files[KUBEADM_FLAGS_ENV]  # kubeadm's file left to kubeadm
    # Written by the drain's own write-config, after the cordon and drain: the kubelet before 1.36 never sees it.
    writes = [step for step in started(node) if step.endswith(("/drain", "/write-config", "/restart-kubelet"))]
    assert writes == [op.step_key("drain"), op.step_key("write-config"), op.step_key("restart-kubelet")]
    # Without the edit, the same drain leaves the file alone.
    plain = world(cri_dockerd_node(33), 33, apiservers={"cp1": release(36)})
    assert drive(drain_run(drain("w1", 7, 33, 36)), plain).status is OutcomeStatus.MIGRATED
    assert plain.files[DEFAULT_KUBELET] is None


def test_a_failed_drain_to_1_36_takes_the_gate_out_again() -> None:
    files = cri_dockerd_node(33)
    files[DEFAULT_KUBELET] = b"KUBELET_EXTRA_ARGS=--feature-gates=Foo=true --v=2\n"
    node = world(files, 33, apiservers={"cp1": release(36)}, new_kubelet_starts=False)
    op = drain("w1", 7, 33, 36, edits=(NodeEdit.KUBELET_WEBSOCKETS_OFF,))

    outcome = drive(drain_run(op), node)

    assert outcome.status is OutcomeStatus.ROLLED_BACK, outcome.message
    # The drain wrote the gate (merged), then its rollback put the file back byte for byte: kubelet 1.33
    # would exit on a gate it does not know.
    written = [a.data for a in node.of_type(act.WriteFile) if a.path == DEFAULT_KUBELET]
    assert written == [
        b"KUBELET_EXTRA_ARGS=--feature-gates=Foo=true,ExtendWebSocketsToKubelet=false --v=2\n",
        files[DEFAULT_KUBELET],
    ]
    assert node.files[DEFAULT_KUBELET] == files[DEFAULT_KUBELET]
    assert node.running_kubelet == release(33)


def test_a_rolled_back_drain_is_tried_afresh_by_resume_once_the_cause_is_fixed() -> None:
    node = world(cri_dockerd_node(25), 25, apiservers={"cp1": release(28)}, new_kubelet_starts=False)
    op = drain("w1", 2, 25, 28)
    assert drive(drain_run(op), node).status is OutcomeStatus.ROLLED_BACK
    node.new_kubelet_starts = True

    outcome = drive(drain_run(op), node)

    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert node.running_kubelet == release(28)
    # The second attempt ran every step again, under its own names.
    assert started(node).count(op.step_key("cordon", 2)) == 1 and started(node).count(op.step_key("cordon")) == 1
    assert node.steps()[-1] == (op.key, "finished")


@pytest.mark.parametrize(
    "killed_after", ["preflight", "drain", "write-config", "install-kubelet-kubectl", "restart-kubelet"]
)
def test_a_drain_killed_anywhere_resumes_where_it_was(killed_after: str) -> None:
    op = drain("w1", 3, 25, 27)
    node = world(cri_dockerd_node(25), 25, apiservers={"cp1": release(27)}, fail=kill_after(op.step_key(killed_after)))
    with pytest.raises(Killed):
        drive(drain_run(op), node)
    done = {step for step, phase in node.steps() if phase == "finished"}
    node.fail = lambda action: None

    outcome = drive(drain_run(op), node)

    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert op.step_key(killed_after) in done
    # A step that finished before the kill never runs again.
    assert [step for step in done if step != op.key and started(node).count(step) != 1] == []
    assert node.running_kubelet == release(27) and node.steps()[-1] == (op.key, "finished")


# --cri-dockerd PATH: replaced in the node's first drain --------------------------------------------------

NEW_CRI_DOCKERD = ReplacementCriDockerd(
    "/srv/cri-dockerd-0.4.6", parse_cri_dockerd_version("0.4.6"), binary_digest("cri-dockerd", "0.4.6")
)
KEPT_CRI_DOCKERD = f"{CRI_DOCKERD_BINARY}.shimshift-0.3.17.bak"


def cri_world(minor: int, end: int, **options: Any) -> UpgradeWorld:
    node = world(cri_dockerd_node(minor), minor, apiservers={"cp1": release(end)}, **options)
    node.by_digest[NEW_CRI_DOCKERD.sha256] = "0.4.6"
    return node


def ran_index(node: UpgradeWorld, argv: tuple[str, ...], *, after: int = -1) -> int:
    return node.runs().index(argv, after + 1)


def test_the_first_drain_replaces_cri_dockerd_restarts_it_before_the_kubelet_and_verify_proves_it() -> None:
    node = cri_world(25, 27)

    outcome = drive(drain_run(drain("w1", 1, 25, 27), NEW_CRI_DOCKERD), node)

    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert node.releases[CRI_DOCKERD_BINARY] == node.running_cri_dockerd == "0.4.6"
    assert node.releases[KEPT_CRI_DOCKERD] == "0.3.17"
    uploads = [a for a in node.of_type(act.Upload) if a.target == CRI_DOCKERD_BINARY]
    assert [(a.source, a.sha256) for a in uploads] == [(NEW_CRI_DOCKERD.source, NEW_CRI_DOCKERD.sha256)]
    restart = ran_index(node, ("systemctl", "restart", "cri-docker.service"))
    kubelet = ran_index(node, ("systemctl", "restart", "kubelet"))
    assert restart < kubelet
    # verify asked the file its version after the kubelet restart, and read what the unit's process runs.
    assert ran_index(node, (CRI_DOCKERD_BINARY, "--version"), after=kubelet) > kubelet
    readlinks = [argv for argv in node.runs() if argv[0] == "readlink"]
    assert readlinks == [("readlink", "--", f"/proc/{CRI_DOCKERD_PID}/exe")]


def test_only_the_first_drain_replaces_and_only_where_the_version_differs() -> None:
    later = cri_world(25, 28)
    assert drive(drain_run(drain("w1", 2, 25, 28), NEW_CRI_DOCKERD), later).status is OutcomeStatus.MIGRATED
    same = cri_world(25, 27, running_cri_dockerd="0.4.6")
    assert drive(drain_run(drain("w1", 1, 25, 27), NEW_CRI_DOCKERD), same).status is OutcomeStatus.MIGRATED

    for node in (later, same):
        assert [a.target for a in node.of_type(act.Upload)] == ["/usr/bin/kubelet", "/usr/bin/kubectl"]
        assert ("systemctl", "restart", "cri-docker.service") not in node.runs()
        assert KEPT_CRI_DOCKERD not in node.releases


def test_a_failed_drain_puts_the_old_cri_dockerd_back_and_runs_it() -> None:
    node = cri_world(25, 27, new_kubelet_starts=False)

    outcome = drive(drain_run(drain("w1", 1, 25, 27), NEW_CRI_DOCKERD), node)

    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.ROLLED_BACK, "verify"), outcome.message
    assert node.releases[CRI_DOCKERD_BINARY] == node.running_cri_dockerd == "0.3.17"
    assert node.releases["/usr/bin/kubelet"] == release(25) and not node.cordoned


def test_a_cri_dockerd_that_does_not_run_the_new_file_fails_verify() -> None:
    node = cri_world(25, 27)
    # The restart did not take (a unit that ignores it): the old process runs the deleted file.
    stuck = node._run

    def run(argv: tuple[str, ...]) -> Any:
        if argv == ("systemctl", "restart", "cri-docker.service"):
            return stuck(("true",))
        return stuck(argv)

    node._run = run  # type: ignore[method-assign]
    outcome = drive(drain_run(drain("w1", 1, 25, 27), NEW_CRI_DOCKERD), node)

    assert outcome.status is OutcomeStatus.ROLLED_BACK and outcome.failed_step == "verify"
    assert "does not run the replaced /usr/bin/cri-dockerd: /usr/bin/cri-dockerd (deleted)" in outcome.message


@pytest.mark.parametrize("killed_after", ["preflight", "install-kubelet-kubectl", "restart-kubelet"])
def test_a_replacing_drain_killed_anywhere_resumes_and_keeps_the_original_binary(killed_after: str) -> None:
    op = drain("w1", 1, 25, 27)
    node = cri_world(25, 27, fail=kill_after(op.step_key(killed_after)))
    with pytest.raises(Killed):
        drive(drain_run(op, NEW_CRI_DOCKERD), node)
    node.fail = lambda action: None

    outcome = drive(drain_run(op, NEW_CRI_DOCKERD), node)

    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert node.releases[CRI_DOCKERD_BINARY] == node.running_cri_dockerd == "0.4.6"
    assert node.releases[KEPT_CRI_DOCKERD] == "0.3.17"


# kubeadm at a control-plane step ----------------------------------------------------------------------


def upgrade_node(node: str, minor: int, *, control_plane: bool = False) -> KubeadmUpgrade:
    return KubeadmUpgrade(node, control_plane, v(minor), KubeadmMode.NODE, ("--ignore-preflight-errors=ImagePull",))


def kubeadm_run(op: KubeadmUpgrade) -> Any:
    [kubeadm] = [b for b in binaries(op.release.minor) if b.binary is Binary.KUBEADM]
    return KubeadmStepProcedure(op, binary=kubeadm).run()


def test_a_worker_runs_kubeadm_upgrade_node_of_the_minor_with_that_kubeadm_and_no_drain() -> None:
    files = cri_dockerd_node(30)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS=""\n'  # the endpoint only in config.yaml
    files[KUBELET_CONFIG] = (
        b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        + f"containerRuntimeEndpoint: {CRI_DOCKERD_ENDPOINT}\n".encode()
    )
    node = world(files, 30, apiservers={"cp1": release(34)})
    op = upgrade_node("w1", 34)

    outcome = drive(kubeadm_run(op), node)

    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert node.releases["/usr/bin/kubeadm"] == release(34) and node.releases["/usr/bin/kubelet"] == release(30)
    assert [argv for argv in node.runs() if argv[1:2] == ("upgrade",)] == [
        ("/usr/bin/kubeadm", "upgrade", "node", "--ignore-preflight-errors=ImagePull")
    ]
    # kubeadm 1.34 would write an empty endpoint: shimshift wrote the file first, as kubeadm would have.
    assert CRI_DOCKERD_ENDPOINT.encode() in (node.files[INSTANCE_CONFIG] or b"")
    assert not node.of_type(act.Drain) and not node.of_type(act.Cordon)
    assert [step for step in started(node)] == [
        op.key,
        *(f"{op.key}/{s}" for s in ("install-kubeadm", "instance-config", "kubeadm-upgrade")),
    ]


def test_the_first_control_plane_node_applies_and_waits_for_its_static_pods() -> None:
    node = world(cri_dockerd_node(26), 26, apiservers={"cp1": release(26)})
    op = KubeadmUpgrade("cp1", True, v(27), KubeadmMode.APPLY, ("--yes", "--force"))
    outcome = drive(kubeadm_run(op), node)
    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert node.apiservers == {"cp1": release(27)}
    assert ("/usr/bin/kubeadm", "upgrade", "apply", "v1.27.16", "--yes", "--force") in node.runs()
    assert node.of_type(act.WaitControlPlane)
    assert "instance-config" not in str(node.of_type(act.WriteFile))


def test_a_failed_kubeadm_stops_the_run_undoes_nothing_and_resumes_at_its_step() -> None:
    node = world(cri_dockerd_node(27), 27, apiservers={"cp1": release(28)}, kubeadm_fails=True)
    op = upgrade_node("w1", 28)

    outcome = drive(kubeadm_run(op), node)

    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.FAILED, f"{op.key}/kubeadm-upgrade")
    assert outcome.resumable and "nothing is undone" in outcome.message and "--resume" in outcome.message
    assert node.releases["/usr/bin/kubeadm"] == release(28)  # kept: the step is never undone
    node.kubeadm_fails = False
    uploads = len(node.of_type(act.Upload))

    assert drive(kubeadm_run(op), node).status is OutcomeStatus.MIGRATED
    assert len(node.of_type(act.Upload)) == uploads  # install-kubeadm finished before: not run again
    assert node.steps()[-1] == (op.key, "finished")


def test_kubeadm_already_in_place_is_not_installed_again() -> None:
    node = world(cri_dockerd_node(27), 27, apiservers={"cp1": release(28)})
    node.releases["/usr/bin/kubeadm"] = release(28)
    assert drive(kubeadm_run(upgrade_node("w1", 28)), node).status is OutcomeStatus.MIGRATED
    assert not node.of_type(act.Upload)


# The cluster's kubelet configuration ------------------------------------------------------------------


def test_fail_cgroup_v1_goes_into_the_clusters_kubelet_configuration_and_is_recorded() -> None:
    node = world(cri_dockerd_node(34), 34)
    op = ClusterEdit(v(35))

    outcome = drive(cluster_edit(op), node)

    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert "failCgroupV1: false" in (node.cluster_kubelet_config or "")
    assert node.journal[-1] == (op.key, "finished", {"failCgroupV1": False, "by": "--allow-cgroup-v1", "changed": True})
    # Once there, nothing is written again.
    writes = len(node.of_type(act.WriteClusterKubeletConfig))
    assert drive(cluster_edit(op), node).status is OutcomeStatus.MIGRATED
    assert len(node.of_type(act.WriteClusterKubeletConfig)) == writes


def test_a_cluster_without_the_kubelet_configuration_is_stopped_before_any_change() -> None:
    node = world(cri_dockerd_node(34), 34, cluster_kubelet_config=None)
    outcome = drive(cluster_edit(ClusterEdit(v(35))), node)
    assert outcome.status is OutcomeStatus.FAILED and outcome.resumable
    assert "kubelet-config" in outcome.message and not node.of_type(act.WriteClusterKubeletConfig)


def test_a_drain_to_1_35_with_allow_cgroup_v1_sets_fail_cgroup_v1_false_first_and_records_it() -> None:
    node = world(cri_dockerd_node(34), 34, apiservers={"cp1": release(35)})
    base = drain("w1", 6, 34, 35)
    op = NodeDrain(
        base.node, False, base.number, base.from_release, base.to_release, False, (NodeEdit.FAIL_CGROUP_V1_FALSE,)
    )

    outcome = drive(drain_run(op), node)

    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert b"failCgroupV1: false" in (node.files[KUBELET_CONFIG] or b"")
    step = op.step_key("allow-cgroup-v1", 0)
    [detail] = [d for name, phase, d in node.journal if name == step and phase == "finished"]
    assert detail == {"failCgroupV1": False, "by": "--allow-cgroup-v1", "changed": True}
    # Before the drain's own steps: a refusal there leaves the node uncordoned, as it was.
    names = [step for step, _ in node.steps()]
    assert names.index(op.step_key("allow-cgroup-v1", 0)) < names.index(op.step_key("cordon"))


# --------------------------------------------------------------------------------------------------
# Which recorded plan `verify` checks a node against


@pytest.mark.parametrize(
    ("finished", "scope"),
    [
        ([], None),
        (["install-cri-dockerd", "cordon"], None),  # no plan recorded
        (["preflight", "cordon", "verify"], ""),  # migrate, or the one-minor upgrade
        (
            [
                "drain-1:v1.24.17:n#1/preflight",
                "kubeadm-node:v1.25.16:n/kubeadm-upgrade",
                "drain-2:v1.25.16:n#1/preflight",
            ],
            "drain-2:v1.25.16:n#1/",
        ),
        # the drain's second attempt, after the first was rolled back
        (
            ["drain-2:v1.25.16:n#1/preflight", "drain-2:v1.25.16:n#1/rolled-back", "drain-2:v1.25.16:n#2/preflight"],
            "drain-2:v1.25.16:n#2/",
        ),
        # a rolled-back drain leaves the node as the drain before it made it
        (
            ["drain-1:v1.24.17:n#1/preflight", "drain-2:v1.25.16:n#1/preflight", "drain-2:v1.25.16:n#1/rolled-back"],
            "drain-1:v1.24.17:n#1/",
        ),
        (["kubeadm-apply:v1.25.16:n/preflight"], None),  # only a drain's steps hold a plan
    ],
)
def test_verify_checks_a_node_against_its_newest_plan_a_journey_drain_s_included(
    finished: list[str], scope: str | None
) -> None:
    assert newest_plan_scope(finished) == scope
