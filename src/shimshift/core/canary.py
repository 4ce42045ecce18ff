"""The canary of verify: one short-lived hardened pod pinned to the migrated node, as data.

A node can be Ready, list every sandbox and still refuse the pods people run on it. Two ways it does
after the move to cri-dockerd (docs/runtime-facts.md: the NoNewPrivs check of kubelets
before 1.24, and cri-dockerd's network plugin defaults):

- a kubelet before 1.24 refuses pods that set ``allowPrivilegeEscalation: false`` (the Pod Security
  "restricted" profile): its NoNewPrivs admit handler cannot parse cri-dockerd's CRI version ``v1``
  (cri-dockerd#167). The pod stays Pending with reason ``NoNewPrivs``.
- cri-dockerd without its network plugin starts sandboxes on Docker's bridge: the pod runs, on a docker0
  address instead of the node's pod network (cri-dockerd#73, #93).

A third way shows only when someone runs ``kubectl exec``: the stream goes API server -> kubelet ->
cri-dockerd's streaming server, a path no pod start uses. On Kubernetes 1.36 (its ExtendWebSocketsToKubelet
gate on by default) the kubelet posts to cri-dockerd's relative streaming URL as HTTPS and every exec fails
with "server gave HTTP response to HTTPS client" (Mirantis/cri-dockerd#560, #569).

So verify starts a pod the way a hardened workload looks (non-root, read-only root, seccomp
RuntimeDefault, no capabilities, no privilege escalation), from an image already on the node (its pause
image, which every sandbox uses), requires it to run with a pod-network address, then execs ``/pause -v``
in it over the API. Everything here is pure: the manifest, the reading of the pod's status into a verdict,
and the reading of the exec's outcome; core/procedures/canary.py orders the actions that create, watch,
exec into and delete the pod.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shimshift.core.actions import ExecOutcome
from shimshift.core.errors import Refusal
from shimshift.core.versions import cri_dockerd_facts, parse_cri_dockerd_version, parse_kubelet_version

CANARY_PREFIX = "shimshift-canary-"
CANARY_LABEL = "shimshift.io/canary"
RUN_LABEL = "shimshift.io/run"
MANAGED_BY = ("app.kubernetes.io/managed-by", "shimshift")
# Exists in every cluster, and pods there are exempt from the namespace-level Pod Security defaults an
# operator may have put on workload namespaces; the canary's own security context is what is tested.
DEFAULT_NAMESPACE = "kube-system"
DEFAULT_TIMEOUT = 60.0
# `nobody`: a numeric uid, so runAsNonRoot holds without the image declaring a user.
CANARY_UID = 65534
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
# Docker's default bridge (docker0) when the node's own cannot be read.
DOCKER_DEFAULT_BRIDGE = "172.17.0.0/16"
NO_NEW_PRIVS_FIELD = "allowPrivilegeEscalation"
CANARY_CONTAINER = "canary"
# The pause image's own binary answers -v with "pause.c <version>" and exits 0 (kubernetes/kubernetes
# build/pause/linux/pause.c at v1.23.17, the source of pause 3.6): a command every pause image has, that
# changes nothing.
EXEC_COMMAND = ("/pause", "-v")
EXEC_TIMEOUT = 30.0

# Finding codes (docs/findings.md).
CANARY_FAILED = "canary-failed"
CANARY_EXEC_FAILED = "canary-exec-failed"
CANARY_IMAGE_UNKNOWN = "canary-image-unknown"

# Container waiting reasons after which the canary will not start by itself.
_STUCK = {
    "Blocked",  # a soft admit handler refused it (NoNewPrivs, ProcMount)
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
}
_HINTS = {
    "NoNewPrivs": (
        "kubelet before 1.24 on cri-dockerd refuses pods with allowPrivilegeEscalation: false "
        "(Mirantis/cri-dockerd#167): upgrade the kubelet to 1.24+ in the same window, or pass "
        "--accept-refused-hardened-pods to migrate anyway"
    ),
    "ErrImageNeverPull": "the canary image is not on the node; name one that is with --canary-image",
}
_EXEC_HINT = (
    "kubectl exec, attach, port-forward and logs -f into pods of this node fail the same way. On Kubernetes 1.36 "
    "with cri-dockerd the kubelet reaches cri-dockerd's streaming server by HTTPS (ExtendWebSocketsToKubelet, "
    "Mirantis/cri-dockerd#560, #569): set --feature-gates=ExtendWebSocketsToKubelet=false on kube-apiserver "
    "until cri-dockerd has the fix"
)
_EXEC_FORBIDDEN_HINT = (
    "the shimshift user may not exec into the canary: grant pods/exec get and create in the canary's namespace "
    "(deploy/rbac.yaml, Role shimshift-canary)"
)


def canary_name(node: str) -> str:
    """``shimshift-canary-<node>``: one name per node, so any later run finds a leftover and deletes it.
    Pod names are DNS subdomains of at most 253 characters, as node names are; a name that would be
    longer keeps its start and gets a hash of the node name."""
    name = CANARY_PREFIX + node
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(node.encode()).hexdigest()[:16]
    return (name[: 253 - 17].rstrip(".-") + "-" + digest)[:253]


def _label_value(text: str) -> str:
    # Label values: at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric.
    if len(text) <= 63 and all(c.isalnum() or c in "._-" for c in text) and text[:1].isalnum() and text[-1:].isalnum():
        return text
    return hashlib.sha256(text.encode()).hexdigest()[:63]


def omits_no_new_privs(kubelet_version: str, *, accepted: bool) -> bool:
    """A kubelet before 1.24 on cri-dockerd is known to refuse the field (core/hardened_pods.py). When that
    refusal is ``accepted`` — the operator's --accept-refused-hardened-pods, or no workload of the cluster
    sets the field, so nothing that runs today is refused — the canary leaves out only that field and
    still proves the rest; otherwise it keeps it and fails, so the node is rolled back."""
    return accepted and parse_kubelet_version(kubelet_version).minor < 24


@dataclass(frozen=True)
class CanarySpec:
    node: str
    namespace: str
    image: str
    run_id: str
    omit_no_new_privs: bool = False


def canary_manifest(spec: CanarySpec) -> dict[str, Any]:
    """The Pod object to create."""
    container_security: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": CANARY_UID,
        "runAsGroup": CANARY_UID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if spec.omit_no_new_privs:
        del container_security[NO_NEW_PRIVS_FIELD]
    labels = {
        MANAGED_BY[0]: MANAGED_BY[1],
        CANARY_LABEL: _label_value(spec.node),
        RUN_LABEL: _label_value(spec.run_id),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": canary_name(spec.node), "namespace": spec.namespace, "labels": labels},
        "spec": {
            # Bound by name: the scheduler is not asked, the node is cordoned.
            "nodeName": spec.node,
            "tolerations": [{"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 0,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": CANARY_UID,
                "runAsGroup": CANARY_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": CANARY_CONTAINER,
                    "image": spec.image,
                    # Nothing is pulled: the image must already be on the node (the pause image is).
                    "imagePullPolicy": "Never",
                    "securityContext": container_security,
                }
            ],
        },
    }


def canary_image(*, override: str | None, cri_dockerd_args: Mapping[str, str], default: str | None) -> str:
    """The image the canary runs: the operator's, else the running cri-dockerd's pause image, else that
    cri-dockerd version's default pause image. Raises Refusal when none is known."""
    image = override or cri_dockerd_args.get("--pod-infra-container-image") or default
    if not image:
        raise Refusal(
            "the node's pause image is unknown, so the canary has no image that is surely on the node",
            hint="name an image present on every node with --canary-image",
            code=CANARY_IMAGE_UNKNOWN,
        )
    return image


