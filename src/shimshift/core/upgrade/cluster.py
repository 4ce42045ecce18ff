"""The cluster as the one-minor upgrade sees it: which release each kube-apiserver runs, which node plays
which part, and whether ``--to`` is one step the version skew allows.

Sources:

- [skew] Kubernetes version skew policy, https://kubernetes.io/releases/version-skew-policy/ :
  kube-apiserver instances of an HA cluster within one minor of each other; kubelet never newer than
  kube-apiserver; upgrade order: all kube-apiservers first, then the other control-plane components,
  then the kubelets.
- [kubeadm-upgrade] "Upgrading kubeadm clusters" (kubernetes.io, tasks/administer-cluster/kubeadm/
  kubeadm-upgrade): one minor at a time; the first control-plane node runs `kubeadm upgrade apply`, the
  other control-plane nodes and the workers `kubeadm upgrade node`.
- [policy.go] k8s.io/kubernetes v1.24.17 cmd/kubeadm/app/phases/upgrade/policy.go
  EnforceVersionPolicies: refuses an upgrade of more than one minor.

Decisions where upstream is silent:

- On the control plane, the kubelet of a control-plane node is swapped once *its own* kube-apiserver
  runs the target version, as [kubeadm-upgrade] does node by node; in an HA control plane that leaves
  the node's kubelet one minor ahead of the other, not yet upgraded API servers for the minutes until
  they are done (the same window kubeadm's own procedure has). Workers wait for every API server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shimshift.core.errors import Refusal
from shimshift.core.fleet import ControlPlaneOrder, FleetNode, FleetPhase, plan_phases
from shimshift.core.journey.schedule import release_key
from shimshift.core.journey.skew import CONTROL_PLANE_MINORS_PER_APPLY, SkewRules, apply_problem, kubelet_problem
from shimshift.core.upgrade.binaries import EXACT_RELEASE
from shimshift.core.versions import KubernetesVersion, parse_kubelet_version

__all__ = [
    "NodeVersion",
    "Role",
    "apiserver_version",
    "apiserver_versions_from_images",
    "check_skew",
    "first_control_plane",
    "kubelet_swap_problem",
    "node_roles",
    "upgrade_phases",
]


class Role(StrEnum):
    FIRST_CONTROL_PLANE = "first-control-plane"  # kubeadm upgrade plan, then apply
    CONTROL_PLANE = "control-plane"  # kubeadm upgrade node (static pods and kubelet config)
    WORKER = "worker"  # kubeadm upgrade node (kubelet config)


@dataclass(frozen=True)
class NodeVersion:
    """A node as the upgrade sees it: its role and the release its kubelet runs now."""

    name: str
    control_plane: bool
    kubelet: KubernetesVersion


def check_skew(
    *, to: KubernetesVersion, apiservers: Mapping[str, KubernetesVersion], nodes: Sequence[NodeVersion]
) -> None:
    """Refuse a ``--to`` the cluster may not go to in one step; nothing is changed before this passes.

    ``apiservers`` maps each control-plane node to the release its kube-apiserver reports (its
    ``/version``, or the image tag of its static pod). Refused: no API server known; API servers more
    than one minor apart (the cluster is already outside [skew]); a downgrade of any API server or
    kubelet; a ``--to`` more than one minor above the oldest API server or any kubelet ([kubeadm-upgrade]:
    one minor at a time; [policy.go]); a kubelet already newer than its API server ([skew]: the oldest
    one for a worker, its own for a control-plane node). The rules themselves are core/journey/skew.py's,
    as the journey applies them; here for a one-minor run.
    """
    if not apiservers:
        raise Refusal(
            "no kube-apiserver version is known",
            hint="the upgrade needs the control plane's version; check the kubeconfig reaches the cluster",
            code="apiserver-version-unknown",
        )
    oldest = min(apiservers.values())
    newest_node, newest = max(apiservers.items(), key=lambda item: item[1])
    if newest.minor - oldest.minor > CONTROL_PLANE_MINORS_PER_APPLY:
        raise Refusal(
            f"the kube-apiservers run {oldest} to {newest}, more than one minor apart",
            hint="finish the control plane's last upgrade first (version skew policy)",
            code="skew-refused",
        )
    if release_key(newest) > release_key(to):
        raise Refusal(
            f"--to {to} would downgrade the kube-apiserver on {newest_node} ({newest})",
            hint="shimshift upgrades only; downgrades are not supported by kubeadm",
            node=newest_node,
            code="skew-refused",
        )
    if to.minor > oldest.minor + CONTROL_PLANE_MINORS_PER_APPLY:
        raise Refusal(
            f"--to {to} skips a minor: the oldest kube-apiserver runs {oldest}",
            hint=f"upgrade one minor at a time: first to the latest 1.{oldest.minor + 1} release "
            f"(`shimshift plan --to {to}` shows the whole journey)",
            code="skew-refused",
        )
    for node in sorted(nodes, key=lambda item: item.name):
        if release_key(node.kubelet) > release_key(to):
            raise Refusal(
                f"--to {to} would downgrade the kubelet ({node.kubelet})",
                hint="leave this node out of the run",
                node=node.name,
                code="skew-refused",
            )
        if apply_problem(kubelet_minor=node.kubelet.minor, target_minor=to.minor, rules=SkewRules.KUBEADM):
            raise Refusal(
                f"--to {to} skips a minor for the kubelet ({node.kubelet})",
                hint=f"upgrade this node's kubelet to 1.{node.kubelet.minor + 1} first, one minor at a time",
                node=node.name,
                code="skew-refused",
            )
        # A control-plane node's kubelet answers to its own API server (the HA window of a resumed
        # run, see the module's decisions); a worker's to the oldest.
        server = apiservers.get(node.name, oldest) if node.control_plane else oldest
        problem = kubelet_problem(kubelet_minor=node.kubelet.minor, apiserver_minor=server.minor)
        if problem is not None:
            raise Refusal(
                f"the kubelet ({node.kubelet}) does not fit beside the kube-apiserver ({server}): {problem}",
                hint="the cluster is outside the version skew policy; upgrade the control plane first",
                node=node.name,
                code="skew-refused",
            )


def kubelet_swap_problem(
    node: NodeVersion, *, to: KubernetesVersion, apiservers: Mapping[str, KubernetesVersion]
) -> str | None:
    """Why ``node``'s kubelet may not become ``to`` yet (None: it may); checked right before the swap.

    A worker waits for every kube-apiserver; a control-plane node for its own (see the module's
    decisions). Minors are compared, as [skew] does.
    """
    if node.control_plane:
        own = apiservers.get(node.name)
        if own is None:
            return f"the kube-apiserver of control-plane node {node.name} reports no version"
        if kubelet_problem(kubelet_minor=to.minor, apiserver_minor=own.minor) is not None:
            return f"its own kube-apiserver still runs {own}: a kubelet {to} would be newer"
        return None
    behind = sorted(name for name, version in apiservers.items() if version.minor < to.minor)
    if not apiservers or behind:
        where = ", ".join(f"{name} ({apiservers[name]})" for name in behind) or "no API server known"
        return f"kube-apiserver not yet at 1.{to.minor} on {where}: a kubelet {to} would be newer"
    return None


def upgrade_phases(
    nodes: Sequence[NodeVersion],
    *,
    to: KubernetesVersion,
    apiservers: Mapping[str, KubernetesVersion],
    max_unavailable: int,
) -> list[FleetPhase]:
    """Control plane first, one node at a time, then the workers within ``max_unavailable``.

    A run of workers alone is refused while an API server is below ``to``'s minor: workers never go
    before the control plane [skew].
    """
    phases = plan_phases(
        (FleetNode(node.name, node.control_plane) for node in nodes),
        control_plane=ControlPlaneOrder.FIRST,
        max_unavailable=max_unavailable,
    )
    selected_control_plane = any(node.control_plane for node in nodes)
    behind = sorted(name for name, version in apiservers.items() if version.minor < to.minor)
    if behind and not selected_control_plane and nodes:
        raise Refusal(
            f"the workers cannot go to {to} before the control plane: kube-apiserver on {', '.join(behind)} is older",
            hint="include the control-plane nodes in the run (or run them first)",
            code="skew-refused",
        )
    return phases


def apiserver_version(body: str, *, source: str) -> KubernetesVersion:
    """The release in a kube-apiserver's ``/version`` answer (``{"gitVersion": "v1.23.17", ...}``)."""
    try:
        raw = json.loads(body)["gitVersion"]
    except (ValueError, KeyError, TypeError):
        raw = None
    if not isinstance(raw, str):
        raise Refusal(
            f"/version of {source} has no gitVersion: {body[:80]!r}",
            hint="is it a kube-apiserver?",
            code="apiserver-version-unknown",
        )
    return parse_kubelet_version(raw, what=f"kube-apiserver version on {source}")


