"""The changes the engine makes on the journey, per trap that needs one: the flags a drain's kubelet rejects
(the migration's engine, planned for that kubelet) and instance-config.yaml before kubeadm 1.34+.

Matrix: --container-runtime gone before kubelet 1.27 and --pod-infra-container-image before 1.35, in
kubeadm-flags.env and in /etc/default/kubelet; nothing removed for a kubelet that still takes them;
instance-config.yaml written before kubeadm 1.34 when kubeadm-flags.env lacks the endpoint, before 1.37
whenever it is missing, never over an existing one; failCgroupV1: false in the cluster's
KubeletConfiguration (added, set, left; refused where one line cannot say it); ExtendWebSocketsToKubelet=false
in KUBELET_EXTRA_ARGS (a fresh file, other flags, other gates merged, the gate on there, already off ->
nothing, on in kubeadm-flags.env, RPM's file, unparsable -> refused) and in the drain's plan (over the
plan's own edit of the same file, on a plan with nothing else to do; the rollback restores every byte).
"""

from __future__ import annotations

import pytest
import yaml

from shimshift.core.errors import Refusal
from shimshift.core.journey.node_edits import (
    FEATURE_GATE_UNREADABLE,
    allow_cgroup_v1,
    allow_cgroup_v1_on_node,
    instance_config_before_kubeadm,
    kubelet_flag_gate,
    kubelet_websockets_off,
    plan_with_websockets_off,
)
from shimshift.core.kubelet_config import parse_kubelet_config
from shimshift.core.node_files import (
    DEFAULT_KUBELET,
    INSTANCE_CONFIG,
    KUBEADM_FLAGS_ENV,
    KUBELET_CONFIG,
    SYSCONFIG_KUBELET,
    NodeView,
)
from shimshift.core.node_plan import FileChange, apply_changes
from shimshift.core.node_planner import plan_node
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT
from tests.unit.core.nodes import cri_dockerd_node, dockershim_node, rpm


def kubelet_flags_after(files: dict[str, bytes | None], to: str, path: str = KUBEADM_FLAGS_ENV) -> str:
    plan = plan_node(
        kubelet_version=to, files=files, cri_dockerd_version="0.3.16", docker_cgroup_driver=None, node="w1"
    )
    after = {change.path: change.after for change in plan.changes}.get(path, files[path])
    assert after is not None
    return after.decode()


def test_a_drain_to_1_28_drops_container_runtime_and_keeps_the_endpoint() -> None:
    text = kubelet_flags_after(cri_dockerd_node(25), "1.28.15")
    assert "--container-runtime=" not in text
    assert f"--container-runtime-endpoint={CRI_DOCKERD_ENDPOINT}" in text
    assert "--container-runtime=remote" in kubelet_flags_after(cri_dockerd_node(25), "1.26.15")


def test_a_drain_to_1_35_drops_the_pause_flag_also_from_the_operators_file() -> None:
    files = cri_dockerd_node(34)
    files[DEFAULT_KUBELET] = b"KUBELET_EXTRA_ARGS=--pod-infra-container-image=registry.k8s.io/pause:3.9 --v=2\n"
    assert "--pod-infra-container-image" not in kubelet_flags_after(files, "1.35.8")
    assert kubelet_flags_after(files, "1.35.8", DEFAULT_KUBELET) == "KUBELET_EXTRA_ARGS=--v=2\n"
    assert "--pod-infra-container-image" in kubelet_flags_after(files, "1.34.12")


def without_endpoint_flag(minor: int) -> dict[str, bytes | None]:
    files = cri_dockerd_node(minor)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS="--pod-infra-container-image=registry.k8s.io/pause:3.9"\n'
    files[DEFAULT_KUBELET] = f"KUBELET_EXTRA_ARGS=--container-runtime-endpoint={CRI_DOCKERD_ENDPOINT}\n".encode()
    return files


def test_instance_config_is_written_before_kubeadm_1_34_when_kubeadm_flags_env_has_no_endpoint() -> None:
    view = NodeView.load(without_endpoint_flag(33), node="w1")
    change = instance_config_before_kubeadm(view, kubeadm_minor=34)

    assert change is not None and change.path == INSTANCE_CONFIG and change.before is None
    assert change.after is not None
    endpoint = parse_kubelet_config(INSTANCE_CONFIG, change.after).get_str("containerRuntimeEndpoint")
    assert endpoint == CRI_DOCKERD_ENDPOINT
    assert yaml.safe_load(change.after)["kind"] == "KubeletConfiguration"
    assert instance_config_before_kubeadm(view, kubeadm_minor=33) is None


