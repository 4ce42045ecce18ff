"""The migration procedure step by step, forward and rollback, against a node played as data.

Matrix: a fresh dockershim node (every step in order, the files and annotation moved, the kubelet's
restart exactly once, each step's actions in order); a refused preflight (nothing written, no
cordon); a failed drain (uncordon only); a failed verify (the whole rollback, the original bytes
back); --no-rollback; a failed rollback; resume after each forward step (no step repeated before it);
resume inside a rollback (it finishes the rollback, deletes a leftover canary); a command that fails
(thrown into the procedure, journalled as the step's failure); an already-migrated node; the
procedure alone for `plan` and `verify`; a run that an earlier build (up to 41920b0, whose journal held
a ChangeSet record) started: resumed, rolled back and verified from that literal record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shimshift.core import actions as act
from shimshift.core.node_files import KUBEADM_FLAGS_ENV, NODE_FILES
from shimshift.core.procedures.canary import DELETE_TIMEOUT
from shimshift.core.procedures.migration import (
    CRI_DOCKERD_ENDPOINT,
    PLAN_KEY,
    MigrationProcedure,
    MigrationSettings,
    OutcomeStatus,
    plan_from_facts,
)
from shimshift.core.steps import MIGRATION_ROLLBACK, MIGRATION_STEPS, PodRef, SandboxRef, Step
from tests.unit.core.nodes import dockershim_node
from tests.unit.core.procedures.node_world import CommandFailed, Killed, NodeWorld, drive, kill_after

FORWARD = [step for step in MIGRATION_STEPS]


def world(**options: Any) -> NodeWorld:
    return NodeWorld(files=dockershim_node(23), **options)


def procedure(**settings: Any) -> MigrationProcedure:
    return MigrationProcedure("w1", plan_from_facts, MigrationSettings(node_files=NODE_FILES, **settings))


def step_phases(steps: list[Step], phase: str = "finished") -> list[tuple[str, str]]:
    return [pair for step in steps for pair in ((str(step), "started"), (str(step), phase))]


def actions_of(node: NodeWorld, step: Step) -> list[act.Action]:
    """The actions between the step's started and its finished (or failed) record."""
    inside, out = False, []
    for action in node.actions:
        if isinstance(action, act.Record) and action.step == step:
            if action.phase == "started":
                inside = True
                continue
            break
        if inside:
            out.append(action)
    return out


def test_a_fresh_node_runs_every_step_once_in_order() -> None:
    node = world()
    original = dict(node.files)
    outcome = drive(procedure().run(), node)
    assert outcome.status is OutcomeStatus.MIGRATED
    assert node.steps() == step_phases(FORWARD)
    assert node.annotation == CRI_DOCKERD_ENDPOINT
    assert node.files[KUBEADM_FLAGS_ENV] != original[KUBEADM_FLAGS_ENV]
    assert b"--container-runtime-endpoint=unix:///var/run/cri-dockerd.sock" in (node.files[KUBEADM_FLAGS_ENV] or b"")
    assert node.runs().count(("systemctl", "restart", "kubelet")) == 1
    assert node.runs().count(("systemctl", "restart", "cri-docker.service")) == 1
    assert node.events == ["ShimshiftConfigured", "ShimshiftMigrated"]
    assert not node.cordoned