def apiserver_versions_from_images(images: Sequence[tuple[str, str]]) -> dict[str, KubernetesVersion]:
    """node → release of its kube-apiserver static pod, read from the image tag kubeadm wrote
    (``registry.k8s.io/kube-apiserver:v1.24.17``); an image without a release tag is refused."""
    versions = {}
    for node, image in images:
        tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        if EXACT_RELEASE.match(tag) is None:
            raise Refusal(
                f"the kube-apiserver of {node} runs {image!r}, whose tag is not a release",
                hint="shimshift reads the API server's release from kubeadm's image tag",
                node=node,
                code="apiserver-version-unknown",
            )
        versions[node] = parse_kubelet_version(tag, what=f"kube-apiserver image on {node}")
    return versions


def node_roles(
    nodes: Sequence[NodeVersion], *, to: KubernetesVersion, apiservers: Mapping[str, KubernetesVersion]
) -> dict[str, Role]:
    """Each selected node's part: the one that applies, the other control-plane nodes, the workers."""
    first = first_control_plane(nodes, to=to, apiservers=apiservers)
    return {
        node.name: Role.FIRST_CONTROL_PLANE
        if node.name == first
        else Role.CONTROL_PLANE
        if node.control_plane
        else Role.WORKER
        for node in nodes
    }


def first_control_plane(
    nodes: Sequence[NodeVersion], *, to: KubernetesVersion, apiservers: Mapping[str, KubernetesVersion]
) -> str | None:
    """The node that runs ``kubeadm upgrade apply``: the first control-plane node by name, unless an API
    server already runs ``to`` (apply has been done; every control-plane node then runs ``upgrade node``)."""
    if any(release_key(version) >= release_key(to) for version in apiservers.values()):
        return None
    names = sorted(node.name for node in nodes if node.control_plane)
    return names[0] if names else None
