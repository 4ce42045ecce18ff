"""What a node's procedure asks of the world, as data: the vocabulary between the pure procedures and
the one executor that performs them (orchestrator/executor.py).

A procedure (core/procedures/) is a generator: it yields one action, the executor performs it and
sends the result back, the procedure decides the next action from the plan, the journal and that
result. When performing an action raises, the executor throws the exception into the procedure at
the ``yield``, so failure handling is the procedure's, like everything else it decides. The style is
h11's and httpx's core: the protocol never touches a socket, a file or a clock, so its forward and
rollback sequences are unit-tested step by step by answering actions from a table.

Each action is bound to the one node the executor serves; none carries the node's name. Each declares
what performing it gives back, as ``returns`` (a type, or a type expression such as ``bytes | None``), and
the result types are declared beside the actions that return them: the executor's ports
(orchestrator/ports.py) return exactly these, and the tests' worlds are held to them.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from shimshift.core.findings import Finding
from shimshift.core.steps import PodRef, SandboxRef
from shimshift.core.versions import KubernetesVersion

T = TypeVar("T")


# -- the node's shell and files (NodePort) ------------------------------------------------------------


@runtime_checkable
class CommandOutput(Protocol):
    """What a command run on a node gave back: Run's result (adapters/node_access.py's CommandResult is one)."""

    @property
    def returncode(self) -> int: ...

    @property
    def stdout(self) -> bytes: ...

    @property
    def stderr(self) -> bytes: ...


@dataclass(frozen=True)
class Run:
    """Run ``argv`` on the node (never through a shell); the result has returncode, stdout, stderr.
    With ``check`` a non-zero exit raises, so a procedure only inspects failures it expects.

    ``why`` and ``expect`` are for the procedure, never the executor: a planned command (the upgrade's,
    core/upgrade/plan.py) says why it runs, for the plan's reader and the failure message, and what must
    appear in its output for the procedure to go on."""

    returns: ClassVar[object] = CommandOutput

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

    returns: ClassVar[object] = bytes | None

    path: str
    max_bytes: int | None = None


@dataclass(frozen=True)
class WriteFile:
    """Replace or create the file atomically (temporary file, fsync, rename; backup beside it)."""

    returns: ClassVar[object] = str | None

    path: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class RemoveFile:
    returns: ClassVar[object] = str | None
    path: str


@dataclass(frozen=True)
class Upload:
    """Copy a file of this machine to the node atomically; the executor checks its sha256 first. No backup:
    the upgrade keeps the binary it replaces itself (core/upgrade/plan.py BinarySwap)."""

    returns: ClassVar[object] = str

    source: str
    target: str
    sha256: str
    mode: int = 0o755


# -- the container runtime on the node (CriPort, through the node's connection) --------------------


@dataclass(frozen=True)
class CriReport:
    """CriCheck's result: cri-dockerd's Version and Status, and what is wrong with them."""

    runtime_name: str
    runtime_version: str
    runtime_api_version: str
    runtime_ready: bool
    network_ready: bool
    problems: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class CriCheck:
    """cri-dockerd's Version and Status on its socket: a CriReport."""

    returns: ClassVar[object] = CriReport


@dataclass(frozen=True)
class CriSandboxes:
    """The ready pod sandboxes cri-dockerd lists: a list of SandboxRef."""

    returns: ClassVar[object] = list[SandboxRef]


# -- the Kubernetes API (ClusterPort) ---------------------------------------------------------------


@dataclass(frozen=True)
class GetKubeletVersion:
    """The node's ``status.nodeInfo.kubeletVersion``."""

    returns: ClassVar[object] = str


@dataclass(frozen=True)
class Cordon:
    """Cordon and mark it ours; True when the node is cordoned by us."""

    returns: ClassVar[object] = bool


@dataclass(frozen=True)
class UncordonIfOurs:
    returns: ClassVar[object] = bool


@dataclass(frozen=True)
class DrainOutcome:
    """Drain's result."""

    drained: bool
    evicted: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    problems: tuple[Finding, ...] = ()  # why it did not drain (refused and blocked pods, errors)
    message: str = ""


@dataclass(frozen=True)
class Drain:
    """kubectl drain's semantics; a DrainOutcome. The executor reports its progress under the step."""

    returns: ClassVar[object] = DrainOutcome


@dataclass(frozen=True)
class GetCriSocket:
    returns: ClassVar[object] = str | None


@dataclass(frozen=True)
class SetCriSocket:
    """Set the kubeadm cri-socket annotation (None removes it); the previous value comes back."""

    returns: ClassVar[object] = str | None

    value: str | None


@dataclass(frozen=True)
class Snapshot:
    """Remember the node's conditions and DaemonSet pods before a kubelet restart."""

    returns: ClassVar[object] = None


@dataclass(frozen=True)
class HealthOutcome:
    """WaitHealthy's result."""

    healthy: bool
    problems: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class WaitHealthy:
    returns: ClassVar[object] = HealthOutcome
    since: datetime
    timeout: float


