"""A node, its API object and its journal as plain data, answering a procedure's actions.

The procedures are pure generators; these tests play the world they talk to, so a sequence of steps
can be read action by action. It is not evidence that the tool works on a node (the lab tests are):
it is what lets the *decisions* be tested one by one, without a lab.

The model is small but not a script: the kubelet's command line is re-read from kubeadm-flags.env at
each `systemctl restart kubelet`, cri-dockerd's from its drop-in at each restart, so a procedure that
forgets to write a file or to restart a service is caught by its own verify.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import yaml

from shimshift.core import actions as act
from shimshift.core.actions import CriReport, DrainOutcome, HealthOutcome
from shimshift.core.findings import Finding, Severity
from shimshift.core.node_files import DEFAULT_KUBELET, KUBEADM_FLAGS_ENV, KUBELET_CONFIG
from shimshift.core.steps import PodRef, SandboxRef
from shimshift.core.versions import parse_kubelet_version
from tests.unit.core.procedures.results import check_result

A = TypeVar("A")

KUBELET_PID = 101
CRI_DOCKERD_PID = 202
CRI_DOCKERD_BINARY = "/usr/bin/cri-dockerd"
DROPIN_DIR = "/etc/systemd/system/cri-docker.service.d/"


@dataclass
class Result:
    returncode: int = 0
    stdout: bytes = b""
    stderr: bytes = b""


class CommandFailed(Exception):
    pass


@dataclass
class NodeWorld:
    files: dict[str, bytes | None]
    kubelet_version: str = "v1.23.17"
    annotation: str | None = "/var/run/dockershim.sock"
    healthy: bool = True
    canary_runs: bool = True
    # What exec into the running canary gives back: the pause's answer to -v.
    exec_outcome: act.ExecOutcome = field(default_factory=lambda: act.ExecOutcome(0, b"pause.c v3.6\n"))
    canary_pods: dict[str, Any] = field(default_factory=dict)  # name -> manifest of the pods that exist
    cni_configs: str = "10-bridge.conf\n"
    # The API server's running pods of the node, one list per read (the last one stays), and the sandboxes
    # cri-dockerd lists.
    running_pods: list[list[PodRef]] = field(default_factory=list)
    sandboxes: list[SandboxRef] = field(default_factory=list)
    # Called with every action before it is answered; returns an exception to raise instead.
    fail: Callable[[act.Action], BaseException | None] = lambda action: None
    journal: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    actions: list[act.Action] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    cordoned: bool = False
    kubelet_argv: list[str] = field(default_factory=list)
    cri_dockerd_argv: list[str] = field(default_factory=lambda: [CRI_DOCKERD_BINARY, "--network-plugin="])
    clock: datetime = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

    def __post_init__(self) -> None:
        self.kubelet_argv = self._kubelet_from_files()

    # -- the part the tests read ---------------------------------------------------------------

    def steps(self) -> list[tuple[str, str]]:
        return [(step, phase) for step, phase, _ in self.journal]

    def runs(self) -> list[tuple[str, ...]]:
        return [action.argv for action in self.actions if isinstance(action, act.Run)]

    def of_type(self, kind: type[A]) -> list[A]:
        return [action for action in self.actions if isinstance(action, kind)]

    # -- answering -------------------------------------------------------------------------------

    def answer(self, action: act.Action) -> Any:
        """The world's answer, held to the result type the action declares."""
        result = self.respond(action)
        check_result(action, result)
        return result

    def respond(self, action: act.Action) -> Any:
        self.actions.append(action)
        error = self.fail(action)
        if error is not None:
            raise error
        self.clock += timedelta(seconds=1)
        match action:
            case act.Run(argv, check, _):
                result = self._run(argv)
                if check and result.returncode != 0:
                    raise CommandFailed(f"{shlex.join(argv)} exited {result.returncode}")
                return result
            case act.ReadFile(path, _):
                if path == f"/proc/{KUBELET_PID}/cmdline":
                    return "\0".join(self.kubelet_argv).encode() + b"\0"
                if path == f"/proc/{CRI_DOCKERD_PID}/cmdline":
                    return "\0".join(self.cri_dockerd_argv).encode() + b"\0"
                return self.files.get(path)
            case act.WriteFile(path, data):
                self.files[path] = data
                return None
            case act.RemoveFile(path):
                self.files[path] = None
                return None
            case act.CriCheck():
                return CriReport("docker", "20.10.24", "v1", runtime_ready=True, network_ready=True)
            case act.CriSandboxes():
                return self.sandboxes
            case act.RunningPods():
                if len(self.running_pods) > 1:
                    return self.running_pods.pop(0)
                return list(self.running_pods[0]) if self.running_pods else []
            case act.GetKubeletVersion():
                return self.kubelet_version
            case act.Cordon():
                self.cordoned = True
                return True
            case act.UncordonIfOurs():
                was, self.cordoned = self.cordoned, False
                return was
            case act.Drain():
                return DrainOutcome(True, ("default/web-1",))
            case act.GetCriSocket():
                return self.annotation
            case act.SetCriSocket(value):
                previous, self.annotation = self.annotation, value
                return previous
            case act.WaitControlPlane():
                return ()
            case act.Snapshot() | act.Progress():
                return None
            case act.WaitHealthy():
                unhealthy = (Finding(Severity.ERROR, "node-not-ready", "Ready is False"),)
                return HealthOutcome(self.healthy, () if self.healthy else unhealthy)
            case act.GetKubeletConfig():
                return {}
            case act.Event(reason, _, _):
                self.events.append(reason)
                return None
            case act.PodCidrs():
                return ("10.244.1.0/24",)
            case act.CreatePod(_, manifest):
                self.canary_pods[manifest["metadata"]["name"]] = manifest
                return None
            case act.WaitPod(_, name, until, _, _):
                pod = self._canary_pod(name)
                assert until(pod)  # the world answers at once: the verdict is there
                return pod
            case act.DeletePod(_, name, _):
                return self.canary_pods.pop(name, None) is not None
            case act.ExecInPod(_, name, _, _, _):
                assert name in self.canary_pods
                return self.exec_outcome
            case act.Record(step, phase, detail):
                self.journal.append((step, phase, dict(detail) if detail else None))
                return None
            case act.FinishedSteps():
                return [step for step, phase, _ in self.journal if phase == "finished"]
            case act.RecordedSteps():
                return list(dict.fromkeys(step for step, _, _ in self.journal))
            case act.StepDetail(step):
                details = [detail for name, phase, detail in self.journal if name == step and phase == "finished"]
                return details[-1] if details else None
            case act.Now():
                return self.clock
        raise AssertionError(f"the world has no answer for {action!r}")

    def _canary_pod(self, name: str) -> dict[str, Any] | None:
        if name not in self.canary_pods:
            return None
        if not self.canary_runs:
            waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": "no"}}
            return {"status": {"phase": "Pending", "containerStatuses": [{"name": "canary", "state": waiting}]}}
        ready = [{"type": "Ready", "status": "True"}]
        return {"status": {"phase": "Running", "podIP": "10.244.1.9", "conditions": ready}}

    def _run(self, argv: tuple[str, ...]) -> Result:
        match argv:
            case ("systemctl", "show", "--property", "MainPID", "--value", unit):
                return Result(stdout=f"{KUBELET_PID if unit == 'kubelet.service' else CRI_DOCKERD_PID}\n".encode())
            case ("systemctl", "show", "--property", "ExecStart", "--value", "cri-docker.service"):
                return Result(stdout=f"{{ path={CRI_DOCKERD_BINARY} ; argv[]={CRI_DOCKERD_BINARY} ; }}\n".encode())
            case (binary, "--version") if binary == CRI_DOCKERD_BINARY:
                return Result(stdout=b"cri-dockerd 0.3.17 (abc1234)\n")
            case ("docker", "info", *_):
                return Result(stdout=b"systemd\n")
            case ("ls", "-1", _):
                return Result(stdout=self.cni_configs.encode())
            case ("ss", "-Hltnp"):
                owner = f'users:(("cri-dockerd",pid={CRI_DOCKERD_PID},fd=9))'
                return Result(stdout=f"LISTEN 0 4096 127.0.0.1:35001 0.0.0.0:* {owner}\n".encode())
            case ("systemctl", "restart", "kubelet"):
                self.kubelet_argv = self._kubelet_from_files()
            case ("systemctl", "restart" | "try-restart", "cri-docker.service"):
                self.cri_dockerd_argv = self._cri_dockerd_from_files()
        return Result()

    def _kubelet_from_files(self) -> list[str]:
        # As the kubeadm drop-in starts it: $KUBELET_KUBEADM_ARGS, then $KUBELET_EXTRA_ARGS last.
        argv = ["/usr/bin/kubelet"]
        for path in (KUBEADM_FLAGS_ENV, DEFAULT_KUBELET):
            text = (self.files.get(path) or b"").decode()
            _, _, value = text.strip().partition("=")
            argv += shlex.split(shlex.split(value)[0] if value else "")
        return argv

    def _cri_dockerd_from_files(self) -> list[str]:
        for path, data in sorted(self.files.items()):
            if path.startswith(DROPIN_DIR) and data:
                for line in data.decode().splitlines():
                    if line.startswith("ExecStart=/"):
                        return shlex.split(line.removeprefix("ExecStart="))
        return [CRI_DOCKERD_BINARY, "--network-plugin="]


