"""Each trap of the journey (core/journey/traps.py) as a finding: fires when the journey crosses its
release, names the node (and file:line where there is one), and stays quiet when the node is safe.

Matrix: 1.25 PSP plugin and removed APIs; 1.26 CRI v1alpha2 (cri-dockerd, crictl); 1.27 and 1.35 removed
kubelet flags; 1.27 endpoint home; 1.31 KubeletSeparateDiskGC; 1.34 NodeLocalCRISocket and 1.37 socket
detection; 1.35 cgroup v1 (with and without --allow-cgroup-v1); 1.36 WebSocket streaming (with and without
--kubelet-websockets-off, and a kubelet command line that turns the gate off); a dockershim
node under a newer control plane; and the whole list for 1.23 -> 1.37.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shimshift.core.findings import Finding, Severity
from shimshift.core.journey import traps
from shimshift.core.journey.releases import NEWEST_PATCH
from shimshift.core.journey.schedule import Journey, JourneyNode, plan_journey
from shimshift.core.journey.skew import SkewRules
from shimshift.core.journey.traps import (
    TRAP_CODES,
    ApiserverManifest,
    ClusterFacts,
    NodeFacts,
    RequestedApi,
    TrapOptions,
    journey_findings,
)
from shimshift.core.node_files import DEFAULT_KUBELET, KUBEADM_FLAGS_ENV, KUBELET_CONFIG, NodeView
from shimshift.core.versions import KubernetesVersion, parse_cri_dockerd_version
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT
from tests.unit.core.nodes import CONFIG, cri_dockerd_node, dockershim_node


def v(minor: int) -> KubernetesVersion:
    return KubernetesVersion(minor, NEWEST_PATCH[minor])


def journey(start: int, to: int, *, rules: SkewRules = SkewRules.KUBEADM, dockershim: bool = False) -> Journey:
    nodes = [JourneyNode("cp1", True, v(start), dockershim), JourneyNode("w1", False, v(start), dockershim)]
    return plan_journey(nodes, control_plane=v(start), target=v(to), rules=rules)


def worker(minor: int, files: dict[str, bytes | None] | None = None, **facts: Any) -> NodeFacts:
    view = NodeView.load(files if files is not None else cri_dockerd_node(minor), node="w1")
    return NodeFacts("w1", view, **facts)


def found(
    trip: Journey, *, nodes: list[NodeFacts] | None = None, cluster: ClusterFacts | None = None, **options: Any
) -> list[Finding]:
    return journey_findings(trip, cluster=cluster or ClusterFacts(), nodes=nodes or [], options=TrapOptions(**options))


def codes(findings: list[Finding], node: str = "w1") -> list[str]:
    """The codes of the findings about ``node`` (a node or a file on it)."""
    return [f.code for f in findings if f.subject is not None and node in (f.subject.name, f.subject.node)]


# 1.25 -------------------------------------------------------------------------------------------


PSP = ApiserverManifest("cp1", {"--enable-admission-plugins": ("NodeRestriction,PodSecurityPolicy", 17)})


def test_the_psp_admission_plugin_blocks_a_journey_past_1_24_naming_the_manifest_line() -> None:
    (finding,) = found(journey(23, 25), cluster=ClusterFacts(apiservers=(PSP,)))

    assert (finding.code, finding.severity, finding.setting) == (
        "psp-admission-plugin",
        Severity.ERROR,
        "--enable-admission-plugins",
    )
    assert (finding.file, finding.line, finding.subject and finding.subject.node) == (
        "/etc/kubernetes/manifests/kube-apiserver.yaml",
        17,
        "cp1",
    )
    assert "kubeadm-config" in finding.hint


def test_the_psp_plugin_is_no_trap_before_1_25_or_when_absent() -> None:
    assert found(journey(23, 24), cluster=ClusterFacts(apiservers=(PSP,))) == []
    plain = ApiserverManifest("cp1", {"--enable-admission-plugins": ("NodeRestriction", 17)})
    assert found(journey(23, 26), cluster=ClusterFacts(apiservers=(plain,))) == []


def test_removed_apis_still_requested_are_warned_at_the_release_that_removes_them() -> None:
    apis = (
        RequestedApi("policy", "v1beta1", "poddisruptionbudgets"),
        RequestedApi("batch", "v1beta1", "cronjobs"),
        RequestedApi("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas"),
        RequestedApi("example.io", "v1alpha1", "widgets", removed_release="1.30"),
    )
    up_to_29 = [f for f in found(journey(24, 29), cluster=ClusterFacts(requested_apis=apis)) if f.setting]
    up_to_37 = [
        f
        for f in found(journey(24, 37), cluster=ClusterFacts(requested_apis=apis))
        if f.code == "removed-api-requested"
    ]

    assert [f.setting for f in up_to_29] == ["policy/v1beta1/poddisruptionbudgets", "batch/v1beta1/cronjobs"]
    assert len(up_to_37) == 4 and {f.severity for f in up_to_37} == {Severity.WARNING}
    assert "removed in 1.32" in up_to_37[2].message


# 1.26 -------------------------------------------------------------------------------------------


def test_a_cri_dockerd_that_serves_only_v1alpha2_blocks_a_kubelet_of_1_26() -> None:
    old = worker(25, cri_dockerd=parse_cri_dockerd_version("0.2.6"))
    (finding,) = [f for f in found(journey(25, 26), nodes=[old]) if f.code == "cri-dockerd-cri-version"]

    assert finding.blocking and finding.subject is not None and finding.subject.name == "w1"
    assert "install cri-dockerd 0.3 or later on the node" in finding.hint and "--cri-dockerd PATH" in finding.hint
    assert "cri-dockerd-cri-version" not in codes(found(journey(25, 25), nodes=[old]))
    new = worker(25, cri_dockerd=parse_cri_dockerd_version("0.3.16"))
    assert "cri-dockerd-cri-version" not in codes(found(journey(25, 26), nodes=[new]))
    replaced = found(journey(25, 26), nodes=[old], replacement_cri_dockerd=parse_cri_dockerd_version("0.3.16"))
    assert "cri-dockerd-cri-version" not in codes(replaced)


def test_cri_dockerd_given_with_cri_dockerd_turns_the_1_26_trap_into_a_warning_naming_it() -> None:
    old = worker(25, cri_dockerd=parse_cri_dockerd_version("0.2.6"))
    given: dict[str, Any] = {
        "replacement_cri_dockerd": parse_cri_dockerd_version("0.3.17"),
        "replacement_source": "--cri-dockerd /b",
    }
    (warning,) = [f for f in found(journey(25, 26), nodes=[old], **given) if f.code == "cri-dockerd-replaced"]

    assert warning.severity is Severity.WARNING and warning.subject is not None and warning.subject.name == "w1"
    assert "--cri-dockerd /b (cri-dockerd 0.3.17) replaces it in drain 1" in warning.message
    # A node whose own cri-dockerd serves every kubelet of the journey needs no word about it.
    new = worker(25, cri_dockerd=parse_cri_dockerd_version("0.3.16"))
    assert "cri-dockerd-replaced" not in codes(found(journey(25, 26), nodes=[new], **given))
    # A replacement that serves no 1.26 kubelet either stays the blocking trap, and says so.
    too_old = {**given, "replacement_cri_dockerd": parse_cri_dockerd_version("0.2.6")}
    still = [f for f in found(journey(25, 26), nodes=[old], **too_old) if f.code == "cri-dockerd-cri-version"]
    assert {f.subject.name for f in still if f.subject} == {"cp1", "w1"}
    assert all(f.blocking and "give a cri-dockerd that serves CRI v1" in f.hint for f in still)


def test_a_cri_dockerd_given_older_than_the_nodes_is_refused() -> None:
    node = worker(25, cri_dockerd=parse_cri_dockerd_version("0.4.6"))
    given: dict[str, Any] = {
        "replacement_cri_dockerd": parse_cri_dockerd_version("0.3.17"),
        "replacement_source": "--cri-dockerd /b",
    }
    (refused,) = [f for f in found(journey(25, 27), nodes=[node], **given) if f.code == "cri-dockerd-replacement-older"]

    assert refused.blocking and "--cri-dockerd /b is cri-dockerd 0.3.17, older than the node's 0.4.6" in refused.message
    same = {**given, "replacement_cri_dockerd": parse_cri_dockerd_version("0.4.6")}
    assert "cri-dockerd-replacement-older" not in codes(found(journey(25, 27), nodes=[node], **same))


def test_crictl_must_share_a_cri_version_with_cri_dockerd_while_kubeadm_uses_it() -> None:
    facts: dict[str, Any] = {"cri_dockerd": parse_cri_dockerd_version("0.2.6"), "crictl": v(26)}
    assert "crictl-cri-version" in codes(found(journey(24, 25), nodes=[worker(24, **facts)]))
    assert "crictl-cri-version" not in codes(found(journey(24, 25), nodes=[worker(24, **{**facts, "crictl": v(25)})]))
    missing = found(journey(25, 26), nodes=[worker(25, crictl_found=False)])
    assert "crictl-missing" in codes(missing)
    # kubeadm 1.31 and later use the CRI client library, not crictl.
    assert "crictl-missing" not in codes(found(journey(31, 32), nodes=[worker(31, crictl_found=False)]))


# 1.27 and 1.35: removed kubelet flags; the endpoint's home -------------------------------------


def test_removed_kubelet_flags_are_named_with_the_drain_whose_kubelet_would_exit() -> None:
    trip = journey(25, 37, rules=SkewRules.KUBERNETES)  # drains to 28, 31, 34, 37
    flags = [f for f in found(trip, nodes=[worker(25)]) if f.code == "kubelet-flag-removed"]

    assert [(f.setting, f.file, f.line) for f in flags] == [
        ("--container-runtime", KUBEADM_FLAGS_ENV, 1),
        ("--pod-infra-container-image", KUBEADM_FLAGS_ENV, 1),
    ]
    assert "drain 1 (1.25.16 -> 1.28.15)" in flags[0].message
    assert "drain 4 (1.34.12 -> 1.37.2)" in flags[1].message
    assert "cri-dockerd's --pod-infra-container-image" in flags[1].hint


def test_a_removed_flag_in_the_operators_own_file_is_found_there_too() -> None:
    files = cri_dockerd_node(34)
    files[DEFAULT_KUBELET] = b"KUBELET_EXTRA_ARGS=--pod-infra-container-image=registry.k8s.io/pause:3.9\n"
    flags = [f for f in found(journey(34, 35), nodes=[worker(34, files)]) if f.code == "kubelet-flag-removed"]
    assert [f.file for f in flags] == [KUBEADM_FLAGS_ENV, DEFAULT_KUBELET]


def test_the_endpoint_flag_moves_into_the_kubelet_configuration_from_1_27() -> None:
    (finding,) = [f for f in found(journey(26, 27), nodes=[worker(26)]) if f.code.startswith("endpoint")]
    assert (finding.code, finding.severity) == ("endpoint-flag-deprecated", Severity.WARNING)
    assert finding.file == KUBEADM_FLAGS_ENV
    assert "kubeadm 1.34 moves it" in finding.hint


def test_an_endpoint_only_in_config_yaml_is_lost_at_the_nodes_first_kubeadm_upgrade() -> None:
    files = cri_dockerd_node(27)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS="--pod-infra-container-image=registry.k8s.io/pause:3.9"\n'
    files[KUBELET_CONFIG] = CONFIG + f"containerRuntimeEndpoint: {CRI_DOCKERD_ENDPOINT}\n".encode()
    (finding,) = [f for f in found(journey(27, 28), nodes=[worker(27, files)]) if f.code.startswith("endpoint")]
    assert (finding.code, finding.blocking, finding.file) == ("endpoint-only-in-config", True, KUBELET_CONFIG)
    assert finding.line == 10 and KUBEADM_FLAGS_ENV in finding.hint
    # With the flag beside it, the config's copy is only lost, not needed.
    both = cri_dockerd_node(27)
    both[KUBELET_CONFIG] = files[KUBELET_CONFIG]
    assert not [f for f in found(journey(27, 28), nodes=[worker(27, both)]) if f.code.startswith("endpoint")]


def test_no_endpoint_anywhere_on_a_cri_dockerd_node_blocks_the_1_27_kubelet() -> None:
    bare = cri_dockerd_node(26)
    bare[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS="--pod-infra-container-image=registry.k8s.io/pause:3.9"\n'
    (finding,) = [f for f in found(journey(26, 27), nodes=[worker(26, bare)]) if f.code.startswith("endpoint")]
    assert (finding.code, finding.blocking) == ("endpoint-missing", True)


# 1.31 and 1.36 --------------------------------------------------------------------------------


def test_separate_disk_gc_is_warned_from_1_31_unless_the_gate_is_off() -> None:
    assert "separate-disk-gc" in codes(found(journey(30, 31), nodes=[worker(30)]))
    assert "separate-disk-gc" not in codes(found(journey(29, 30), nodes=[worker(29)]))
    off = cri_dockerd_node(30)
    off[KUBELET_CONFIG] = CONFIG + b"featureGates:\n  KubeletSeparateDiskGC: false\n"
    assert "separate-disk-gc" not in codes(found(journey(30, 31), nodes=[worker(30, off)]))


def test_websocket_streaming_through_cri_dockerd_blocks_1_36_naming_the_opt_in() -> None:
    (finding,) = [f for f in found(journey(35, 36), nodes=[worker(35)]) if f.code == "websocket-streaming"][1:]
    assert finding.blocking and "--kubelet-websockets-off" in finding.hint
    assert "drain 1 (1.35.8 -> 1.36.5)" in finding.message
    gate_off = ApiserverManifest("cp1", {"--feature-gates": ("ExtendWebSocketsToKubelet=false", 20)})
    quiet = found(journey(35, 36), nodes=[worker(35)], cluster=ClusterFacts(apiservers=(gate_off,)))
    assert "websocket-streaming" not in codes(quiet)


def test_with_kubelet_websockets_off_the_1_36_trap_is_a_warning_naming_the_change() -> None:
    findings = found(
        journey(23, 37, dockershim=True), nodes=[worker(23, dockershim_node(23))], kubelet_websockets_off=True
    )
    said = [f for f in findings if f.code == "websocket-streaming"]

    assert [f.subject.name for f in said if f.subject] == ["cp1", "w1"]
    assert all(f.severity is Severity.WARNING for f in said)
    assert "--feature-gates=ExtendWebSocketsToKubelet=false into KUBELET_EXTRA_ARGS" in said[1].message
    assert "drain 7 (1.33.13 -> 1.36.5)" in said[1].message  # the drain that first reaches 1.36


def test_with_kubelet_websockets_off_a_gate_value_it_cannot_merge_blocks_at_plan_time() -> None:
    files = cri_dockerd_node(35)
    files[DEFAULT_KUBELET] = b"# ours\nKUBELET_EXTRA_ARGS=--feature-gates=Foo=maybe\n"
    [finding] = [
        f
        for f in found(journey(35, 36), nodes=[worker(35, files)], kubelet_websockets_off=True)
        if f.code == "websocket-streaming"
    ][1:]
    assert finding.blocking and "'Foo=maybe'" in finding.message
    assert (finding.file, finding.line, finding.subject and finding.subject.node) == (DEFAULT_KUBELET, 2, "w1")


def test_a_kubelet_whose_command_line_turns_the_gate_off_meets_no_trap() -> None:
    files = cri_dockerd_node(36)
    files[DEFAULT_KUBELET] = b'KUBELET_EXTRA_ARGS="--feature-gates=Foo=true,ExtendWebSocketsToKubelet=False"\n'
    assert "websocket-streaming" not in codes(found(journey(35, 37), nodes=[worker(36, files)]))
    # Repeated --feature-gates merge, the last one winning: true in KUBELET_EXTRA_ARGS undoes a false before it.
    files[KUBEADM_FLAGS_ENV] = (files[KUBEADM_FLAGS_ENV] or b"").replace(
        b'KUBELET_KUBEADM_ARGS="', b'KUBELET_KUBEADM_ARGS="--feature-gates=ExtendWebSocketsToKubelet=false '
    )
    files[DEFAULT_KUBELET] = b"KUBELET_EXTRA_ARGS=--feature-gates=ExtendWebSocketsToKubelet=true\n"
    assert "websocket-streaming" in codes(found(journey(35, 37), nodes=[worker(35, files)]))


# 1.34 and 1.37: where kubeadm keeps the socket ------------------------------------------------


def test_kubeadm_1_34_moves_the_endpoint_into_instance_config() -> None:
    (finding,) = [f for f in found(journey(33, 34), nodes=[worker(33)]) if f.code == "node-local-cri-socket"]
    assert finding.severity is Severity.WARNING and "moves the runtime endpoint" in finding.message


def test_kubeadm_1_34_would_write_an_empty_endpoint_when_kubeadm_flags_env_has_none() -> None:
    files = cri_dockerd_node(33)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS="--pod-infra-container-image=registry.k8s.io/pause:3.9"\n'
    files[KUBELET_CONFIG] = CONFIG + f"containerRuntimeEndpoint: {CRI_DOCKERD_ENDPOINT}\n".encode()
    (finding,) = [f for f in found(journey(33, 34), nodes=[worker(33, files)]) if f.code == "node-local-cri-socket"]
    assert "empty containerRuntimeEndpoint" in finding.message and "shimshift writes" in finding.hint


def test_a_dockershim_node_gets_the_endpoint_flag_from_its_migration_before_kubeadm_1_34() -> None:
    trip = journey(23, 34, dockershim=True)
    node = NodeFacts("w1", NodeView.load(dockershim_node(23), node="w1"))
    (finding,) = [
        f
        for f in found(trip, nodes=[node])
        if f.code == "node-local-cri-socket" and f.subject and f.subject.node == "w1"
    ]
    assert "moves the runtime endpoint" in finding.message


def test_kubeadm_1_37_without_instance_config_detects_containerd_on_a_docker_host() -> None:
    files = cri_dockerd_node(33)  # a node that never ran kubeadm 1.34-1.36
    (finding,) = [
        f
        for f in found(journey(36, 37), nodes=[worker(36, files, containerd_socket=True)])
        if f.code == "cri-socket-autodetect"
    ]
    assert finding.blocking and "containerd's" in finding.message
    assert "cri-socket-autodetect" not in codes(found(journey(36, 37), nodes=[worker(36)]))


# 1.35 cgroup v1 -------------------------------------------------------------------------------


def test_cgroup_v1_blocks_a_1_35_kubelet_unless_the_operator_allows_it() -> None:
    (blocked,) = [f for f in found(journey(34, 35), nodes=[worker(34, cgroup_version=1)]) if f.code == "cgroup-v1"]
    assert blocked.blocking and "--allow-cgroup-v1" in blocked.hint

    (allowed,) = [
        f
        for f in found(journey(34, 35), nodes=[worker(34, cgroup_version=1)], allow_cgroup_v1=True)
        if f.code == "cgroup-v1"
    ]
    assert not allowed.blocking and "accepted by the operator" in allowed.message

    assert "cgroup-v1" not in codes(found(journey(34, 35), nodes=[worker(34, cgroup_version=2)]))
    opted = cri_dockerd_node(34)
    opted[KUBELET_CONFIG] = CONFIG + b"failCgroupV1: false\n"
    assert "cgroup-v1" not in codes(found(journey(34, 35), nodes=[worker(34, opted, cgroup_version=1)]))


# dockershim, other runtimes, and the whole journey --------------------------------------------


def test_a_control_plane_node_on_dockershim_needs_a_crictl_that_speaks_v1alpha2() -> None:
    # The policy's schedule: kubeadm 1.24 and the forced 1.25 apply run on cp1 before its first drain.
    trip = journey(23, 25, rules=SkewRules.KUBERNETES, dockershim=True)
    view = NodeView.load(dockershim_node(23), node="cp1")
    new = found(trip, nodes=[NodeFacts("cp1", view, crictl=v(26))])
    (finding,) = [f for f in new if f.code == "dockershim-crictl-cri-version"]
    assert finding.blocking and finding.subject is not None and finding.subject.name == "cp1"
    assert "dockershim-crictl-cri-version" not in codes(
        found(trip, nodes=[NodeFacts("cp1", view, crictl=v(25))]), "cp1"
    )
    # A worker's `kubeadm upgrade node` pre-pulls no images: it never reaches the runtime.
    assert "dockershim-crictl-cri-version" not in codes(found(trip, nodes=[NodeFacts("w1", view, crictl=v(26))]))
    # kubeadm's schedule: cp1's first drain holds its 1.24 apply, after the migration (sequence.py).
    kubeadm_rules = found(journey(23, 25, dockershim=True), nodes=[NodeFacts("cp1", view, crictl=v(26))])
    assert "dockershim-crictl-cri-version" not in codes(kubeadm_rules)


def test_a_containerd_node_meets_only_the_kubelets_own_traps() -> None:
    cluster = ClusterFacts(other_runtimes=frozenset({"w1"}))
    assert codes(found(journey(33, 37), nodes=[worker(33, cgroup_version=1)], cluster=cluster)) == [
        "kubelet-flag-removed",
        "cgroup-v1",
    ]
    assert "websocket-streaming" in codes(found(journey(33, 37), cluster=cluster), "cp1")


@pytest.mark.parametrize("rules", list(SkewRules))
def test_a_dockershim_node_under_a_newer_control_plane_is_said(rules: SkewRules) -> None:
    trip = journey(23, 26, rules=rules, dockershim=True)
    said = [f for f in found(trip) if f.code == "dockershim-under-new-control-plane"]
    if rules is SkewRules.KUBERNETES:
        assert [f.subject.name for f in said if f.subject] == ["cp1", "w1"]
        assert "1.25.16" in said[0].message
    else:  # cp1 applies 1.24 inside its first drain; w1 waits on dockershim under it
        assert [f.subject.name for f in said if f.subject] == ["w1"]
        assert "1.24.17" in said[0].message


def test_1_23_on_dockershim_to_1_37_meets_every_trap_of_a_cgroup_v1_docker_host() -> None:
    trip = journey(23, 37, dockershim=True)
    node = NodeFacts(
        "w1",
        NodeView.load(dockershim_node(23), node="w1"),
        cgroup_version=1,
        cri_dockerd=parse_cri_dockerd_version("0.3.16"),
        crictl=v(24),
        containerd_socket=True,
    )
    findings = found(trip, nodes=[node], cluster=ClusterFacts(apiservers=(PSP,)))

    assert codes(findings, "cp1") == [
        "psp-admission-plugin",
        "separate-disk-gc",  # cp1 was not read: only the traps every cri-dockerd node meets
        "websocket-streaming",
    ]
    assert codes(findings) == [
        "dockershim-under-new-control-plane",
        "kubelet-flag-removed",
        "separate-disk-gc",
        "node-local-cri-socket",
        "cgroup-v1",
        "websocket-streaming",
    ]
    blocking = [f.code for f in findings if f.blocking]
    assert blocking == ["psp-admission-plugin", "websocket-streaming", "cgroup-v1", "websocket-streaming"]


@settings(max_examples=150, deadline=None)
@given(
    start=st.integers(min_value=23, max_value=36),
    span=st.integers(min_value=0, max_value=14),
    rules=st.sampled_from(SkewRules),
    minor=st.integers(min_value=23, max_value=36),
    cgroup=st.sampled_from([1, 2, None]),
    allow=st.booleans(),
    websockets_off=st.booleans(),
)
def test_every_finding_has_a_known_code_a_subject_and_a_way_on(
    start: int, span: int, rules: SkewRules, minor: int, cgroup: int | None, allow: bool, websockets_off: bool
) -> None:
    to = min(37, start + span)
    kubelet = max(min(minor, start), start - 2)
    files = dockershim_node(kubelet) if kubelet < 24 else cri_dockerd_node(kubelet)
    nodes = [JourneyNode("cp1", True, v(start)), JourneyNode("w1", False, v(kubelet), dockershim=kubelet < 24)]
    trip = plan_journey(nodes, control_plane=v(start), target=v(to), rules=rules)
    facts = [
        NodeFacts(
            "w1",
            NodeView.load(files, node="w1"),
            cgroup_version=cgroup,
            cri_dockerd=parse_cri_dockerd_version("0.2.6"),
            crictl=v(26),
            crictl_found=True,
        )
    ]
    cluster = ClusterFacts(apiservers=(PSP,), requested_apis=(RequestedApi("batch", "v1beta1", "cronjobs"),))
    options = {"allow_cgroup_v1": allow, "kubelet_websockets_off": websockets_off}
    for finding in found(trip, nodes=facts, cluster=cluster, **options):
        assert finding.code in TRAP_CODES
        assert finding.hint
        assert finding.subject is not None or finding.code == "removed-api-requested"


def test_trap_codes_lists_exactly_the_codes_the_rules_use() -> None:
    source = Path(traps.__file__).read_text()
    used = {
        node.args[1].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) == "Finding"
        and len(node.args) > 1
        and isinstance(node.args[1], ast.Constant)
    }
    assert used == TRAP_CODES
