"""What the orchestrator needs from the world, as protocols; the adapters package provides them.

Keeping these small lets the step machine be read (and tested) without knowing how the API client,
SSH or the journal work, and keeps the adapters free of orchestration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shimshift.core.actions import CommandOutput, CriReport, DrainOutcome, ExecOutcome, HealthOutcome
from shimshift.core.steps import PodRef, SandboxRef
from shimshift.core.versions import KubernetesVersion


class NodePort(Protocol):
    """One node's shell and files (SSH, or local when shimshift runs on the node)."""

    async def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 60, stdin: bytes | None = None
    ) -> CommandOutput: ...

    async def read_file(self, path: str, *, max_bytes: int | None = None) -> bytes | None:
        """None when absent; with ``max_bytes``, at most ``max_bytes + 1`` bytes (more means too large)."""
        ...

    async def write_file_atomic(self, path: str, data: bytes, *, backup: bool = True) -> str | None:
        """Replace or create ``path`` (and its missing parent directories); returns the backup's path."""
        ...

    async def remove_file(self, path: str, *, backup: bool = True) -> str | None: ...

    def open_unix_socket_forward(self, remote_path: str) -> AbstractAsyncContextManager[str]: ...


class CriPort(Protocol):
    """The CRI RuntimeService behind a local unix socket path."""

    async def check(self, socket_path: str) -> CriReport: ...

    async def ready_sandboxes(self, socket_path: str) -> list[SandboxRef]: ...


class ClusterPort(Protocol):
    """The Kubernetes API, as the migration of one node uses it."""

    async def kubelet_version(self, node: str) -> str: ...

    async def cordon(self, node: str) -> bool:
        """Cordon and record that we did; True when the node is cordoned by us (now or in an earlier run)."""
        ...

    async def uncordon_if_ours(self, node: str) -> bool: ...

    async def drain(self, node: str, *, on_progress: Callable[[str], None] | None = None) -> DrainOutcome: ...

    async def drain_would_block(self, node: str, budgets: frozenset[str]) -> bool:
        """True when one of ``budgets`` (PDBs "namespace/name"), or without the fleet's cache any PDB,
        would refuse an eviction from this node now (server dry run)."""
        ...

    async def get_cri_socket(self, node: str) -> str | None: ...

    async def set_cri_socket(self, node: str, value: str | None) -> str | None: ...

    async def snapshot(self, node: str) -> None:
        """Remember the node's conditions and DaemonSet pods before a kubelet restart, for wait_healthy."""
        ...

    async def wait_healthy(self, node: str, *, since: datetime, timeout: float) -> HealthOutcome: ...

    async def wait_control_plane(self, node: str, *, timeout: float) -> tuple[str, ...]:
        """Wait until the node's control-plane static pods are Ready and settled; the problems left."""
        ...

    async def running_pods(self, node: str) -> list[PodRef]: ...

    async def kubelet_config(self, node: str) -> Mapping[str, object]:
        """The live KubeletConfiguration, through the API server's node proxy (/configz)."""
        ...

    async def event(self, node: str, *, reason: str, message: str, warning: bool = False) -> None: ...

    async def pod_cidrs(self, node: str) -> tuple[str, ...]:
        """The node's ``spec.podCIDRs`` (or ``spec.podCIDR``); empty when the cluster assigns none."""
        ...

    async def apiserver_versions(self) -> Mapping[str, KubernetesVersion]:
        """Each control-plane node's kube-apiserver release, from its static pod's image tag."""
        ...

    async def create_pod(self, namespace: str, manifest: Mapping[str, Any]) -> None: ...

    async def wait_pod(
        self,
        namespace: str,
        name: str,
        *,
        until: Callable[[Mapping[str, Any] | None], bool],
        timeout: float,
    ) -> Mapping[str, Any] | None:
        """The pod as the API server has it (None: there is none), as soon as ``until`` holds for it, or as
        it last was after ``timeout`` seconds."""
        ...

    async def delete_pod(self, namespace: str, name: str, *, timeout: float) -> bool:
        """Delete the pod and wait until it is gone; True when there was one."""
        ...

    async def exec_in_pod(
        self, namespace: str, name: str, container: str, command: Sequence[str], *, timeout: float
    ) -> ExecOutcome:
        """Run ``command`` in the container over pods/exec; a refused or broken stream is the outcome's
        ``failure``, never an exception."""
        ...

    async def cluster_kubelet_config(self) -> str | None:
        """The ``kubelet`` key of kube-system/kubelet-config (None: absent)."""
        ...

    async def set_cluster_kubelet_config(self, text: str) -> None: ...


class JournalPort(Protocol):
    """The current run's journal, bound to one run id."""

    def record(self, *, node: str, step: str, phase: str, detail: Mapping[str, Any] | None = None) -> None: ...

    def finished_steps(self, node: str) -> list[str]: ...

    def recorded_steps(self, node: str) -> list[str]:
        """Every step with any record for the node (started, finished or failed), in order."""
        ...

    def step_detail(self, node: str, step: str) -> Mapping[str, Any] | None: ...


@dataclass
class StepEvent:
    """What the CLI shows: one line per step start, finish or failure."""

    node: str
    step: str
    phase: str
    message: str = ""
    at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