class Killed(BaseException):
    """SIGKILL: not an Exception, so no step's failure handling sees it; the procedure is abandoned."""


def kill_after(step: str) -> Callable[[act.Action], BaseException | None]:
    """A ``fail`` for NodeWorld that kills the run at the first action after ``step`` is journalled finished."""
    armed = False

    def fail(action: act.Action) -> BaseException | None:
        nonlocal armed
        if armed:
            raise Killed
        armed = isinstance(action, act.Record) and action.step == step and action.phase == "finished"
        return None

    return fail


class Answering(Protocol):
    def answer(self, action: act.Action) -> Any: ...


def drive(procedure: Generator[act.Action, Any, Any], world: Answering) -> Any:
    """What orchestrator/executor.py does, with the world's answers: send results, throw failures."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            action = procedure.throw(error) if error is not None else procedure.send(result)
        except StopIteration as done:
            return done.value
        result, error = None, None
        try:
            result = world.answer(action)
        except Exception as failure:
            error = failure


BINARIES = ("kubeadm", "kubelet", "kubectl")


def binary_digest(name: str, release: str) -> str:
    """The sha256 the world gives a binary of a release (the tests' --binaries use the same)."""
    return hashlib.sha256(f"{name} {release}".encode()).hexdigest()


@dataclass
class UpgradeWorld(NodeWorld):
    """The node of NodeWorld with kubeadm, kubelet and kubectl files that report their release, and
    the control plane's kube-apiservers. `kubeadm upgrade apply` moves the API server to kubeadm's
    release and, like kubeadm 1.24, rewrites the kubelet's files; an uploaded binary is the release
    its sha256 names."""

    releases: dict[str, str] = field(default_factory=dict)  # path on the node → release it reports
    digests: dict[str, str] = field(default_factory=dict)  # path on the node → its sha256
    by_digest: dict[str, str] = field(default_factory=dict)  # sha256 → release (the --binaries files)
    apiservers: dict[str, str] = field(default_factory=lambda: {"cp1": "v1.23.17"})
    kubeadm_fails: bool = False
    new_kubelet_starts: bool = True
    crictl: bool = True
    running_kubelet: str = "v1.23.17"
    # The cri-dockerd release cri-docker.service runs (its file's is releases[CRI_DOCKERD_BINARY]).
    running_cri_dockerd: str = "0.3.17"
    # kube-system/kubelet-config's `kubelet` document (None: absent).
    cluster_kubelet_config: str | None = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in BINARIES:
            self.releases.setdefault(f"/usr/bin/{name}", self.kubelet_version)
            self.digests.setdefault(f"/usr/bin/{name}", binary_digest(name, self.kubelet_version))
        self.releases.setdefault(CRI_DOCKERD_BINARY, self.running_cri_dockerd)
        self.digests.setdefault(CRI_DOCKERD_BINARY, binary_digest("cri-dockerd", self.running_cri_dockerd))

    def respond(self, action: act.Action) -> Any:
        if isinstance(action, act.GetKubeletVersion):
            self.actions.append(action)
            return self.running_kubelet
        if isinstance(action, act.ApiserverVersions):
            self.actions.append(action)
            return {node: parse_kubelet_version(version) for node, version in self.apiservers.items()}
        if isinstance(action, act.GetKubeletConfig):
            # /configz of the running kubelet: the endpoint of its command line, else of config.yaml.
            self.actions.append(action)
            flags = dict(arg.split("=", 1) for arg in self.kubelet_argv if arg.startswith("--") and "=" in arg)
            config = yaml.safe_load(self.files.get(KUBELET_CONFIG) or b"") or {}
            endpoint = flags.get("--container-runtime-endpoint") or config.get("containerRuntimeEndpoint")
            return {"containerRuntimeEndpoint": endpoint} if endpoint else {}
        if isinstance(action, act.ReadClusterKubeletConfig):
            self.actions.append(action)
            return self.cluster_kubelet_config
        if isinstance(action, act.WriteClusterKubeletConfig):
            self.actions.append(action)
            self.cluster_kubelet_config = action.text
            return None
        if isinstance(action, act.Upload):
            self.actions.append(action)
            error = self.fail(action)
            if error is not None:
                raise error
            self.releases[action.target] = self.by_digest[action.sha256]
            self.digests[action.target] = action.sha256
            return action.sha256
        return super().respond(action)

    def _run(self, argv: tuple[str, ...]) -> Result:
        match argv:
            case ("crictl", "-r", socket, "info"):
                reachable = self.crictl and socket == "unix:///var/run/cri-dockerd.sock"
                return Result(0 if reachable else 1, stderr=b"" if reachable else b"unknown service runtime.v1")
            case ("crictl", "--version"):
                return Result(0 if self.crictl else 127, b"crictl version v1.34.0\n" if self.crictl else b"")
            case ("cp", _, "--no-clobber", "--", source, backup):
                if backup not in self.releases:
                    self.releases[backup], self.digests[backup] = self.releases[source], self.digests[source]
                return Result()
            case ("cp", _, "--", source, staged):
                self.releases[staged], self.digests[staged] = self.releases[source], self.digests[source]
                return Result()
            case ("mv", "-f", "--", staged, target):
                self.releases[target], self.digests[target] = self.releases.pop(staged), self.digests.pop(staged)
                return Result()
            case ("test", "-e", path):
                return Result(0 if path in self.releases or self.files.get(path) is not None else 1)
            case ("sha256sum", "--", path):
                return Result(stdout=f"{self.digests[path]}  {path}\n".encode())
            case (path, "version", "-o", "short"):
                return Result(stdout=f"{self.releases[path]}\n".encode())
            case (binary, "--version") if binary == CRI_DOCKERD_BINARY:
                return Result(stdout=f"cri-dockerd {self.releases[binary]} (abc1234)\n".encode())
            case ("readlink", "--", _):
                # A file replaced under a running process: /proc/<pid>/exe names it "(deleted)".
                current = self.running_cri_dockerd == self.releases[CRI_DOCKERD_BINARY]
                return Result(stdout=f"{CRI_DOCKERD_BINARY}{'' if current else ' (deleted)'}\n".encode())
            case ("systemctl", "restart", "cri-docker.service"):
                self.running_cri_dockerd = self.releases[CRI_DOCKERD_BINARY]
            case (path, "--version") if path in self.releases:
                return Result(stdout=f"Kubernetes {self.releases[path]}\n".encode())
            case (path, "version", "--client", "-o", "json"):
                return Result(stdout=json.dumps({"clientVersion": {"gitVersion": self.releases[path]}}).encode())
            case (path, "upgrade", "plan", target, *_):
                return Result(stdout=f"You can now apply the upgrade by executing the following command:\n\n"
                                     f"\tkubeadm upgrade apply {target}\n".encode())
            case (path, "upgrade", "apply" | "node", *_):
                if self.kubeadm_fails:
                    return Result(1, stderr=b"[ERROR ImagePull]: failed to pull image")
                if argv[2] == "apply":
                    self.apiservers = dict.fromkeys(self.apiservers, self.releases[path])
                # kubeadm 1.24 rewrites the kubelet's files (here: a marker the rollback must undo).
                self.files[KUBEADM_FLAGS_ENV] = (self.files[KUBEADM_FLAGS_ENV] or b"") + b"# kubeadm 1.24\n"
                return Result()
            case ("systemctl", "restart", "kubelet"):
                release = self.releases["/usr/bin/kubelet"]
                self.healthy = release == self.kubelet_version or self.new_kubelet_starts
                self.running_kubelet = release
        return super()._run(argv)
