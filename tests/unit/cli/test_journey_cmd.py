"""`upgrade --to` past one minor on the screen (cli/journey_cmd.py): one line per operation as it ends, what
stopped said with its message; the request the journal keeps reads back the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from shimshift.cli.journey_cmd import _operation_line, journey_request
from shimshift.cli.main import main
from shimshift.core.errors import Refusal
from shimshift.core.journey.sequence import ClusterEdit, KubeadmMode, KubeadmUpgrade, NodeDrain, NodeEdit
from shimshift.core.journey.skew import SkewRules
from shimshift.core.procedures.migration import NodeOutcome, OutcomeStatus
from shimshift.core.versions import KubernetesVersion
from shimshift.orchestrator.journey_session import JourneyRequest
from shimshift.orchestrator.upgrade_run import UpgradeRequest


def test_each_operation_is_one_line_and_a_stop_says_why() -> None:
    apply = KubeadmUpgrade("cp1", True, KubernetesVersion(25, 16), KubeadmMode.APPLY, ("--yes",))
    assert _operation_line(apply, NodeOutcome("cp1", OutcomeStatus.MIGRATED)) == (
        "         ok  cp1: kubeadm upgrade apply v1.25.16"
    )
    drain = NodeDrain("w1", False, 1, KubernetesVersion(23, 17), KubernetesVersion(24, 17), True, (NodeEdit.MIGRATE,))
    stopped = NodeOutcome("w1", OutcomeStatus.ROLLED_BACK, "verify: canary refused")
    assert _operation_line(drain, stopped) == (
        "rolled-back  w1: drain 1, kubelet 1.23.17 -> 1.24.17 and cri-dockerd: verify: canary refused"
    )
    edit = ClusterEdit(KubernetesVersion(35, 8))
    assert "kube-system/kubelet-config failCgroupV1: false" in _operation_line(
        edit, NodeOutcome("kube-system/kubelet-config", OutcomeStatus.MIGRATED)
    )


def test_the_request_the_journal_keeps_reads_back_the_same() -> None:
    request = JourneyRequest(
        UpgradeRequest("1.37.2", Path("/srv/k8s"), (), ("--ignore-preflight-errors=ImagePull",)),
        SkewRules.KUBERNETES,
        allow_cgroup_v1=True,
        kubelet_websockets_off=True,
        cri_dockerd=Path("/srv/cri-dockerd"),
    )
    assert JourneyRequest.from_record(request.to_record()) == request
    # A journal written before --kubelet-websockets-off existed resumes without it.
    older = {key: value for key, value in request.to_record().items() if key != "kubelet_websockets_off"}
    assert JourneyRequest.from_record(older).kubelet_websockets_off is False
    # A journey begun before --cri-dockerd existed resumes without one.
    old = {key: value for key, value in request.to_record().items() if key != "cri_dockerd"}
    assert JourneyRequest.from_record(old).cri_dockerd is None


@pytest.mark.parametrize("command", ["upgrade", "plan", "audit"])
def test_upgrade_plan_and_audit_take_kubelet_websockets_off(command: str) -> None:
    shown = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert shown.exit_code == 0 and "--kubelet-websockets-off" in shown.output


def test_kubelet_websockets_off_reaches_the_journeys_request() -> None:
    values = {
        "skew": "kubeadm", "allow_cgroup_v1": False, "kubelet_websockets_off": True, "cri_dockerd": None,
        "kubeadm_parallel": 3,
    }  # fmt: skip
    request = journey_request(values, UpgradeRequest("1.37.2", None, (), ()))
    assert request.kubelet_websockets_off and not request.allow_cgroup_v1 and request.kubeadm_parallel == 3


def test_kubeadm_parallel_is_kept_by_the_journal_one_when_an_older_journal_lacks_it_and_refused_when_damaged() -> None:
    request = JourneyRequest(UpgradeRequest("1.37.2"), kubeadm_parallel=7)
    assert JourneyRequest.from_record(request.to_record()).kubeadm_parallel == 7
    assert JourneyRequest(UpgradeRequest("1.37.2")).kubeadm_parallel == 10  # the option's default
    # A run begun before the option ran the workers' kubeadm steps one after the other: it goes on so.
    older = {key: value for key, value in request.to_record().items() if key != "kubeadm_parallel"}
    assert JourneyRequest.from_record(older).kubeadm_parallel == 1
    for damaged in (0, -2, "10", True, None):
        with pytest.raises(Refusal, match="kubeadm_parallel"):
            JourneyRequest.from_record({**request.to_record(), "kubeadm_parallel": damaged})


@pytest.mark.parametrize("command", ["upgrade", "plan"])
def test_upgrade_and_plan_take_kubeadm_parallel_of_at_least_one(command: str) -> None:
    shown = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert shown.exit_code == 0 and "--kubeadm-parallel" in shown.output
    refused = CliRunner().invoke(main, [command, "--to", "1.37.2", "--kubeadm-parallel", "0"])
    assert refused.exit_code == 2 and "--kubeadm-parallel" in refused.output


@pytest.mark.parametrize("command", ["upgrade", "plan", "audit"])
def test_upgrade_plan_and_audit_offer_lockstep_and_say_what_it_is_for(command: str) -> None:
    shown = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert shown.exit_code == 0 and "[kubeadm|kubernetes|lockstep]" in shown.output
    assert "kubeadm's upgrade guide" in shown.output


def test_lockstep_reaches_the_journeys_request_and_the_journal_keeps_it() -> None:
    values = {
        "skew": "lockstep", "allow_cgroup_v1": False, "kubelet_websockets_off": False, "cri_dockerd": None,
        "kubeadm_parallel": 10,
    }  # fmt: skip
    request = journey_request(values, UpgradeRequest("1.27.16", None, (), ()))
    assert request.skew is SkewRules.LOCKSTEP
    assert JourneyRequest.from_record(request.to_record()).skew is SkewRules.LOCKSTEP
