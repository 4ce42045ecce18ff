"""Audit: what runs where, node by node, and who mounts the Docker socket.

Built to stay flat on big clusters: Nodes and Pods are read in pages (``limit``/``continue``) and each page
is reduced at once to counters and findings, so memory holds one page plus one small record per node,
never the pod list. A DaemonSet that mounts /var/run on 2,000 nodes is one finding, not 2,000.

Pods are listed through lightkube as :class:`AuditPod`, a resource whose model holds only the fields the
audit reads, so msgspec decodes each page straight from bytes into it and skips the rest of every pod.
Measured on one 500-pod page (580 kB) here: ``json.loads`` 19.9 ms, lightkube's full ``Pod`` model 17.7 ms,
this model 2.7 ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from lightkube.core import resource as lightkube_resource
from lightkube.resources.core_v1 import Pod

from shimshift.adapters.kube.client import JSON, list_pages
from shimshift.adapters.kube.workloads import feed_workloads
from shimshift.core.findings import Finding
from shimshift.core.hardened_pods import (
    HardenedScan,
    HardenedWorkload,
    kubelet_checks_runtime_version,
    workload_findings,
)
from shimshift.core.runtime_detect import (
    HostPathVolume,
    NodeFacts,
    PodMounts,
    Runtime,
    RuntimeVerdict,
    SocketMount,
    classify_runtime,
    find_socket_mounts,
)
from shimshift.core.wellknown import MIRROR_POD_ANNOTATION

if TYPE_CHECKING:
    from collections.abc import Callable

    from lightkube import AsyncClient

# Below this many selected nodes, one field-selected pod list per node beats listing every pod.
PER_NODE_LISTING_LIMIT = 20


class _Owner(msgspec.Struct, kw_only=True):
    kind: str = ""
    name: str = ""
    controller: bool | None = None


class _HostPath(msgspec.Struct, kw_only=True):
    path: str = ""


class _Volume(msgspec.Struct, kw_only=True):
    name: str = ""
    hostPath: _HostPath | None = None


class _PodMeta(msgspec.Struct, kw_only=True):
    name: str = ""
    namespace: str = ""
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    ownerReferences: list[_Owner] | None = None


class _SecurityContext(msgspec.Struct, kw_only=True):
    allowPrivilegeEscalation: bool | None = None
    procMount: str | None = None


class _Container(msgspec.Struct, kw_only=True):
    name: str = ""
    securityContext: _SecurityContext | None = None


class _PodSpec(msgspec.Struct, kw_only=True):
    nodeName: str | None = None
    volumes: list[_Volume] | None = None
    # What the hardened-pod rule reads (core/hardened_pods.py): the kubelet walks spec.containers only.
    containers: list[_Container] | None = None


class _PodStatus(msgspec.Struct, kw_only=True):
    phase: str | None = None


class _AuditPodModel(msgspec.Struct, kw_only=True):
    metadata: _PodMeta | None = None
    spec: _PodSpec | None = None
    status: _PodStatus | None = None


class AuditPod(lightkube_resource.NamespacedResourceG, _AuditPodModel):
    """A Pod as the audit reads it: lightkube lists it like ``Pod`` and decodes only these fields."""

    _api_info = Pod._api_info


def pod_mounts(pod: AuditPod) -> PodMounts:
    """What the socket-mount rules need of a pod."""
    metadata = pod.metadata or _PodMeta()
    owner = next((ref for ref in metadata.ownerReferences or [] if ref.controller), None)
    volumes = pod.spec.volumes if pod.spec is not None else None
    return PodMounts(
        namespace=metadata.namespace,
        name=metadata.name,
        node=(pod.spec.nodeName if pod.spec is not None else None) or "",
        host_paths=tuple(
            HostPathVolume(volume.name, volume.hostPath.path) for volume in volumes or [] if volume.hostPath is not None
        ),
        owner_kind=owner.kind if owner else "",
        owner_name=owner.name if owner else "",
        labels=dict(metadata.labels or {}),
        static=MIRROR_POD_ANNOTATION in (metadata.annotations or {}),
    )


@dataclass
class NodeAudit:
    name: str
    kubelet_version: str
    os_image: str
    container_runtime_version: str
    cri_socket: str | None
    ready: bool
    schedulable: bool
    role: str
    runtime: RuntimeVerdict
    pods: int = 0
    pods_running: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "kubeletVersion": self.kubelet_version,
            "osImage": self.os_image,
            "containerRuntimeVersion": self.container_runtime_version,
            "criSocket": self.cri_socket,
            "ready": self.ready,
            "schedulable": self.schedulable,
            "pods": self.pods,
            "podsRunning": self.pods_running,
            "runtime": self.runtime.runtime.value,
            "evidence": list(self.runtime.evidence),
        }


@dataclass
class AuditReport:
    nodes: list[NodeAudit] = field(default_factory=list)
    socket_mounts: list[SocketMount] = field(default_factory=list)
    pods_seen: int = 0
    hardened: list[HardenedWorkload] = field(default_factory=list)

    @property
    def refusing_nodes(self) -> list[NodeAudit]:
        """Nodes whose kubelet (< 1.24, on Docker) refuses hardened pods on cri-dockerd: now, or once migrated."""
        docker = (Runtime.DOCKERSHIM, Runtime.CRI_DOCKERD)
        return [
            node
            for node in self.nodes
            if node.runtime.runtime in docker and kubelet_checks_runtime_version(node.kubelet_version)
        ]

    @property
    def findings(self) -> list[Finding]:
        return workload_findings(self.hardened, affected_nodes=len(self.refusing_nodes))

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": [node.to_json() for node in self.nodes],
            "hardenedPods": {
                "count": len(self.hardened),
                "refusingNodes": [node.name for node in self.refusing_nodes],
                "workloads": [workload.to_json() for workload in self.hardened],
            },
            "findings": [finding.to_json() for finding in self.findings],
            "socketMounts": [
                {
                    "workload": m.workload,
                    "pod": m.pod,
                    "node": m.node,
                    "volume": m.volume,
                    "path": m.path,
                    "kind": m.kind,
                    "reaches": list(m.reaches),
                }
                for m in self.socket_mounts
            ],
        }


def node_facts(node: JSON) -> NodeFacts:
    metadata = node.get("metadata", {})
    status = node.get("status", {})
    info = status.get("nodeInfo") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return NodeFacts(
        name=str(metadata.get("name", "")),
        kubelet_version=str(info.get("kubeletVersion", "")),
        os_image=str(info.get("osImage", "")),
        container_runtime_version=str(info.get("containerRuntimeVersion", "")),
        annotations=dict(metadata.get("annotations") or {}),
        labels=dict(metadata.get("labels") or {}),
        ready=ready,
        unschedulable=bool(node.get("spec", {}).get("unschedulable")),
    )


async def audit_cluster(
    client: AsyncClient,
    *,
    selector: str | None = None,
    chunk_size: int = 500,
    on_progress: Callable[[str, int], None] | None = None,
    hardened: bool = True,
) -> AuditReport:
    """Audit every node (or those matching the label ``selector``) and the pods on them; with ``hardened``,
    also every workload and pod of the cluster that kubelets < 1.24 refuse on cri-dockerd."""
    report = AuditReport()
    params = {"labelSelector": selector} if selector else {}
    by_name: dict[str, NodeAudit] = {}
    async for page in list_pages(client, "/api/v1/nodes", params=params, chunk_size=chunk_size):
        for node in page:
            facts = node_facts(node)
            by_name[facts.name] = NodeAudit(
                name=facts.name,
                kubelet_version=facts.kubelet_version,
                os_image=facts.os_image,
                container_runtime_version=facts.container_runtime_version,
                cri_socket=facts.cri_socket,
                ready=facts.ready,
                schedulable=not facts.unschedulable,
                role=facts.role,
                runtime=classify_runtime(facts),
            )
        if on_progress is not None:
            on_progress("nodes", len(by_name))

    seen: dict[tuple[str, str], SocketMount] = {}
    scan = HardenedScan()

    def feed_hardened(pod: AuditPod) -> None:
        # Only a pod whose containers set a security context can be refused; only it becomes the dict the
        # rule reads (the API's JSON shape), so the common pod costs one attribute walk on this hot path.
        containers = (pod.spec.containers if pod.spec is not None else None) or []
        if any(container.securityContext is not None for container in containers):
            scan.add_pod(msgspec.to_builtins(pod))

    def take(pod: AuditPod, *, all_pods: bool) -> None:
        if all_pods and hardened:
            feed_hardened(pod)
        node_name = pod.spec.nodeName if pod.spec is not None else None
        audit = by_name.get(node_name) if node_name else None
        if audit is None:
            return
        report.pods_seen += 1
        audit.pods += 1
        if pod.status is not None and pod.status.phase == "Running":
            audit.pods_running += 1
        volumes = pod.spec.volumes if pod.spec is not None else None
        if volumes and any(volume.hostPath is not None for volume in volumes):
            for mount in find_socket_mounts(pod_mounts(pod)):
                seen.setdefault((mount.workload, mount.path), mount)

    size = chunk_size or None
    if selector and len(by_name) <= PER_NODE_LISTING_LIMIT:
        for name in by_name:
            async for pod in client.list(AuditPod, namespace="*", fields={"spec.nodeName": name}, chunk_size=size):
                take(pod, all_pods=False)
        if hardened:
            # Hardened pods matter wherever they are (and unbound): any of them may land on a migrated node.
            async for pod in client.list(AuditPod, namespace="*", chunk_size=size):
                feed_hardened(pod)
    else:
        async for pod in client.list(AuditPod, namespace="*", chunk_size=size):
            take(pod, all_pods=True)
            if on_progress is not None and report.pods_seen % max(chunk_size, 1) == 0:
                on_progress("pods", report.pods_seen)
        if on_progress is not None:
            on_progress("pods", report.pods_seen)
    if hardened:
        await feed_workloads(client, scan, chunk_size=chunk_size)
        report.hardened = scan.result()

    report.nodes = sorted(by_name.values(), key=lambda node: node.name)
    report.socket_mounts = sorted(seen.values(), key=lambda mount: (mount.workload, mount.path))
    return report