def test_each_step_does_what_its_name_says_in_order() -> None:
    node = world()
    drive(procedure().run(), node)
    assert actions_of(node, Step.CORDON) == [act.Cordon()]
    assert actions_of(node, Step.DRAIN) == [act.Drain()]
    assert actions_of(node, Step.ANNOTATE) == [act.StepDetail(Step.PREFLIGHT), act.SetCriSocket(CRI_DOCKERD_ENDPOINT)]
    restart = actions_of(node, Step.RESTART_KUBELET)
    reload, restart_kubelet = act.run("systemctl", "daemon-reload"), act.run("systemctl", "restart", "kubelet")
    assert restart == [act.Snapshot(), reload, restart_kubelet, act.Now()]
    reads = act.StepDetail | act.Run | act.ReadFile
    verify = [type(a) for a in actions_of(node, Step.VERIFY) if not isinstance(a, reads)]
    # health first, then the canary (deleted before and after, exec'd into while it runs), then the sandboxes:
    # the canary names the cause of missing ones.
    canary = [act.DeletePod, act.PodCidrs, act.Now, act.CreatePod, act.WaitPod, act.Now, act.ExecInPod, act.Now,
              act.DeletePod, act.Now]
    assert verify == [act.WaitHealthy, act.GetKubeletVersion, *canary, act.RunningPods, act.CriSandboxes]
    assert actions_of(node, Step.UNCORDON) == [act.UncordonIfOurs()]
    writes = [a.path for a in actions_of(node, Step.WRITE_CONFIG) if isinstance(a, act.WriteFile)]
    assert KUBEADM_FLAGS_ENV in writes


def test_a_refused_preflight_touches_nothing() -> None:
    node = world(cni_configs="")
    outcome = drive(procedure().run(), node)
    assert outcome.status is OutcomeStatus.REFUSED
    assert "no CNI network configuration in /etc/cni/net.d" in outcome.message
    assert node.steps() == [*step_phases([Step.INSTALL]), ("preflight", "started"), ("preflight", "failed")]
    assert not node.of_type(act.WriteFile) and not node.of_type(act.Cordon) and not node.of_type(act.SetCriSocket)


def test_a_failed_drain_only_uncordons() -> None:
    node = world(fail=lambda action: RuntimeError("PDB web refuses") if isinstance(action, act.Drain) else None)
    outcome = drive(procedure().run(), node)
    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.FAILED, "drain")
    assert node.steps()[-2:] == [("drain", "started"), ("drain", "failed")]
    assert node.actions[-1] == act.UncordonIfOurs() and not node.cordoned
    assert not node.of_type(act.WriteFile)


WEB = PodRef("default", "web-1", "uid-web")
CANARY = PodRef("kube-system", "shimshift-canary-node-a", "uid-canary")


def test_a_pod_deleted_between_the_two_reads_is_not_a_missing_sandbox() -> None:
    # The pods read before cri-dockerd answered still had the canary; the read after does not.
    node = world(running_pods=[[WEB, CANARY], [WEB]], sandboxes=[SandboxRef("default", "web-1", "uid-web")])
    outcome = drive(procedure().run(), node)
    assert outcome.status is OutcomeStatus.MIGRATED, outcome.message
    assert [type(a) for a in actions_of(node, Step.VERIFY) if isinstance(a, act.RunningPods | act.CriSandboxes)] == [
        act.RunningPods, act.CriSandboxes, act.RunningPods]


def test_a_pod_still_running_without_a_sandbox_fails_verify() -> None:
    node = world(running_pods=[[WEB, CANARY]], sandboxes=[SandboxRef("kube-system", "shimshift-canary-node-a", "x")])
    outcome = drive(procedure().run(), node)
    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.ROLLED_BACK, "verify")
    assert "cri-dockerd does not list running pod(s): default/web-1" in outcome.message


def test_a_failed_verify_rolls_the_node_back_to_its_original_bytes() -> None:
    node = world(canary_runs=False)
    original = dict(node.files)
    outcome = drive(procedure().run(), node)
    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.ROLLED_BACK, "verify")
    assert "canary: the canary container cannot run: canary waiting: CreateContainerConfigError" in outcome.message
    forward = FORWARD[: FORWARD.index(Step.VERIFY)]
    assert node.steps() == [*step_phases(forward), ("verify", "started"), ("verify", "failed"),
                            *step_phases(list(MIGRATION_ROLLBACK))]
    assert {path: data for path, data in node.files.items() if data is not None} == {
        path: data for path, data in original.items() if data is not None
    }
    assert node.annotation == "/var/run/dockershim.sock"
    assert "--network-plugin" in " ".join(node.kubelet_argv)
    assert node.events[-1] == "ShimshiftRolledBack" and not node.cordoned


