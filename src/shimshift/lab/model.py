"""What a lab is: its nodes, its addresses, its files. Pure data, no I/O.

The lab is a kubeadm cluster (v1.23.17 by default, any release releases.py knows) whose nodes are
Docker containers (systemd as PID 1, Docker Engine inside, the kubelet on its built-in dockershim
before 1.24 and on cri-dockerd from 1.24). Everything the lab creates in the host's
Docker carries the label ``shimshift.lab=1`` so `lab down` finds it again.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shimshift.core.errors import OPTION_INVALID, Refusal
from shimshift.core.fleet import NODE_NOT_FOUND
from shimshift.core.wellknown import CRI_DOCKERD_SOCKET as CRI_DOCKERD_SOCKET
from shimshift.core.wellknown import CRI_SOCKET_ANNOTATION as CRI_SOCKET_ANNOTATION
from shimshift.core.wellknown import DOCKERSHIM_SOCKET as DOCKERSHIM_SOCKET
from shimshift.lab.releases import DEFAULT_CRI_DOCKERD_VERSION, DEFAULT_VERSION, Release, release

if TYPE_CHECKING:
    from collections.abc import Sequence

LAB_PREFIX = "shimshift-lab"
LABEL = "shimshift.lab"
NETWORK_NAME = LAB_PREFIX
# A /24 of its own, away from Docker's default 172.17.0.0/16, the pod subnet and the service subnet.
NETWORK_SUBNET = "172.29.0.0/24"
NODE_IP_OFFSET = 10  # control plane .10, workers .11, .12, ...
POD_SUBNET = "10.244.0.0/16"
SERVICE_SUBNET = "10.96.0.0/12"
KUBERNETES_VERSION = DEFAULT_VERSION  # the default lab; LabSpec.version names the one running
PAUSE_IMAGE = "registry.k8s.io/pause:3.6"
WORKLOAD_IMAGE = "shimshift.local/busybox:1.0"
DEMO_NAMESPACE = "shimshift-demo"
DEFAULT_DIRECTORY = Path("/var/lib/shimshift/lab")
STATE_FILE = "lab.json"
MAX_WORKERS = 20

Role = Literal["control-plane", "worker"]


class CriDockerdMode(StrEnum):
    """The state cri-dockerd is left in on every node after `lab up`."""

    RUNNING = "running"  # enabled and started (socket and service), packaged defaults
    STOPPED = "stopped"  # installed, units disabled and inactive
    ABSENT = "absent"  # binary and units removed (a backup stays in the node, see cluster.py)


@dataclass(frozen=True)
class LabNode:
    """One node: ``name`` is the Kubernetes node name, the container name and the ssh ``Host``."""

    name: str
    role: Role
    ip: str


@dataclass(frozen=True)
class LabSpec:
    """What `lab up` was asked for; a running lab with a different spec is not reused."""

    workers: int = 2
    cri_dockerd: CriDockerdMode = CriDockerdMode.RUNNING
    # The `restricted` Deployment (allowPrivilegeEscalation: false, with a PDB) that makes `migrate` refuse
    # 1.23 nodes: on by default, as the trap it shows is on most hardened clusters.
    hardened_demo: bool = True
    # The Kubernetes release (releases.py knows which) and the cri-dockerd built into the node image.
    version: str = KUBERNETES_VERSION
    cri_dockerd_version: str = DEFAULT_CRI_DOCKERD_VERSION

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= MAX_WORKERS:
            raise Refusal(
                f"--workers {self.workers} is out of range",
                hint=f"choose between 1 and {MAX_WORKERS} workers",
                code=OPTION_INVALID,
            )
        wanted = release(self.version)
        object.__setattr__(self, "version", wanted.version)  # "1.27.16" and "v1.27.16" are one spec
        if not wanted.uses_dockershim and self.cri_dockerd is not CriDockerdMode.RUNNING:
            raise Refusal(
                f"--cri-dockerd {self.cri_dockerd.value} with Kubernetes {wanted.version}",
                hint="from 1.24 the kubelet has no dockershim and runs on cri-dockerd: leave --cri-dockerd running",
                code=OPTION_INVALID,
            )

    @property
    def release(self) -> Release:
        return release(self.version)

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "cri_dockerd": self.cri_dockerd.value,
            "hardened_demo": self.hardened_demo,
            "version": self.version,
            "cri_dockerd_version": self.cri_dockerd_version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabSpec:
        # A lab.json written before the lab knew other releases is a 1.23.17 lab with cri-dockerd v0.3.17.
        return cls(
            workers=int(data["workers"]),
            cri_dockerd=CriDockerdMode(data["cri_dockerd"]),
            hardened_demo=bool(data.get("hardened_demo", True)),
            version=str(data.get("version", KUBERNETES_VERSION)),
            cri_dockerd_version=str(data.get("cri_dockerd_version", DEFAULT_CRI_DOCKERD_VERSION)),
        )


def worker_name(index: int) -> str:
    """kind's naming: the first worker is ``-worker``, then ``-worker2``, ``-worker3``..."""
    return f"{LAB_PREFIX}-worker" if index == 1 else f"{LAB_PREFIX}-worker{index}"


