"""Pods a kubelet before 1.24 refuses once it runs on cri-dockerd, and the guard that keeps migrate from it.

Why (kubernetes/kubernetes ``pkg/kubelet/lifecycle/handlers.go@v1.23.17``; docs/hardened-pods.md): two soft
admit handlers, registered for every kubelet in ``pkg/kubelet/kubelet.go``, ask a ``docker`` runtime for its
API version and compare it with a minimum:

- ``noNewPrivsAdmitHandler`` (reason ``NoNewPrivs``, minimum 1.23.0) when ``noNewPrivsRequired``: some
  container of ``pod.Spec.Containers`` has ``securityContext.allowPrivilegeEscalation`` set to false;
- ``procMountAdmitHandler`` (reason ``ProcMount``, minimum 1.38.0) unless ``procMountIsDefault``: some
  container of ``pod.Spec.Containers`` has ``securityContext.procMount`` set to anything but ``Default``.

Both walk ``Spec.Containers`` only: init and ephemeral containers never trigger them, so they are not
counted here either. cri-dockerd reports runtime name ``docker`` and answers the version with the CRI API
version ``v1``, which does not parse, so both handlers refuse: the pod stays Pending, reason
``NoNewPrivs`` / ``ProcMount``, "Cannot enforce ...: illegal version string". dockershim answered Docker's
API version, so the same pods ran before the migration; kubelet 1.24 has neither handler. ``procMount``
bites the same way, but the API server resets it to ``Default`` unless its alpha ``ProcMountType`` gate is on,
so in practice only ``allowPrivilegeEscalation: false`` (required by the restricted Pod Security Standard)
is met. Pods that are already running are not checked again (the handlers admit any pod not Pending), so
the damage shows when pods are created: after a drain, a rollout, a scale-up or a node loss.

Pure: pod and workload objects come in as the API's JSON (dicts), findings and decisions go out.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shimshift.core.errors import Refusal
from shimshift.core.findings import Finding, Severity, Subject

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

ACCEPT_FLAG = "--accept-refused-hardened-pods"
FIRST_MINOR_WITHOUT_CHECK = 24  # kubelet 1.24 removed both handlers together with dockershim


class AdmitReason(enum.StrEnum):
    """The kubelet's own reason strings for the refusal."""

    NO_NEW_PRIVS = "NoNewPrivs"
    PROC_MOUNT = "ProcMount"


@dataclass(frozen=True)
class ContainerHit:
    container: str
    reason: AdmitReason
    setting: str  # as written in the spec, e.g. "allowPrivilegeEscalation: false"


def refused_containers(pod_spec: Mapping[str, Any]) -> tuple[ContainerHit, ...]:
    """The containers that make a kubelet < 1.24 on cri-dockerd refuse a pod with this spec (empty: admitted).

    Exactly ``noNewPrivsRequired`` and ``procMountIsDefault``: ``spec.containers`` only; an explicit
    ``allowPrivilegeEscalation: false`` (unset or true does not count); a set ``procMount`` other than
    ``Default``.
    """
    hits: list[ContainerHit] = []
    for container in pod_spec.get("containers") or []:
        context = container.get("securityContext") or {}
        name = str(container.get("name", ""))
        if context.get("allowPrivilegeEscalation") is False:
            hits.append(ContainerHit(name, AdmitReason.NO_NEW_PRIVS, "allowPrivilegeEscalation: false"))
        proc_mount = context.get("procMount")
        if proc_mount is not None and proc_mount != "Default":
            hits.append(ContainerHit(name, AdmitReason.PROC_MOUNT, f"procMount: {proc_mount}"))
    return tuple(hits)


# Where each kind keeps the pod spec it creates pods from.
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# A ReplicaSet a Deployment controls and a Job a CronJob controls are reported as their owner: the owner's
# template is what makes the next pods, and an old ReplicaSet revision must not report a fixed Deployment.
OWNED_BY = {"ReplicaSet": "Deployment", "Job": "CronJob"}
KIND_ORDER = ("CronJob", "Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod")
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})

Key = tuple[str, str, str]  # (kind, namespace, name)


