"""verify's canary as data (docs/hardened-pods.md): the pod it creates and what its status means.

Matrix: the manifest (pinned by nodeName, tolerates the unschedulable taint, never pulls, every hardened
field, no token, labels) with and without allowPrivilegeEscalation (kubelet 1.23 / 1.24 x accepted or
not); names for short and over-long node names; the image chosen (option, running cri-dockerd, version
default, none); Docker's bridge subnets from `docker network inspect`; the verdict for a pod that is
refused (NoNewPrivs), ended, stuck (image never pulled, config error), exited, still starting, running on
the pod network, running on docker0, running outside the podCIDR, running without an IP, and gone.
"""

from __future__ import annotations

from typing import Any

import pytest

from shimshift.core.canary import (
    CANARY_LABEL,
    RUN_LABEL,
    UNSCHEDULABLE_TAINT,
    CanarySpec,
    CanaryState,
    canary_image,
    canary_manifest,
    canary_name,
    default_pause_image,
    omits_no_new_privs,
    parse_bridge_subnets,
    read_canary,
)
from shimshift.core.errors import Refusal

SPEC = CanarySpec("shimshift-lab-worker", "kube-system", "registry.k8s.io/pause:3.6", "20261202T132711Z-0a1b2c3d")
CIDRS = ["10.244.1.0/24"]
BRIDGE = ["172.17.0.0/16"]


