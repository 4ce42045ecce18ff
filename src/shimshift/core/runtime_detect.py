"""Which container runtime a node uses, with the evidence; and which workloads mount the Docker socket.

Pure: plain facts in (what the Node object and the pod specs say), verdicts out.

Why both the runtime version and the annotation: with dockershim and with cri-dockerd the kubelet reports
``containerRuntimeVersion: docker://<version>`` alike (cri-dockerd answers the CRI Version call with
runtime name "docker"), so the runtime string alone cannot tell them apart. kubeadm's
``kubeadm.alpha.kubernetes.io/cri-socket`` annotation records the socket kubeadm configured, and a
kubelet of v1.24 or newer has no dockershim at all (kubernetes/kubernetes#97252).
The node-side check (the kubelet's ``--container-runtime-endpoint`` flag) is the final word; it is done
over SSH by another module, so a verdict here says "from the API".

Socket mounts: dds-style detectors look only for hostPath volumes whose path contains ``docker.sock``
(aws-containers/kubectl-detector-for-docker-socket); a pod mounting ``/var/run`` or ``/run`` (or ``/``) reaches the
same socket and is reported here as well.
"""

from __future__ import annotations

import enum
import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shimshift.core.wellknown import CRI_SOCKET_ANNOTATION, is_control_plane

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


# The sockets a workload may talk to Docker (or the kubelet's dockershim) through.
DOCKER_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/dockershim.sock",
    "/run/dockershim.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
)


class Runtime(enum.StrEnum):
    DOCKERSHIM = "dockershim"
    CRI_DOCKERD = "cri-dockerd"
    CONTAINERD = "containerd"
    CRIO = "cri-o"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class NodeFacts:
    """What the audit reads from one Node object."""

    name: str
    kubelet_version: str = ""
    os_image: str = ""
    container_runtime_version: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = False
    unschedulable: bool = False

    @property
    def cri_socket(self) -> str | None:
        return self.annotations.get(CRI_SOCKET_ANNOTATION)

    @property
    def role(self) -> str:
        return "control-plane" if is_control_plane(self.labels) else "worker"


@dataclass(frozen=True)
class RuntimeVerdict:
    runtime: Runtime
    evidence: tuple[str, ...]