def test_no_rollback_leaves_the_node_as_it_is() -> None:
    node = world(healthy=False)
    outcome = drive(procedure(rollback_on_failure=False).run(), node)
    assert outcome.status is OutcomeStatus.FAILED and "--no-rollback" in outcome.message
    assert node.annotation == CRI_DOCKERD_ENDPOINT
    assert not any(step.startswith("rollback:") for step, _ in node.steps())


def test_a_failed_rollback_says_which_step_failed() -> None:
    def fail(action: act.Action) -> Exception | None:
        if isinstance(action, act.SetCriSocket) and action.value == "/var/run/dockershim.sock":
            return RuntimeError("403 patch nodes")
        return None

    node = world(canary_runs=False, fail=fail)
    outcome = drive(procedure().run(), node)
    assert outcome.status is OutcomeStatus.FAILED
    assert "rollback failed: RuntimeError: 403 patch nodes" in outcome.message
    assert node.steps()[-2:] == [("rollback:restore-annotation", "started"), ("rollback:restore-annotation", "failed")]


def test_a_failing_command_is_the_step_s_failure() -> None:
    def fail(action: act.Action) -> Exception | None:
        if action == act.run("systemctl", "restart", "cri-docker.service"):
            return CommandFailed("systemctl restart cri-docker.service exited 1")
        return None

    node = world(fail=fail)
    outcome = drive(procedure().run(), node)
    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.ROLLED_BACK, "restart-cri-dockerd")
    failed = [detail for step, phase, detail in node.journal if phase == "failed"]
    message = "CommandFailed: systemctl restart cri-docker.service exited 1"
    finding = {"severity": "error", "code": "step-error", "message": message, "hint": "", "setting": None}
    assert failed == [{"message": message, "findings": [{**finding, "subject": {"kind": "node", "name": "w1"}}]}]


def test_a_step_s_findings_reach_the_journal_with_their_codes() -> None:
    node = world()
    node.cni_configs = ""
    outcome = drive(procedure().run(), node)
    assert (outcome.status, outcome.failed_step) == (OutcomeStatus.REFUSED, "preflight")
    (failed,) = [detail or {} for step, phase, detail in node.journal if phase == "failed"]
    assert [(finding["code"], finding["subject"]) for finding in failed["findings"]] == [
        ("no-cni-config", {"kind": "node", "name": "w1"})
    ]
    assert failed["message"] == outcome.message
    assert outcome.message.startswith("no CNI network configuration in /etc/cni/net.d: pods would get no network")


@pytest.mark.parametrize("last_finished", FORWARD[:-1], ids=str)
def test_resume_starts_after_the_last_finished_step(last_finished: Step) -> None:
    node = world(fail=kill_after(last_finished))
    with pytest.raises(Killed):
        drive(procedure().run(), node)
    cut = len(node.journal)
    node.fail = lambda action: None
    outcome = drive(procedure().run(), node)
    assert outcome.status is OutcomeStatus.MIGRATED
    rerun = [step for step, phase in node.steps()[cut:] if phase == "started"]
    assert rerun == [str(step) for step in FORWARD[FORWARD.index(last_finished) + 1 :]]
    assert node.runs().count(("systemctl", "restart", "kubelet")) == 1


def test_resume_inside_a_rollback_finishes_it_and_deletes_a_leftover_canary() -> None:
    node = world(canary_runs=False, fail=kill_after(Step.RESTORE_ANNOTATION))
    with pytest.raises(Killed):
        drive(procedure().run(), node)
    cut = len(node.journal)
    node.fail = lambda action: None
    outcome = drive(procedure().run(), node)
    assert outcome.status is OutcomeStatus.ROLLED_BACK
    assert act.DeletePod("kube-system", "shimshift-canary-w1", DELETE_TIMEOUT) in node.actions
    rerun = [step for step, phase in node.steps()[cut:] if phase == "started"]
    assert rerun == [str(step) for step in MIGRATION_ROLLBACK[2:]]
    assert node.annotation == "/var/run/dockershim.sock"


