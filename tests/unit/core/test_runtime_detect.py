"""Runtime classification from the Node object, and Docker-socket mounts (pure).

Matrix: docker:// with the dockershim annotation / no annotation / the cri-dockerd annotation / a 1.24+
kubelet; containerd:// and cri-o:// (with a stale annotation); garbage; the socket itself vs a parent
directory vs an unrelated hostPath; workload naming; deduplication.
"""

from __future__ import annotations

from typing import Any

import pytest

from shimshift.core.runtime_detect import (
    HostPathVolume,
    NodeFacts,
    PodMounts,
    Runtime,
    classify_runtime,
    dedupe_by_workload,
    find_socket_mounts,
    socket_reach,
    workload_of,
)
from shimshift.core.wellknown import CRI_SOCKET_ANNOTATION


def node(runtime: str, socket: str | None = None, kubelet: str = "v1.23.17") -> NodeFacts:
    annotations = {CRI_SOCKET_ANNOTATION: socket} if socket else {}
    return NodeFacts(
        name="n", kubelet_version=kubelet, container_runtime_version=runtime, annotations=annotations
    )


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (node("docker://20.10.24", "/var/run/dockershim.sock"), Runtime.DOCKERSHIM),
        (node("docker://20.10.24", "unix:///var/run/dockershim.sock"), Runtime.DOCKERSHIM),
        (node("docker://20.10.24"), Runtime.DOCKERSHIM),
        (node("docker://20.10.24", "unix:///var/run/cri-dockerd.sock"), Runtime.CRI_DOCKERD),
        (node("docker://24.0.7", "unix:///var/run/dockershim.sock", kubelet="v1.24.17"), Runtime.CRI_DOCKERD),
        (node("containerd://1.6.20", "unix:///run/containerd/containerd.sock"), Runtime.CONTAINERD),
        (node("containerd://1.6.20", "/var/run/dockershim.sock"), Runtime.CONTAINERD),
        (node("cri-o://1.24.1", "unix:///var/run/crio/crio.sock"), Runtime.CRIO),
        (node("docker://20.10.24", "unix:///run/containerd/containerd.sock"), Runtime.UNKNOWN),
        (node(""), Runtime.UNKNOWN),
        (node("rkt://1.0"), Runtime.UNKNOWN),
    ],
)
def test_classify(facts: NodeFacts, expected: Runtime) -> None:
    verdict = classify_runtime(facts)
    assert verdict.runtime is expected
    assert any("containerRuntimeVersion" in item for item in verdict.evidence)


def test_stale_annotation_is_named_in_the_evidence() -> None:
    verdict = classify_runtime(node("containerd://1.6.20", "/var/run/dockershim.sock"))
    assert any("stale" in item for item in verdict.evidence)


def test_role_from_labels() -> None:
    assert NodeFacts(name="a", labels={"node-role.kubernetes.io/control-plane": ""}).role == "control-plane"
    assert NodeFacts(name="a", labels={"node-role.kubernetes.io/master": ""}).role == "control-plane"
    assert NodeFacts(name="a").role == "worker"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/var/run/docker.sock", "socket"),
        ("/run/dockershim.sock", "socket"),
        ("/var/run/docker.sock/", "socket"),
        ("/var/run", "parent-dir"),
        ("/var/run/", "parent-dir"),
        ("/run", "parent-dir"),
        ("/", "parent-dir"),
        ("/var", "parent-dir"),
        ("//var//run", "parent-dir"),
        ("/var/run/containerd", None),
        ("/var/lib/docker", None),
        ("/etc", None),
        ("relative/docker.sock", None),
    ],
)
def test_socket_reach(path: str, kind: str | None) -> None:
    reach = socket_reach(path)
    assert (reach[0] if reach else None) == kind


def test_find_socket_mounts_and_workloads() -> None:
    agent = PodMounts(
        namespace="mon",
        name="agent-x1",
        node="w1",
        host_paths=(HostPathVolume("run", "/var/run"), HostPathVolume("logs", "/var/log")),
        owner_kind="DaemonSet",
        owner_name="agent",
    )
    found = find_socket_mounts(agent)
    assert [(m.workload, m.kind, m.volume) for m in found] == [("DaemonSet/mon/agent", "parent-dir", "run")]
    other = PodMounts(
        namespace="mon",
        name="agent-x2",
        node="w2",
        host_paths=(HostPathVolume("run", "/var/run/"),),
        owner_kind="DaemonSet",
        owner_name="agent",
    )
    assert len(dedupe_by_workload([*found, *find_socket_mounts(other)])) == 1


def test_workload_names() -> None:
    rs_pod = PodMounts(
        namespace="d",
        name="web-5d8f-abc",
        node="n",
        host_paths=(),
        owner_kind="ReplicaSet",
        owner_name="web-5d8f",
        labels={"pod-template-hash": "5d8f"},
    )
    assert workload_of(rs_pod) == "Deployment/d/web"
    bare = PodMounts(namespace="d", name="bare", node="n", host_paths=())
    assert workload_of(bare) == "Pod/d/bare"
    static = PodMounts(
        namespace="kube-system", name="etcd-cp", node="cp", host_paths=(), owner_kind="Node", owner_name="cp"
    )
    assert workload_of(static) == "Pod/kube-system/etcd-cp"


def test_exec_plugins_of_v1_are_read_as_v1beta1() -> None:
    from shimshift.adapters.kube.client import exec_compatible

    config: dict[str, Any] = {
        "users": [
            {
                "name": "a",
                "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "x"}},
            },
            {"name": "b", "user": {"token": "t"}},
        ]
    }
    converted = exec_compatible(config)
    assert converted["users"][0]["user"]["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert converted["users"][1] == {"name": "b", "user": {"token": "t"}}
    assert config["users"][0]["user"]["exec"]["apiVersion"] == "client.authentication.k8s.io/v1"  # a copy