def template_spec(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    node: Any = obj
    for part in TEMPLATE_PATHS[kind]:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def controller_ref(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the controlling owner reference, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind", "")), str(ref.get("name", ""))
    return None


@dataclass
class HardenedWorkload:
    """A workload (or a bare pod) whose pods a kubelet < 1.24 on cri-dockerd refuses.

    ``template``: its own pod template asks for it (every new pod will be refused); otherwise only some of
    its existing pods do (e.g. mutated by an admission webhook, or a rollout in progress). ``pods``: its
    pods that are not finished and would be refused if created again.
    """

    kind: str
    namespace: str
    name: str
    containers: dict[tuple[str, AdmitReason], str] = field(default_factory=dict)
    template: bool = False
    pods: int = 0
    example_pod: str | None = None

    @property
    def key(self) -> Key:
        return self.kind, self.namespace, self.name

    @property
    def reasons(self) -> list[AdmitReason]:
        return sorted({reason for _, reason in self.containers})

    @property
    def subject(self) -> Subject:
        if self.kind == "Pod":
            return Subject.of_pod(self.namespace, self.name)
        return Subject.of_workload(self.kind, self.namespace, self.name)

    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def settings(self) -> str:
        """``web (allowPrivilegeEscalation: false), sidecar (procMount: Unmasked)``."""
        return ", ".join(f"{name} ({setting})" for (name, _), setting in sorted(self.containers.items()))

    def take(self, hits: Iterable[ContainerHit]) -> None:
        for hit in hits:
            self.containers.setdefault((hit.container, hit.reason), hit.setting)

    def merge(self, other: HardenedWorkload) -> None:
        self.containers.update({k: v for k, v in other.containers.items() if k not in self.containers})
        self.pods += other.pods
        self.example_pod = self.example_pod or other.example_pod

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "reasons": [str(reason) for reason in self.reasons],
            "containers": [
                {"name": name, "reason": str(reason), "setting": setting}
                for (name, reason), setting in sorted(self.containers.items())
            ],
            "template": self.template,
            "pods": self.pods,
            "examplePod": self.example_pod,
        }


class HardenedScan:
    """Collects hardened workloads from pages of pods and then of workloads, holding only what it found.

    Feed every pod first (:meth:`add_pod`), then the workloads (:meth:`add_workload`, any order): a
    ReplicaSet or Job is only remembered when one of the pods it owns was hardened, which needs the pods
    seen already. Memory is one small record per hardened workload, never the lists.
    """

    def __init__(self) -> None:
        self._found: dict[Key, HardenedWorkload] = {}
        self._owner: dict[Key, Key] = {}
        self._workloads_started = False
        self.pods_seen = 0
        self.workloads_seen = 0

    def add_pod(self, pod: Mapping[str, Any]) -> None:
        if self._workloads_started:
            raise RuntimeError("HardenedScan: every pod must come before the workloads")
        self.pods_seen += 1
        if (pod.get("status") or {}).get("phase") in FINISHED_PHASES:
            return  # a finished pod is never admitted again; its controller's template is judged instead
        hits = refused_containers(pod.get("spec") or {})
        if not hits:
            return
        metadata = pod.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        owner = controller_ref(pod)
        # A mirror (static) pod is "controlled" by its Node: it is its own workload.
        key = (owner[0], namespace, owner[1]) if owner is not None and owner[0] != "Node" else ("Pod", namespace, name)
        found = self._found.setdefault(key, HardenedWorkload(*key))
        found.take(hits)
        found.pods += 1
        found.example_pod = found.example_pod or f"{namespace}/{name}"

    def add_workload(self, kind: str, obj: Mapping[str, Any]) -> None:
        self._workloads_started = True
        self.workloads_seen += 1
        metadata = obj.get("metadata") or {}
        key = (kind, str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        owner = controller_ref(obj)
        if owner is not None and OWNED_BY.get(kind) == owner[0]:
            if key in self._found:
                self._owner[key] = (owner[0], key[1], owner[1])
            return
        hits = refused_containers(template_spec(kind, obj))
        if hits:
            found = self._found.setdefault(key, HardenedWorkload(*key))
            found.take(hits)
            found.template = True

    def result(self) -> list[HardenedWorkload]:
        """Each hardened pod under its top controller (Pod → ReplicaSet → Deployment, Job → CronJob)."""
        merged: dict[Key, HardenedWorkload] = {}
        for key, found in self._found.items():
            top = key
            while top in self._owner:
                top = self._owner[top]
            if top not in merged:
                merged[top] = self._found.get(top) or HardenedWorkload(*top)
            if top != key:
                merged[top].merge(found)
        return sorted(merged.values(), key=_order)


def _order(workload: HardenedWorkload) -> tuple[str, int, str]:
    rank = KIND_ORDER.index(workload.kind) if workload.kind in KIND_ORDER else len(KIND_ORDER)
    return workload.namespace, rank, workload.name


_MINOR = re.compile(r"^v?1\.(\d+)(?:\.|$)")


def kubelet_checks_runtime_version(kubelet_version: str) -> bool:
    """True for kubelets that have the two admit handlers (before 1.24); an unreadable version counts."""
    match = _MINOR.match(kubelet_version.strip())
    return match is None or int(match.group(1)) < FIRST_MINOR_WITHOUT_CHECK


def workload_findings(workloads: Sequence[HardenedWorkload], *, affected_nodes: int) -> list[Finding]:
    """One finding per hardened workload: blocking when some node (kubelet < 1.24) would refuse it."""
    severity = Severity.ERROR if affected_nodes else Severity.WARNING
    where = (
        f"{affected_nodes} node(s) with a kubelet before 1.24"
        if affected_nodes
        else "a kubelet before 1.24 (none in this audit)"
    )
    findings = []
    for workload in workloads:
        what = "its pod template asks for" if workload.template else f"{workload.pods} of its pods ask for"
        reasons = "/".join(workload.reasons)
        findings.append(
            Finding(
                severity,
                "hardened-pods-refused",
                f"{what} {workload.settings()}: on cri-dockerd, {where} refuse(s) such pods ({reasons})",
                workload.subject,
                f"upgrade the kubelet to 1.24+ in the same window as the migration, or accept it ({ACCEPT_FLAG})",
                "allowPrivilegeEscalation" if AdmitReason.NO_NEW_PRIVS in workload.reasons else "procMount",
            )
        )
    return findings


@dataclass(frozen=True)
class GuardDecision:
    """The migrate guard: which selected nodes the hardened workloads make it refuse, and why."""

    refused_nodes: tuple[tuple[str, str], ...]  # (node, kubelet version)
    workloads: tuple[HardenedWorkload, ...]
    accepted: bool
    findings: tuple[Finding, ...]

    @property
    def blocked(self) -> bool:
        return bool(self.refused_nodes) and not self.accepted


def decide_guard(
    *, nodes: Sequence[tuple[str, str]], workloads: Sequence[HardenedWorkload], accepted: bool
) -> GuardDecision:
    """``nodes``: the run's (node, kubelet version). Refuses every node whose kubelet is before 1.24 while a
    hardened workload exists, unless the operator ``accepted`` it (then the findings are warnings)."""
    at_risk = tuple((name, version) for name, version in nodes if kubelet_checks_runtime_version(version))
    if not at_risk or not workloads:
        return GuardDecision((), tuple(workloads), accepted, ())
    names = ", ".join(workload.label() for workload in workloads[:3])
    more = f" and {len(workloads) - 3} more" if len(workloads) > 3 else ""
    severity = Severity.WARNING if accepted else Severity.ERROR
    code = "hardened-pods-accepted" if accepted else "hardened-pods-refused"
    findings = tuple(
        Finding(
            severity,
            code,
            f"kubelet {version} on cri-dockerd would refuse the pods of {len(workloads)} workload(s) "
            f"(allowPrivilegeEscalation: false / procMount): {names}{more}"
            + ("; accepted by the operator" if accepted else ""),
            Subject.of_node(name),
            "" if accepted else f"upgrade this kubelet to 1.24+ in the same window, or pass {ACCEPT_FLAG}",
        )
        for name, version in at_risk
    )
    return GuardDecision(at_risk, tuple(workloads), accepted, findings)


@dataclass(eq=False)
class HardenedPodsRefusal(Refusal):
    """``migrate`` refused by the guard; carries the decision so the CLI can show it on one screen."""

    decision: GuardDecision | None = None

    @classmethod
    def of(cls, decision: GuardDecision) -> HardenedPodsRefusal:
        return cls(
            f"{len(decision.refused_nodes)} node(s) with a kubelet before 1.24 would refuse the pods of "
            f"{len(decision.workloads)} hardened workload(s) once on cri-dockerd",
            f"upgrade the kubelets to 1.24+ in the same window, or pass {ACCEPT_FLAG}",
            code="hardened-pods-refused",
            decision=decision,
        )