def default_pause_image(cri_dockerd_version: str | None) -> str | None:
    """The pause image a cri-dockerd of this version uses when not told (core/versions.py CRI_DOCKERD_FACTS); None if
    unknown."""
    if not cri_dockerd_version:
        return None
    try:
        facts = cri_dockerd_facts(parse_cri_dockerd_version(cri_dockerd_version))
    except Refusal:
        return None
    return facts.default_pause_image if facts is not None else None


def parse_bridge_subnets(output: str) -> list[str]:
    """`docker network inspect bridge --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}'`."""
    subnets = []
    for word in output.split():
        try:
            subnets.append(str(ipaddress.ip_network(word, strict=False)))
        except ValueError:
            continue
    return subnets


class CanaryState(StrEnum):
    WAITING = "waiting"  # not running yet, may still start
    RUNNING = "running"  # running, ready, on a pod-network address
    FAILED = "failed"  # will not run, or runs on the wrong network


@dataclass(frozen=True)
class CanaryVerdict:
    state: CanaryState
    message: str
    phase: str = ""
    ip: str = ""
    reasons: tuple[str, ...] = field(default=())
    code: str = CANARY_FAILED  # the finding's code when the verdict is FAILED


@dataclass(frozen=True)
class CanarySettings:
    image: str | None = None  # None: the node's pause image
    namespace: str = DEFAULT_NAMESPACE
    timeout: float = DEFAULT_TIMEOUT
    accept_refused_hardened_pods: bool = False
    # The guard found no workload that sets allowPrivilegeEscalation: false when the run began.
    no_hardened_workloads: bool = False


def exec_problem(outcome: ExecOutcome, *, own_image: bool) -> str | None:
    """Why exec into the running canary did not prove the node's streaming path; None when it did.

    The path is proven when the container runtime answered through it. With the image shimshift chose (the
    node's pause image) ``/pause -v`` must also exit 0: a pause image that does not answer is not the one
    the node's pods run on. An operator's ``--canary-image`` may have no ``/pause``: the runtime's refusal,
    come back over the stream, proves the path as well."""
    if outcome.failure:
        hint = _EXEC_FORBIDDEN_HINT if outcome.status == 403 else _EXEC_HINT
        return f"exec into the canary (`{' '.join(EXEC_COMMAND)}`) failed: {outcome.failure} ({hint})"
    if outcome.exit_code == 0 or not own_image:
        return None
    said = outcome.message or outcome.stderr.decode("utf-8", "replace").strip()
    ran = "did not start" if outcome.exit_code is None else f"exited {outcome.exit_code}"
    return f"`{' '.join(EXEC_COMMAND)}` in the canary {ran}" + (f": {said}" if said else "")