def test_kubeadm_moves_the_flag_itself_until_1_37_and_an_existing_file_is_kept() -> None:
    kubeadm_layout = NodeView.load(cri_dockerd_node(33), node="w1")
    assert instance_config_before_kubeadm(kubeadm_layout, kubeadm_minor=34) is None
    assert instance_config_before_kubeadm(kubeadm_layout, kubeadm_minor=37) is not None
    assert instance_config_before_kubeadm(NodeView.load(cri_dockerd_node(35), node="w1"), kubeadm_minor=37) is None


# failCgroupV1 in the cluster's KubeletConfiguration (--allow-cgroup-v1) ---------------------------


def test_fail_cgroup_v1_is_added_set_or_left_as_it_is() -> None:
    base = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n"
    added = allow_cgroup_v1(base)
    assert added == base + "failCgroupV1: false\n"
    assert allow_cgroup_v1(base + "failCgroupV1: true  # the 1.35 default\n") == added.replace(
        "failCgroupV1: false", "failCgroupV1: false  # the 1.35 default"
    )
    assert allow_cgroup_v1(added) == added


def test_a_kubelet_configuration_shimshift_cannot_edit_line_by_line_is_refused() -> None:
    with pytest.raises(Refusal, match="kube-system/kubelet-config"):
        allow_cgroup_v1("{kind: KubeletConfiguration, cgroupDriver: systemd}\n")
    with pytest.raises(Refusal, match="kube-system/kubelet-config"):
        allow_cgroup_v1("kind: Pod\n")


def test_a_nodes_config_yaml_gets_fail_cgroup_v1_false_once() -> None:
    config = cri_dockerd_node(34)[KUBELET_CONFIG]
    change = allow_cgroup_v1_on_node(config)
    assert change is not None and change.after is not None and change.before == config
    assert yaml.safe_load(change.after)["failCgroupV1"] is False
    assert allow_cgroup_v1_on_node(change.after) is None
    assert allow_cgroup_v1_on_node(None) is None


# ExtendWebSocketsToKubelet off in KUBELET_EXTRA_ARGS (--kubelet-websockets-off) --------------------

GATE_OFF = "--feature-gates=ExtendWebSocketsToKubelet=false"


def gate_edit(files: dict[str, bytes | None]) -> FileChange | None:
    return kubelet_websockets_off(NodeView.load(files, node="w1"))


def test_the_gate_goes_into_a_fresh_default_kubelet_file() -> None:
    files = cri_dockerd_node(35)
    change = gate_edit(files)
    assert change == FileChange(DEFAULT_KUBELET, None, f'KUBELET_EXTRA_ARGS="{GATE_OFF}"\n'.encode())


def test_the_gate_is_appended_to_kubelet_extra_args_keeping_the_other_flags() -> None:
    files = cri_dockerd_node(35)
    files[DEFAULT_KUBELET] = b"# ours\nKUBELET_EXTRA_ARGS=--v=2 --max-pods=50\n"
    change = gate_edit(files)
    assert (
        change is not None and change.after == f"# ours\nKUBELET_EXTRA_ARGS=--v=2 --max-pods=50 {GATE_OFF}\n".encode()
    )


def test_the_gate_is_merged_into_a_feature_gates_flag_already_there() -> None:
    files = cri_dockerd_node(35)
    files[DEFAULT_KUBELET] = b'KUBELET_EXTRA_ARGS="--feature-gates=Foo=true,,Bar=False --v=2"\n'
    change = gate_edit(files)
    expected = b'KUBELET_EXTRA_ARGS="--feature-gates=Foo=true,Bar=False,ExtendWebSocketsToKubelet=false --v=2"\n'
    assert change is not None and change.after == expected
    # The gate on there: turned off in place, the others kept.
    files[DEFAULT_KUBELET] = b"KUBELET_EXTRA_ARGS=--feature-gates=ExtendWebSocketsToKubelet=true,Foo=true\n"
    change = gate_edit(files)
    assert change is not None
    assert change.after == b"KUBELET_EXTRA_ARGS=--feature-gates=ExtendWebSocketsToKubelet=false,Foo=true\n"


