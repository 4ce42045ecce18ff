"""What a node's procedure asks of the world, as data: the vocabulary between the pure procedures and
the one executor that performs them (orchestrator/executor.py).

A procedure (core/procedures/) is a generator: it yields one action, the executor performs it and
sends the result back, the procedure decides the next action from the plan, the journal and that
result. When performing an action raises, the executor throws the exception into the procedure at
the ``yield``, so failure handling is the procedure's, like everything else it decides. The style is
h11's and httpx's core: the protocol never touches a socket, a file or a clock, so its forward and
rollback sequences are unit-tested step by step by answering actions from a table.

Each action is bound to the one node the executor serves; none carries the node's name.
"""

from __future__ import annotations

import shlex
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from shimshift.core.canary import CanarySpec

T = TypeVar("T")


# -- the node's shell and files (NodePort) ------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Run ``argv`` on the node (never through a shell); the result has returncode, stdout, stderr.
    With ``check`` a non-zero exit raises, so a procedure only inspects failures it expects.

    ``why`` and ``expect`` are for the procedure, never the executor: a planned command (the upgrade's,
    core/upgrade/plan.py) says why it runs, for the plan's reader and the failure message, and what must
    appear in its output for the procedure to go on."""

    argv: tuple[str, ...]
    check: bool = True
    timeout: float = 60.0
    why: str = ""
    expect: str | None = None

    def shown(self) -> str:
        """For display only; never executed."""
        return shlex.join(self.argv)


@dataclass(frozen=True)
class ReadFile:
    """The file's bytes, or None when absent (with ``max_bytes``: at most ``max_bytes + 1`` bytes)."""

    path: str
    max_bytes: int | None = None


@dataclass(frozen=True)
class WriteFile:
    """Replace or create the file atomically (temporary file, fsync, rename; backup beside it)."""

    path: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class RemoveFile:
    path: str


@dataclass(frozen=True)
class Upload:
    """Copy a file of this machine to the node atomically; the executor checks its sha256 first. No backup:
    the upgrade keeps the binary it replaces itself (core/upgrade/plan.py BinarySwap)."""

    source: str
    target: str
    sha256: str
    mode: int = 0o755


# -- the container runtime on the node (CriPort, through the node's connection) --------------------


@dataclass(frozen=True)
class CriCheck:
    """cri-dockerd's Version and Status on its socket: a CriReport."""


@dataclass(frozen=True)
class CriSandboxes:
    """The ready pod sandboxes cri-dockerd lists: a list of SandboxRef."""


# -- the Kubernetes API (ClusterPort) ---------------------------------------------------------------


@dataclass(frozen=True)
class GetKubeletVersion:
    """The node's ``status.nodeInfo.kubeletVersion``."""


@dataclass(frozen=True)
class Cordon:
    """Cordon and mark it ours; True when the node is cordoned by us."""


@dataclass(frozen=True)
class UncordonIfOurs:
    pass


@dataclass(frozen=True)
class Drain:
    """kubectl drain's semantics; a DrainOutcome. The executor reports its progress under the step."""


@dataclass(frozen=True)
class GetCriSocket:
    pass


@dataclass(frozen=True)
class SetCriSocket:
    """Set the kubeadm cri-socket annotation (None removes it); the previous value comes back."""

    value: str | None


@dataclass(frozen=True)
class Snapshot:
    """Remember the node's conditions and DaemonSet pods before a kubelet restart."""


@dataclass(frozen=True)
class WaitHealthy:
    since: datetime
    timeout: float


@dataclass(frozen=True)
class WaitControlPlane:
    """Wait until the node's control-plane static pods are Ready and stay so; the problems left (empty: settled)."""

    timeout: float


@dataclass(frozen=True)
class RunningPods:
    """The node's running pods as PodRef."""


@dataclass(frozen=True)
class GetKubeletConfig:
    """The live KubeletConfiguration (/configz)."""


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class ApiserverVersions:
    """The release each control-plane node's kube-apiserver runs: node name → KubeletVersion."""


@dataclass(frozen=True)
class ReadClusterKubeletConfig:
    """The ``kubelet`` document of the kube-system/kubelet-config ConfigMap kubeadm writes every node's
    /var/lib/kubelet/config.yaml from (str; None when the ConfigMap or its key is absent)."""

    # The result type, as the action vocabulary declares each action's (`returns`).
    returns: ClassVar[object] = str | None


@dataclass(frozen=True)
class WriteClusterKubeletConfig:
    """Replace that document (the ConfigMap's other keys stay)."""

    returns: ClassVar[object] = None

    text: str = field(repr=False)


@dataclass(frozen=True)
class RunCanary:
    """Start the canary pod, wait for its verdict, delete it (orchestrator/canary.py): a CanaryResult."""

    spec: CanarySpec
    timeout: float


@dataclass(frozen=True)
class RemoveCanary:
    namespace: str


# -- the journal and the clock -------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """Write one journal record for the node: ``phase`` is started, finished or failed."""

    step: str
    phase: str
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class FinishedSteps:
    """The node's finished steps in this run, in order."""


@dataclass(frozen=True)
class RecordedSteps:
    """Every step with any record for the node, in order."""


@dataclass(frozen=True)
class StepDetail:
    """The detail the step finished with (None when it did not finish)."""

    step: str


@dataclass(frozen=True)
class Now:
    """The current time (UTC)."""


@dataclass(frozen=True)
class Progress:
    """A line for the operator under the running step; no journal record."""

    step: str
    message: str


Action = (
    Run
    | ReadFile
    | WriteFile
    | RemoveFile
    | Upload
    | CriCheck
    | CriSandboxes
    | GetKubeletVersion
    | Cordon
    | UncordonIfOurs
    | Drain
    | GetCriSocket
    | SetCriSocket
    | Snapshot
    | WaitHealthy
    | WaitControlPlane
    | RunningPods
    | GetKubeletConfig
    | Event
    | ApiserverVersions
    | ReadClusterKubeletConfig
    | WriteClusterKubeletConfig
    | RunCanary
    | RemoveCanary
    | Record
    | FinishedSteps
    | RecordedSteps
    | StepDetail
    | Now
    | Progress
)

#: A procedure, or one step of it: yields actions, receives their results, returns ``T``.
Procedure = Generator[Action, Any, T]


def run(*argv: str, check: bool = True, timeout: float = 60.0) -> Run:
    """``Run`` from words: ``yield run("systemctl", "restart", "kubelet")``."""
    return Run(tuple(argv), check=check, timeout=timeout)


__all__ = [
    "Action",
    "ApiserverVersions",
    "Cordon",
    "CriCheck",
    "CriSandboxes",
    "Drain",
    "Event",
    "FinishedSteps",
    "GetCriSocket",
    "GetKubeletConfig",
    "GetKubeletVersion",
    "Now",
    "Procedure",
    "Progress",
    "ReadClusterKubeletConfig",
    "ReadFile",
    "Record",
    "RecordedSteps",
    "RemoveCanary",
    "RemoveFile",
    "Run",
    "RunCanary",
    "RunningPods",
    "SetCriSocket",
    "Snapshot",
    "StepDetail",
    "UncordonIfOurs",
    "Upload",
    "WaitControlPlane",
    "WaitHealthy",
    "WriteClusterKubeletConfig",
    "WriteFile",
    "run",
]