@dataclass(frozen=True)
class WaitControlPlane:
    """Wait until the node's control-plane static pods are Ready and stay so; the problems left (empty: settled)."""

    returns: ClassVar[object] = tuple[str, ...]

    timeout: float


@dataclass(frozen=True)
class RunningPods:
    """The node's running pods as PodRef."""

    returns: ClassVar[object] = list[PodRef]


@dataclass(frozen=True)
class GetKubeletConfig:
    """The live KubeletConfiguration (/configz)."""

    returns: ClassVar[object] = Mapping[str, object]


@dataclass(frozen=True)
class Event:
    returns: ClassVar[object] = None
    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class ApiserverVersions:
    """The release each control-plane node's kube-apiserver runs: node name → KubernetesVersion."""

    returns: ClassVar[object] = Mapping[str, KubernetesVersion]


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
class PodCidrs:
    """The node's ``spec.podCIDRs`` (or ``spec.podCIDR``): a tuple of str, empty when the cluster assigns none."""

    returns: ClassVar[object] = tuple[str, ...]


@dataclass(frozen=True)
class CreatePod:
    """Create a pod from ``manifest`` in ``namespace``."""

    returns: ClassVar[object] = None

    namespace: str
    manifest: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class WaitPod:
    """The pod as the API server has it (None: there is none) as soon as ``until`` holds for it, or as it
    last was after ``timeout`` seconds. ``until`` is a pure rule of core; ``waiting_for`` tells the operator
    what the wait is for when it lasts."""

    returns: ClassVar[object] = Mapping[str, Any] | None

    namespace: str
    name: str
    until: Callable[[Mapping[str, Any] | None], bool] = field(repr=False)
    timeout: float
    waiting_for: str = ""


@dataclass(frozen=True)
class DeletePod:
    """Delete the pod at once and wait up to ``timeout`` seconds until it is gone; True when there was one."""

    returns: ClassVar[object] = bool

    namespace: str
    name: str
    timeout: float


@dataclass(frozen=True)
class ExecOutcome:
    """What exec into a container over the API (pods/exec: API server -> kubelet -> the runtime's streaming
    server) gave back.

    ``failure`` is why no command ran: the upgrade to a stream was refused (``status`` is the HTTP status),
    the stream broke before the runtime answered, or no answer came in time. Empty when the runtime answered:
    then ``exit_code`` is the command's exit code (None when the runtime refused to start it, ``message``
    saying why)."""

    exit_code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    message: str = ""
    failure: str = ""
    status: int | None = None


@dataclass(frozen=True)
class ExecInPod:
    """Run ``command`` in a running container of a pod, no stdin, no TTY, over the API's pods/exec: an
    ExecOutcome. Never raises for a refused or broken stream: that is the outcome's ``failure``."""

    returns: ClassVar[object] = ExecOutcome

    namespace: str
    name: str
    container: str
    command: tuple[str, ...]
    timeout: float


# -- the journal and the clock -------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """Write one journal record for the node: ``phase`` is started, finished or failed."""

    returns: ClassVar[object] = None

    step: str
    phase: str
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class FinishedSteps:
    """The node's finished steps in this run, in order."""

    returns: ClassVar[object] = list[str]


@dataclass(frozen=True)
class RecordedSteps:
    """Every step with any record for the node, in order."""

    returns: ClassVar[object] = list[str]


@dataclass(frozen=True)
class StepDetail:
    """The detail the step finished with (None when it did not finish)."""

    returns: ClassVar[object] = Mapping[str, Any] | None

    step: str


@dataclass(frozen=True)
class Now:
    """The current time (UTC)."""

    returns: ClassVar[object] = datetime


@dataclass(frozen=True)
class Progress:
    """A line for the operator under the running step; no journal record."""

    returns: ClassVar[object] = None

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
    | PodCidrs
    | CreatePod
    | WaitPod
    | DeletePod
    | ExecInPod
    | ReadClusterKubeletConfig
    | WriteClusterKubeletConfig
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
    "CreatePod",
    "CriCheck",
    "CriSandboxes",
    "DeletePod",
    "Drain",
    "Event",
    "ExecInPod",
    "ExecOutcome",
    "FinishedSteps",
    "GetCriSocket",
    "GetKubeletConfig",
    "GetKubeletVersion",
    "Now",
    "PodCidrs",
    "Procedure",
    "Progress",
    "ReadClusterKubeletConfig",
    "ReadFile",
    "Record",
    "RecordedSteps",
    "RemoveFile",
    "Run",
    "RunningPods",
    "SetCriSocket",
    "Snapshot",
    "StepDetail",
    "UncordonIfOurs",
    "Upload",
    "WaitControlPlane",
    "WaitHealthy",
    "WaitPod",
    "WriteClusterKubeletConfig",
    "WriteFile",
    "run",
]