def test_manifest_is_a_hardened_pod_pinned_to_the_node() -> None:
    pod = canary_manifest(SPEC)
    assert pod["metadata"]["name"] == "shimshift-canary-shimshift-lab-worker"
    assert pod["metadata"]["namespace"] == "kube-system"
    assert pod["metadata"]["labels"][CANARY_LABEL] == "shimshift-lab-worker"
    assert pod["metadata"]["labels"][RUN_LABEL] == SPEC.run_id
    spec = pod["spec"]
    assert spec["nodeName"] == SPEC.node
    assert {"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert container["image"] == SPEC.image and container["imagePullPolicy"] == "Never"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_accepted_refusal_leaves_out_only_allow_privilege_escalation() -> None:
    full = canary_manifest(SPEC)["spec"]["containers"][0]["securityContext"]
    spec = CanarySpec(SPEC.node, SPEC.namespace, SPEC.image, SPEC.run_id, omit_no_new_privs=True)
    reduced = canary_manifest(spec)["spec"]["containers"][0]["securityContext"]
    assert "allowPrivilegeEscalation" not in reduced
    assert {key: value for key, value in full.items() if key != "allowPrivilegeEscalation"} == reduced


@pytest.mark.parametrize(
    ("version", "accepted", "omitted"),
    [("v1.23.17", True, True), ("v1.23.17", False, False), ("v1.24.17", True, False), ("1.20.0", True, True)],
)
def test_the_field_is_left_out_only_for_kubelets_before_124_under_the_opt_in(
    version: str, accepted: bool, omitted: bool
) -> None:
    assert omits_no_new_privs(version, accepted=accepted) is omitted


def test_names_stay_valid_for_long_node_names() -> None:
    long_node = "n" * 60 + "." + "a" * 190
    name = canary_name(long_node)
    assert len(name) <= 253 and name.startswith("shimshift-canary-n") and name == canary_name(long_node)
    assert name != canary_name(long_node[:-1] + "b")
    labels = canary_manifest(CanarySpec(long_node, "ns", "img", "run"))["metadata"]["labels"]
    assert len(labels[CANARY_LABEL]) <= 63 and labels[CANARY_LABEL].isalnum()


def test_image_comes_from_the_option_then_cri_dockerd_then_its_default() -> None:
    running = {"--pod-infra-container-image": "registry.k8s.io/pause:3.6"}
    assert canary_image(override="busybox:local", cri_dockerd_args=running, default="x") == "busybox:local"
    assert canary_image(override=None, cri_dockerd_args=running, default="x") == "registry.k8s.io/pause:3.6"
    assert canary_image(override=None, cri_dockerd_args={}, default=default_pause_image("0.3.17")) == (
        "registry.k8s.io/pause:3.10"
    )
    with pytest.raises(Refusal) as caught:
        canary_image(override=None, cri_dockerd_args={}, default=default_pause_image(None))
    assert "--canary-image" in str(caught.value)
    assert default_pause_image("not a version") is None


def test_bridge_subnets_from_docker_network_inspect() -> None:
    assert parse_bridge_subnets("172.17.0.0/16 fd00:dead::/64 \n") == ["172.17.0.0/16", "fd00:dead::/64"]
    assert parse_bridge_subnets("") == []


def pod(
    phase: str = "Running",
    *,
    ip: str = "10.244.1.7",
    ready: bool = True,
    reason: str = "",
    message: str = "",
    container: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "podIP": ip,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [{"name": "canary", "state": container or {"running": {}}}],
    }
    if reason:
        status.update(reason=reason, message=message)
    return {"metadata": {"name": "c"}, "status": status}


def verdict(item: dict[str, Any] | None, cidrs: list[str] = CIDRS) -> tuple[CanaryState, str]:
    result = read_canary(item, pod_cidrs=cidrs, bridge_subnets=BRIDGE)
    return result.state, result.message


def test_running_on_the_pod_network_passes() -> None:
    assert verdict(pod()) == (CanaryState.RUNNING, "running on 10.244.1.7")
    assert verdict(pod(ip="10.9.9.9"), cidrs=[])[0] is CanaryState.RUNNING  # no podCIDR: only the bridge counts


def test_no_new_privs_refusal_fails_with_the_way_out() -> None:
    # What a 1.23 kubelet on cri-dockerd shows (cri-dockerd#167).
    refused = pod(
        "Pending",
        ip="",
        ready=False,
        reason="NoNewPrivs",
        message='Cannot enforce NoNewPrivs: illegal version string "v1"',
        container={"waiting": {"reason": "Blocked"}},
    )
    state, message = verdict(refused)
    assert state is CanaryState.FAILED
    assert 'NoNewPrivs: Cannot enforce NoNewPrivs: illegal version string "v1"' in message
    assert "--accept-refused-hardened-pods" in message and "1.24" in message


@pytest.mark.parametrize(
    ("item", "words"),
    [
        (pod("Pending", ip="", ready=False, container={"waiting": {"reason": "ErrImageNeverPull"}}), "--canary-image"),
        (
            pod("Pending", ready=False, container={"waiting": {"reason": "CreateContainerConfigError", "message": "m"}}),  # noqa: E501
            "CreateContainerConfigError m",
        ),
        (pod("Running", ready=False, container={"terminated": {"exitCode": 1, "reason": "Error"}}), "exited 1"),
        (pod("Failed", ready=False, container={"terminated": {"exitCode": 2}}), "ended (Failed)"),
        (pod("Failed", ready=False, reason="OutOfcpu", message="no cpu"), "refused the canary: OutOfcpu"),
        (None, "gone"),
    ],
)
def test_a_canary_that_will_not_run_fails_at_once(item: dict[str, Any] | None, words: str) -> None:
    state, message = verdict(item)
    assert state is CanaryState.FAILED
    assert words in message


@pytest.mark.parametrize(
    "item",
    [
        pod("Pending", ip="", ready=False, container={"waiting": {"reason": "ContainerCreating"}}),
        pod("Running", ready=False),
        {"metadata": {}, "status": {}},
    ],
)
def test_a_canary_still_starting_is_waited_for(item: dict[str, Any]) -> None:
    assert verdict(item)[0] is CanaryState.WAITING


def test_docker_bridge_address_fails() -> None:
    # cri-dockerd without --network-plugin=cni starts sandboxes on docker0 (cri-dockerd#73, #93).
    state, message = verdict(pod(ip="172.17.0.2"))
    assert state is CanaryState.FAILED
    assert "172.17.0.2, on Docker's bridge (172.17.0.0/16)" in message
    state, message = verdict(pod(ip="172.17.0.2"), cidrs=[])
    assert state is CanaryState.FAILED and "Docker's bridge" in message


def test_address_outside_the_pod_cidr_or_none_fails() -> None:
    state, message = verdict(pod(ip="10.244.2.7"))
    assert state is CanaryState.FAILED and "outside the node's podCIDR 10.244.1.0/24" in message
    state, message = verdict(pod(ip=""))
    assert state is CanaryState.FAILED and "without an IP address" in message
    # Not ready yet, but running without an address: the kubelet only replaces such sandboxes.
    state, message = verdict(pod(ip="", ready=False))
    assert state is CanaryState.FAILED and "without an IP address" in message


def test_dual_stack_checks_each_family_against_its_own_cidr() -> None:
    cidrs = ["10.244.1.0/24", "fd00:10:244:1::/64"]
    assert verdict(pod(ip="fd00:10:244:1::7"), cidrs=cidrs)[0] is CanaryState.RUNNING
    assert verdict(pod(ip="fd00:10:244:2::7"), cidrs=cidrs)[0] is CanaryState.FAILED


def test_a_bridge_that_overlaps_the_pod_cidr_is_not_held_against_the_pod() -> None:
    # Docker's bridge moved into the pod network's range: an address there cannot tell the two apart.
    result = read_canary(pod(ip="10.244.1.7"), pod_cidrs=CIDRS, bridge_subnets=["10.244.0.0/16"])
    assert result.state is CanaryState.RUNNING