def test_an_already_migrated_node_stops_after_preflight() -> None:
    node = world()
    drive(procedure().run(), node)
    again = NodeWorld(files=dict(node.files), annotation=node.annotation)
    outcome = drive(procedure().run(), again)
    assert outcome.status is OutcomeStatus.ALREADY_MIGRATED
    assert again.steps() == step_phases([Step.INSTALL, Step.PREFLIGHT])


def test_plan_and_verify_alone() -> None:
    node = world()
    plan = drive(procedure().preflight_only(), node)
    assert plan.cri_socket_after == CRI_DOCKERD_ENDPOINT and not node.of_type(act.Record)
    drive(procedure().run(), node)
    assert drive(procedure().verify_now(), node) == []
    node.annotation = "/var/run/dockershim.sock"
    (problem,) = drive(procedure().verify_now(), node)
    assert (problem.code, problem.message, str(problem.subject)) == (
        "cri-socket-annotation-wrong",
        "annotation kubeadm.alpha.kubernetes.io/cri-socket is '/var/run/dockershim.sock'",
        "node w1",
    )


# -- runs an earlier build started -----------------------------------------------------------------

OLD_PREFLIGHT = Path(__file__).parents[1] / "fixtures" / "journal" / "preflight-41920b0-dockershim-node.json"


def started_by_41920b0(node: NodeWorld, *finished: tuple[Step, dict[str, Any]]) -> None:
    """The journal as build 41920b0 left it: its preflight record (literal), then ``finished`` steps."""
    node.journal += step_records(Step.INSTALL, {"installed": False})
    node.journal += step_records(Step.PREFLIGHT, json.loads(OLD_PREFLIGHT.read_text()))
    for step, detail in finished:
        node.journal += step_records(step, detail)


def step_records(step: Step, detail: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [(str(step), "started", None), (str(step), "finished", detail)]


def test_a_run_an_earlier_build_started_resumes_from_its_record() -> None:
    fresh = world()
    drive(procedure().run(), fresh)
    node = world()
    node.cordoned = True
    started_by_41920b0(node, (Step.CORDON, {"cordoned_by_us": True}), (Step.DRAIN, {"evicted": ["default/web-1"]}))
    cut = len(node.journal)
    outcome = drive(procedure().run(), node)
    assert outcome.status is OutcomeStatus.MIGRATED
    rerun = [step for step, phase in node.steps()[cut:] if phase == "started"]
    assert rerun == [str(step) for step in FORWARD[FORWARD.index(Step.WRITE_CONFIG) :]]
    # The old record's plan wrote what today's plan writes, and verify held the node to it.
    assert node.files == fresh.files and node.annotation == CRI_DOCKERD_ENDPOINT
    assert node.runs().count(("systemctl", "restart", "cri-docker.service")) == 1
    assert not node.cordoned


def test_a_run_an_earlier_build_started_rolls_back_and_verifies_from_its_record() -> None:
    node = world()
    original = dict(node.files)
    started_by_41920b0(node)
    assert drive(procedure().run(), node).status is OutcomeStatus.MIGRATED
    assert drive(procedure().verify_now(), node) == []
    # `shimshift rollback` copies the recorded preflight detail, as it is, into a run of its own.
    undo = NodeWorld(files=dict(node.files), annotation=node.annotation)
    undo.journal += step_records(Step.PREFLIGHT, json.loads(OLD_PREFLIGHT.read_text()))
    drive(procedure().rollback(), undo)
    assert undo.steps() == [*step_phases([Step.PREFLIGHT]), *step_phases(list(MIGRATION_ROLLBACK))]
    assert undo.files == original and undo.annotation == "/var/run/dockershim.sock"


def test_today_s_record_is_the_plan_under_its_own_key() -> None:
    node = world()
    drive(procedure().run(), node)
    detail = next(d for step, phase, d in node.journal if (step, phase) == ("preflight", "finished"))
    assert detail is not None and set(detail) == {PLAN_KEY, "kubelet_version", "cri_dockerd_version"}