def plan_nodes(spec: LabSpec, *, subnet: str = NETWORK_SUBNET) -> list[LabNode]:
    """Names and fixed addresses of every node, control plane first."""
    net = ipaddress.ip_network(subnet)
    hosts = list(net.hosts())
    if len(hosts) < NODE_IP_OFFSET + spec.workers + 1:
        raise Refusal(
            f"subnet {subnet} is too small for {spec.workers} workers", hint="use a larger subnet", code=OPTION_INVALID
        )
    first = net.network_address + NODE_IP_OFFSET
    nodes = [LabNode(name=f"{LAB_PREFIX}-control-plane", role="control-plane", ip=str(first))]
    nodes += [
        LabNode(name=worker_name(i), role="worker", ip=str(first + i)) for i in range(1, spec.workers + 1)
    ]
    return nodes


def volume_names(node: str) -> dict[str, str]:
    """Docker volumes of a node, by mount point: Docker's and the kubelet's data live on a real
    filesystem, not on the container's overlay (docs/lab.md#the-node-container: overlay-on-overlay for
    Docker-in-Docker, cAdvisor's "failed to get device for dir /var/lib/kubelet", kubernetes-sigs/kind#2524)."""
    return {"/var/lib/docker": f"{node}-docker", "/var/lib/kubelet": f"{node}-kubelet"}


@dataclass(frozen=True)
class LabInfo:
    """A lab that is up: where its files are and how to reach its nodes.

    ``exec(node, argv)`` runs argv inside the node container through ``docker exec`` (no shell in
    between) and returns the completed process, stdout and stderr as text, without raising on a
    non-zero exit status.
    """

    directory: Path
    kubeconfig: Path
    ssh_config: Path
    known_hosts: Path
    ssh_key: Path
    nodes: list[LabNode]
    spec: LabSpec = field(default_factory=LabSpec)
    node_image: str = ""

    @property
    def control_plane(self) -> LabNode:
        return next(n for n in self.nodes if n.role == "control-plane")

    @property
    def workers(self) -> list[LabNode]:
        return [n for n in self.nodes if n.role == "worker"]

    def node(self, name: str) -> LabNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise Refusal(
            f"no lab node named {name!r}",
            hint=f"known nodes: {', '.join(n.name for n in self.nodes)}",
            code=NODE_NOT_FOUND,
        )

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        input: str | bytes | None = None,
        timeout: float | None = 300,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        self.node(node)  # refuse unknown names before touching Docker
        data = input.decode() if isinstance(input, bytes) else input
        cmd = ["docker", "exec", *(["-i"] if data is not None else []), node, *argv]
        return subprocess.run(cmd, input=data, capture_output=True, text=True, timeout=timeout, check=check)

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "kubeconfig": str(self.kubeconfig),
            "ssh_config": str(self.ssh_config),
            "known_hosts": str(self.known_hosts),
            "ssh_key": str(self.ssh_key),
            "nodes": [asdict(n) for n in self.nodes],
            "spec": self.spec.to_json(),
            "node_image": self.node_image,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabInfo:
        return cls(
            directory=Path(data["directory"]),
            kubeconfig=Path(data["kubeconfig"]),
            ssh_config=Path(data["ssh_config"]),
            known_hosts=Path(data["known_hosts"]),
            ssh_key=Path(data["ssh_key"]),
            nodes=[LabNode(name=n["name"], role=n["role"], ip=n["ip"]) for n in data["nodes"]],
            spec=LabSpec.from_json(data["spec"]),
            node_image=str(data.get("node_image", "")),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"


def lab_files(directory: Path) -> dict[str, Path]:
    """Where `lab up` writes its files under the lab directory."""
    return {
        "kubeconfig": directory / "kubeconfig",
        "ssh_config": directory / "ssh_config",
        "known_hosts": directory / "known_hosts",
        "ssh_key": directory / "id_ed25519",
        "state": directory / STATE_FILE,
    }