_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def kubelet_minor(version: str) -> tuple[int, int] | None:
    """``v1.23.17`` → ``(1, 23)``; None when the string is not a version."""
    match = _VERSION.match(version.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _socket_kind(socket: str) -> str | None:
    path = socket.removeprefix("unix://")
    base = posixpath.basename(path)
    if base == "dockershim.sock":
        return "dockershim"
    if base == "cri-dockerd.sock":
        return "cri-dockerd"
    if "containerd" in base:
        return "containerd"
    if "crio" in base:
        return "cri-o"
    return None


def classify_runtime(node: NodeFacts) -> RuntimeVerdict:
    """Classify a node's runtime from what the API shows; every verdict lists the facts it rests on."""
    evidence: list[str] = []
    runtime_version = node.container_runtime_version
    scheme = runtime_version.split("://", 1)[0].lower() if "://" in runtime_version else ""
    evidence.append(f"containerRuntimeVersion={runtime_version or '(empty)'}")
    socket = node.cri_socket
    socket_kind = _socket_kind(socket) if socket else None
    evidence.append(f"{CRI_SOCKET_ANNOTATION}={socket}" if socket else f"{CRI_SOCKET_ANNOTATION} absent")
    minor = kubelet_minor(node.kubelet_version)

    if scheme == "containerd":
        verdict = Runtime.CONTAINERD
    elif scheme in ("cri-o", "crio"):
        verdict = Runtime.CRIO
    elif scheme == "docker":
        if minor is not None and minor >= (1, 24):
            evidence.append(f"kubelet {node.kubelet_version} has no dockershim (removed in v1.24)")
            verdict = Runtime.CRI_DOCKERD
        elif socket_kind == "cri-dockerd":
            verdict = Runtime.CRI_DOCKERD
        elif socket_kind in (None, "dockershim"):
            if socket_kind is None:
                evidence.append("no cri-dockerd socket recorded: the kubelet's built-in dockershim")
            verdict = Runtime.DOCKERSHIM
        else:
            evidence.append(f"annotation names a {socket_kind} socket but the runtime reports docker")
            verdict = Runtime.UNKNOWN
    else:
        verdict = Runtime.UNKNOWN

    if verdict in (Runtime.CONTAINERD, Runtime.CRIO) and socket_kind not in (None, verdict.value):
        evidence.append(f"annotation still names a {socket_kind} socket: stale, kubeadm upgrade would use it")
    return RuntimeVerdict(verdict, tuple(evidence))


@dataclass(frozen=True)
class HostPathVolume:
    name: str
    path: str


@dataclass(frozen=True)
class PodMounts:
    """The parts of a pod the socket check needs."""

    namespace: str
    name: str
    node: str
    host_paths: tuple[HostPathVolume, ...]
    owner_kind: str = ""
    owner_name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    static: bool = False


@dataclass(frozen=True)
class SocketMount:
    """A workload that can reach a Docker socket. ``kind`` is "socket" or "parent-dir"."""

    workload: str  # Kind/namespace/name, e.g. DaemonSet/monitoring/agent, or Pod/ns/name
    pod: str
    node: str
    volume: str
    path: str
    kind: str
    reaches: tuple[str, ...]


def _normalise(path: str) -> str:
    normalised = posixpath.normpath(path) if path else ""
    # POSIX keeps a leading "//" as-is; the kernel treats it as "/".
    return "/" + normalised.lstrip("/") if normalised.startswith("/") else normalised


def socket_reach(path: str) -> tuple[str, tuple[str, ...]] | None:
    """("socket"|"parent-dir", sockets reachable) when a hostPath of ``path`` exposes a Docker socket."""
    normalised = _normalise(path)
    if not normalised.startswith("/"):
        return None
    if normalised in DOCKER_SOCKETS:
        return "socket", (normalised,)
    prefix = normalised.rstrip("/") + "/"
    reached = tuple(sock for sock in DOCKER_SOCKETS if sock.startswith(prefix))
    if reached:
        return "parent-dir", reached
    return None


def workload_of(pod: PodMounts) -> str:
    """The workload of a pod: the Deployment behind a ReplicaSet (by pod-template-hash), else the owner."""
    if pod.owner_kind == "ReplicaSet":
        pod_hash = pod.labels.get("pod-template-hash", "")
        if pod_hash and pod.owner_name.endswith("-" + pod_hash):
            return f"Deployment/{pod.namespace}/{pod.owner_name[: -len(pod_hash) - 1]}"
    if pod.owner_kind == "Job":
        return f"Job/{pod.namespace}/{pod.owner_name}"
    if pod.owner_kind and pod.owner_kind != "Node":
        return f"{pod.owner_kind}/{pod.namespace}/{pod.owner_name}"
    return f"Pod/{pod.namespace}/{pod.name}"


def find_socket_mounts(pod: PodMounts) -> list[SocketMount]:
    """Every hostPath volume of ``pod`` that reaches a Docker or dockershim socket."""
    found: list[SocketMount] = []
    for volume in pod.host_paths:
        reach = socket_reach(volume.path)
        if reach is None:
            continue
        kind, sockets = reach
        found.append(
            SocketMount(
                workload_of(pod),
                f"{pod.namespace}/{pod.name}",
                pod.node,
                volume.name,
                volume.path,
                kind,
                sockets,
            )
        )
    return found


def dedupe_by_workload(mounts: Iterable[SocketMount]) -> list[SocketMount]:
    """One line per (workload, path): a DaemonSet on 2,000 nodes is one finding, not 2,000."""
    seen: dict[tuple[str, str], SocketMount] = {}
    for mount in mounts:
        seen.setdefault((mount.workload, _normalise(mount.path)), mount)
    return list(seen.values())