def test_a_gate_already_off_changes_nothing() -> None:
    files = cri_dockerd_node(36)
    files[DEFAULT_KUBELET] = b"KUBELET_EXTRA_ARGS=--feature-gates=Foo=true,ExtendWebSocketsToKubelet=False\n"
    assert gate_edit(files) is None
    # Off in kubeadm-flags.env and not turned on after it: the kubelet runs with it off already.
    files[DEFAULT_KUBELET] = None
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS="--feature-gates=ExtendWebSocketsToKubelet=0"\n'
    assert gate_edit(files) is None


def test_on_in_kubeadm_flags_env_the_gate_goes_into_kubelet_extra_args_which_comes_last() -> None:
    files = cri_dockerd_node(35)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS="--feature-gates=ExtendWebSocketsToKubelet=true,Foo=true"\n'
    change = gate_edit(files)
    assert change is not None and change.path == DEFAULT_KUBELET
    assert change.after == f'KUBELET_EXTRA_ARGS="{GATE_OFF}"\n'.encode()
    after = NodeView.load({**files, DEFAULT_KUBELET: change.after}, node="w1")
    assert kubelet_flag_gate(after, "ExtendWebSocketsToKubelet") is False
    assert kubelet_flag_gate(after, "Foo") is True


def test_an_rpm_node_gets_the_gate_in_etc_sysconfig_kubelet() -> None:
    change = gate_edit(rpm(dockershim_node(35)))
    assert change is not None and change.path == SYSCONFIG_KUBELET
    assert change.after == f"KUBELET_EXTRA_ARGS=--fail-swap-on=false {GATE_OFF}\n".encode()


@pytest.mark.parametrize("value", ["Foo", "Foo=yes", "=true", "ExtendWebSocketsToKubelet=off"])
def test_a_feature_gates_value_the_kubelet_would_refuse_is_refused_naming_file_and_line(value: str) -> None:
    files = cri_dockerd_node(35)
    files[DEFAULT_KUBELET] = f"# the operator's\nKUBELET_EXTRA_ARGS=--feature-gates={value}\n".encode()
    with pytest.raises(Refusal) as refused:
        gate_edit(files)
    assert (refused.value.file, refused.value.line, refused.value.node) == (DEFAULT_KUBELET, 2, "w1")
    assert refused.value.code == FEATURE_GATE_UNREADABLE


def test_the_drains_plan_carries_the_gate_on_top_of_its_own_edit_of_the_same_file() -> None:
    files = cri_dockerd_node(34)
    files[DEFAULT_KUBELET] = b"KUBELET_EXTRA_ARGS=--pod-infra-container-image=registry.k8s.io/pause:3.9 --v=2\n"
    planned = plan_node(
        kubelet_version="1.36.5", files=files, cri_dockerd_version="0.4.6", docker_cgroup_driver=None, node="w1"
    )
    plan = plan_with_websockets_off(planned, files)

    [change] = [c for c in plan.changes if c.path == DEFAULT_KUBELET]
    assert change.before == files[DEFAULT_KUBELET]  # the rollback puts back the file as it was
    assert change.after == f"KUBELET_EXTRA_ARGS=--v=2 {GATE_OFF}\n".encode()
    assert plan.expected_kubelet_args["--feature-gates"] == "ExtendWebSocketsToKubelet=false"
    assert [c.path for c in plan.changes] == [c.path for c in planned.changes]  # one change per file
    assert apply_changes(apply_changes(files, plan.changes), plan.rollback().changes) == files


def test_a_drain_with_nothing_else_to_change_still_writes_the_gate() -> None:
    files = cri_dockerd_node(35)
    planned = plan_node(
        kubelet_version="1.36.5", files=files, cri_dockerd_version="0.4.6", docker_cgroup_driver=None, node="w1"
    )
    assert planned.is_noop
    plan = plan_with_websockets_off(planned, files)
    assert not plan.is_noop and [c.path for c in plan.changes] == [DEFAULT_KUBELET]
    # Already off: the plan is left as it was.
    off = {**files, DEFAULT_KUBELET: f"KUBELET_EXTRA_ARGS={GATE_OFF}\n".encode()}
    same = plan_node(
        kubelet_version="1.36.5", files=off, cri_dockerd_version="0.4.6", docker_cgroup_driver=None, node="w1"
    )
    assert plan_with_websockets_off(same, off) == same
