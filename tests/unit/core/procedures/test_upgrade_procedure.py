"""The upgrade procedure step by step, against a node played as data (tests/unit/core/procedures/node_world.py).

Matrix: a worker and the first control-plane node upgraded in one drain (every step once, in order;
kubeadm before kubelet and kubectl; the old binaries kept; the files planned for the target kubelet;
the canary with allowPrivilegeEscalation: false); a worker whose new kubelet does not come up (rolled
back to its old binaries, the kubelet files as before kubeadm, dockershim); a control-plane node whose
kubeadm upgrade fails (stopped, not rolled back, the message says where it stands); no crictl (refused,
nothing touched); a worker before the API server (version skew, rolled back); resume after each step.
"""

from __future__ import annotations

from typing import Any

import pytest

from shimshift.core import actions as act
from shimshift.core.node_files import KUBEADM_FLAGS_ENV, NODE_FILES
from shimshift.core.procedures.migration import MigrationSettings, OutcomeStatus, StepFailed, plan_from_facts
from shimshift.core.procedures.upgrade import UPGRADE_STEPS, UpgradeProcedure, UpgradeSettings
from shimshift.core.steps import MIGRATION_ROLLBACK, Step
from shimshift.core.upgrade.binaries import Binary, TargetBinary
from shimshift.core.upgrade.cluster import Role
from tests.unit.core.nodes import dockershim_node
from tests.unit.core.procedures.node_world import Killed, UpgradeWorld, binary_digest, drive, kill_after

NEW = "v1.24.17"


def digest(binary: Binary, release: str) -> str:
    return binary_digest(str(binary), release)


TARGETS = tuple(TargetBinary(binary, f"/srv/k8s/{binary}", NEW, digest(binary, NEW)) for binary in Binary)


def world(**options: Any) -> UpgradeWorld:
    node = UpgradeWorld(files=dockershim_node(23), kubelet_version="v1.23.17", **options)
    node.by_digest = {digest(b, release): release for b in Binary for release in ("v1.23.17", NEW)}
    return node


def procedure(name: str = "w1", role: Role = Role.WORKER, **settings: Any) -> UpgradeProcedure:
    return UpgradeProcedure(
        name,
        plan_from_facts,
        MigrationSettings(node_files=NODE_FILES, **settings),
        upgrade=UpgradeSettings(to="1.24.17", binaries=TARGETS, role=role,
                                kubeadm_flags=("--ignore-preflight-errors=ImagePull",)),
    )


def started(node: UpgradeWorld) -> list[str]:
    return [step for step, phase in node.steps() if phase == "started"]


def test_a_worker_goes_to_the_new_release_on_cri_dockerd_in_one_drain() -> None:
    node = world(apiservers={"cp1": NEW})
    outcome = drive(procedure().run(), node)
    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert started(node) == [str(step) for step in UPGRADE_STEPS]
    assert node.of_type(act.Drain) == [act.Drain()]
    assert all(node.releases[f"/usr/bin/{b}"] == NEW for b in Binary)
    assert all(node.releases[f"/usr/bin/{b}.shimshift-v1.23.17.bak"] == "v1.23.17" for b in Binary)
    assert node.running_kubelet == NEW and node.annotation == "unix:///var/run/cri-dockerd.sock"
    # kubeadm upgrade node, before kubelet and kubectl are swapped; never `apply` on a worker.
    kubeadm = [argv for argv in node.runs() if argv[1:2] == ("upgrade",)]
    assert kubeadm == [("/usr/bin/kubeadm", "upgrade", "node", "--ignore-preflight-errors=ImagePull")]
    uploads = [a.target for a in node.of_type(act.Upload)]
    assert uploads == ["/usr/bin/kubeadm", "/usr/bin/kubelet", "/usr/bin/kubectl"]
    [canary] = node.of_type(act.CreatePod)
    [container] = canary.manifest["spec"]["containers"]
    # The kubelet is 1.24: the hardened canary, field and all.
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # write-config planned for kubelet 1.24: no dockershim flag is left for it.
    assert b"--network-plugin" not in (node.files[KUBEADM_FLAGS_ENV] or b"")


def test_the_first_control_plane_node_plans_then_applies() -> None:
    node = world(apiservers={"cp1": "v1.23.17"})
    outcome = drive(procedure("cp1", Role.FIRST_CONTROL_PLANE).run(), node)
    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    kubeadm = [argv[1:3] for argv in node.runs() if argv[1:2] == ("upgrade",)]
    assert kubeadm == [("upgrade", "plan"), ("upgrade", "apply")]
    assert node.apiservers == {"cp1": NEW}


def test_a_worker_whose_new_kubelet_does_not_come_up_goes_back_to_its_release_and_dockershim() -> None:
    node = world(apiservers={"cp1": NEW}, new_kubelet_starts=False)
    original = {path: data for path, data in node.files.items() if data is not None}
    outcome = drive(procedure().run(), node)
    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.ROLLED_BACK, "verify"), outcome.message
    rollback = [step for step in started(node) if step.startswith("rollback:")]
    assert rollback == ["rollback:restore-binaries", "rollback:restore-kubeadm-files",
                        *[str(step) for step in MIGRATION_ROLLBACK]]
    assert all(node.releases[f"/usr/bin/{b}"] == "v1.23.17" for b in Binary)
    assert {path: data for path, data in node.files.items() if data is not None} == original
    assert node.running_kubelet == "v1.23.17" and node.annotation == "/var/run/dockershim.sock"
    assert not node.cordoned