def exec_verdict(verdict: CanaryVerdict, outcome: ExecOutcome, *, own_image: bool) -> CanaryVerdict:
    """A running canary's verdict once the exec into it came back."""
    problem = exec_problem(outcome, own_image=own_image)
    if problem is None:
        return verdict
    return CanaryVerdict(CanaryState.FAILED, problem, verdict.phase, verdict.ip, code=CANARY_EXEC_FAILED)


@dataclass(frozen=True)
class CanaryResult:
    verdict: CanaryVerdict
    detail: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.verdict.state is CanaryState.RUNNING



def read_canary(
    pod: Mapping[str, Any] | None, *, pod_cidrs: Sequence[str], bridge_subnets: Sequence[str]
) -> CanaryVerdict:
    """The canary pod's status as a verdict. Checks, in order: refused by the kubelet (pod reason, e.g.
    NoNewPrivs), finished, a container stuck or exited, not yet ready, then its IP (inside the node's
    podCIDR when set; never on Docker's bridge)."""
    if pod is None:
        return CanaryVerdict(CanaryState.FAILED, "the canary pod is gone (deleted by someone else?)")
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    ip = str(status.get("podIP") or "")
    reason = str(status.get("reason") or "")
    if reason:
        # A kubelet admit handler refused the pod: a soft refusal leaves it Pending, a hard one Failed.
        return _failed(phase, ip, f"the kubelet refused the canary: {reason}: {status.get('message', '')}", reason)
    if phase in {"Failed", "Succeeded"}:
        return _failed(phase, ip, f"the canary pod ended ({phase}): {_container_text(status)}")
    for waiting_reason, text in _container_states(status):
        if waiting_reason in _STUCK or waiting_reason == "terminated":
            return _failed(phase, ip, f"the canary container cannot run: {text}", waiting_reason)
    if phase == "Running" and not ip:
        # Running without an address: the kubelet will replace the sandbox, and again; no need to wait.
        return _failed(phase, ip, ip_problem(ip, pod_cidrs=pod_cidrs, bridge_subnets=bridge_subnets) or "")
    ready = any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in status.get("conditions") or []
    )
    if phase != "Running" or not ready:
        waiting = _container_text(status) or "no container status yet"
        return CanaryVerdict(CanaryState.WAITING, f"{phase}, {waiting}", phase, ip)
    problem = ip_problem(ip, pod_cidrs=pod_cidrs, bridge_subnets=bridge_subnets)
    if problem is not None:
        return _failed(phase, ip, problem)
    return CanaryVerdict(CanaryState.RUNNING, f"running on {ip}", phase, ip)


def ip_problem(ip: str, *, pod_cidrs: Sequence[str], bridge_subnets: Sequence[str]) -> str | None:
    """Why ``ip`` is not a pod-network address of the node; None when it is."""
    if not ip:
        return (
            "the canary runs without an IP address: cri-dockerd gives pods no network (is its "
            "--network-plugin=cni gone? cri-dockerd#73, #93)"
        )
    address = ipaddress.ip_address(ip)
    cidrs = [ipaddress.ip_network(cidr, strict=False) for cidr in pod_cidrs if cidr]
    for text in bridge_subnets:
        bridge = ipaddress.ip_network(text, strict=False)
        if address in bridge and not any(cidr.overlaps(bridge) for cidr in cidrs):
            return (
                f"the canary got {ip}, on Docker's bridge ({bridge}), not the pod network: cri-dockerd starts "
                "sandboxes without its network plugin (--network-plugin=cni missing? cri-dockerd#73, #93)"
            )
    same_family = [cidr for cidr in cidrs if cidr.version == address.version]
    if same_family and not any(address in cidr for cidr in same_family):
        return (
            f"the canary got {ip}, outside the node's podCIDR {', '.join(map(str, same_family))}: "
            "cri-dockerd does not use the cluster's network plugin"
        )
    return None


def _failed(phase: str, ip: str, message: str, reason: str = "") -> CanaryVerdict:
    hint = _HINTS.get(reason)
    return CanaryVerdict(
        CanaryState.FAILED, f"{message} ({hint})" if hint else message, phase, ip, (reason,) if reason else ()
    )


def _container_states(status: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for item in status.get("containerStatuses") or []:
        state = item.get("state") or {}
        if "waiting" in state:
            waiting = state["waiting"] or {}
            reason = str(waiting.get("reason") or "")
            yield reason, f"{item.get('name')} waiting: {reason} {waiting.get('message', '')}".strip()
        elif "terminated" in state:
            done = state["terminated"] or {}
            yield "terminated", f"{item.get('name')} exited {done.get('exitCode')}: {done.get('reason', '')}".strip()


def _container_text(status: Mapping[str, Any]) -> str:
    return "; ".join(text for _reason, text in _container_states(status))