def test_a_control_plane_node_is_not_rolled_back_once_kubeadm_ran() -> None:
    node = world(kubeadm_fails=True)
    outcome = drive(procedure("cp1", Role.FIRST_CONTROL_PLANE).run(), node)
    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.FAILED, "kubeadm-upgrade")
    assert "Not rolled back" in outcome.message and "shimshift upgrade --resume" in outcome.message
    assert "[ERROR ImagePull]" in outcome.message
    assert not any(step.startswith("rollback:") for step in started(node))
    assert node.cordoned and outcome.resumable  # a person looks at it, then `--resume` goes on from there


def test_a_worker_whose_kubeadm_fails_is_rolled_back() -> None:
    node = world(apiservers={"cp1": NEW}, kubeadm_fails=True)
    outcome = drive(procedure().run(), node)
    assert outcome.status is OutcomeStatus.ROLLED_BACK
    assert node.releases["/usr/bin/kubeadm"] == "v1.23.17" and node.releases["/usr/bin/kubelet"] == "v1.23.17"
    # kubelet and kubectl were never swapped, so only kubeadm is restored.
    restored = [argv[-1] for argv in node.runs() if argv[:2] == ("mv", "-f")]
    assert restored == ["/usr/bin/kubeadm"]


def test_a_worker_never_gets_a_kubelet_newer_than_the_api_server() -> None:
    node = world(apiservers={"cp1": "v1.23.17"})
    outcome = drive(procedure().run(), node)
    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.ROLLED_BACK, "install-kubelet-kubectl")
    assert "version skew" in outcome.message
    assert node.releases["/usr/bin/kubelet"] == "v1.23.17"


def test_no_crictl_on_a_control_plane_node_is_refused_before_anything_changes() -> None:
    node = world(crictl=False)
    outcome = drive(procedure("cp1", Role.FIRST_CONTROL_PLANE).run(), node)
    assert outcome.status is OutcomeStatus.REFUSED and "crictl" in outcome.message
    assert not node.of_type(act.Cordon) and not node.of_type(act.WriteFile) and not node.of_type(act.Upload)
    # A worker's `kubeadm upgrade node` never calls crictl: no crictl is no reason to refuse it.
    worker = world(crictl=False, apiservers={"cp1": NEW})
    assert drive(procedure().run(), worker).status is OutcomeStatus.MIGRATED


def test_kubeadm_never_runs_on_a_runtime_crictl_cannot_reach() -> None:
    node = world()
    original = node.answer

    def stale(action: act.Action) -> object:
        if isinstance(action, act.GetCriSocket) and any(isinstance(a, act.Upload) for a in node.actions):
            node.actions.append(action)
            return "unix:///var/run/dockershim.sock"
        return original(action)

    # The annotation write did not take (someone put it back): kubeadm would find dockershim.
    node.answer = stale  # type: ignore[method-assign]
    outcome = drive(procedure("cp1", Role.FIRST_CONTROL_PLANE).run(), node)
    assert outcome.failed_step == "kubeadm-upgrade" and "crictl cannot reach the runtime" in outcome.message
    assert not [argv for argv in node.runs() if argv[1:3] == ("upgrade", "apply")]


@pytest.mark.parametrize("last_finished", UPGRADE_STEPS[:-1], ids=str)
def test_resume_after_each_step_ends_the_same(last_finished: Step) -> None:
    node = world(apiservers={"cp1": NEW}, fail=kill_after(last_finished))
    with pytest.raises(Killed):
        drive(procedure().run(), node)
    cut = len(node.journal)
    node.fail = lambda action: None
    outcome = drive(procedure().run(), node)
    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert [s for s, phase in node.steps()[cut:] if phase == "started"] == [
        str(step) for step in UPGRADE_STEPS[UPGRADE_STEPS.index(last_finished) + 1 :]
    ]
    assert all(node.releases[f"/usr/bin/{b}.shimshift-v1.23.17.bak"] == "v1.23.17" for b in Binary)
    assert node.running_kubelet == NEW


def test_rollback_of_an_upgraded_worker_and_never_of_the_control_plane() -> None:
    worker = world(apiservers={"cp1": NEW})
    original = {path: data for path, data in worker.files.items() if data is not None}
    drive(procedure().run(), worker)
    drive(procedure().rollback(), worker)  # `shimshift rollback` of a node its upgrade finished
    assert all(worker.releases[f"/usr/bin/{b}"] == "v1.23.17" for b in Binary)
    assert {path: data for path, data in worker.files.items() if data is not None} == original
    assert worker.running_kubelet == "v1.23.17" and worker.annotation == "/var/run/dockershim.sock"

    control_plane = world()
    drive(procedure("cp1", Role.FIRST_CONTROL_PLANE).run(), control_plane)
    with pytest.raises(StepFailed, match="control-plane node whose `kubeadm upgrade` ran"):
        drive(procedure("cp1", Role.FIRST_CONTROL_PLANE).rollback(), control_plane)


def test_a_stopped_control_plane_resumes_at_the_step_that_failed() -> None:
    node = world(kubeadm_fails=True)
    drive(procedure("cp1", Role.FIRST_CONTROL_PLANE).run(), node)
    node.kubeadm_fails = False  # the person fixed the cause
    cut = len(node.journal)
    outcome = drive(procedure("cp1", Role.FIRST_CONTROL_PLANE).run(), node)
    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert [s for s, phase in node.steps()[cut:] if phase == "started"] == [
        "kubeadm-upgrade", "install-kubelet-kubectl", "restart-kubelet", "verify", "uncordon"
    ]
    assert node.apiservers == {"cp1": NEW} and not node.cordoned
