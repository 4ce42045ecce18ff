"""`shimshift plan --to VERSION`: the journey's schedule and every trap on it, from facts read beforehand.

This module only gathers facts and hands them to the pure rules (core/journey/): the nodes and their
kubelets, runtimes and roles (the API), the control plane's release (its static pods' image tags, else
the API server's /version), the kube-apiserver flags (its mirror pods' command), the deprecated APIs
clients still request (the API server's ``apiserver_requested_deprecated_apis`` metric), and, over the
node connection, each node's kubelet files, cgroup version and cri-dockerd and crictl versions. It never
changes anything. A node that cannot be read is said as a finding; the traps that need its files are then
unchecked for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from shimshift.adapters.kube.audit import audit_cluster
from shimshift.adapters.kube.client import _http, raw_request
from shimshift.adapters.kube.connection import open_client
from shimshift.adapters.node_access import NodeAccess, NodeAccessError
from shimshift.core.errors import Refusal, Unavailable
from shimshift.core.findings import Finding, Severity, Subject
from shimshift.core.journey import traps
from shimshift.core.journey.schedule import Journey, JourneyNode, plan_journey, release_key
from shimshift.core.journey.skew import SkewRules
from shimshift.core.node_files import NODE_FILES, NodeView
from shimshift.core.node_hygiene import MAX_NODE_FILE_BYTES
from shimshift.core.runtime_detect import Runtime
from shimshift.core.upgrade.binaries import TargetBinary, parse_install_commands, parse_target
from shimshift.core.upgrade.cluster import apiserver_versions_from_images
from shimshift.core.upgrade.cri_dockerd_swap import ReplacementCriDockerd
from shimshift.core.versions import (
    CriDockerdVersion,
    KubernetesVersion,
    parse_cri_dockerd_version,
    parse_kubelet_version,
)
from shimshift.orchestrator.upgrade_run import checked_binaries, checked_cri_dockerd, release_binaries_dir

__all__ = ["JourneyPlan", "JourneyPlanRequest", "control_plane_release", "plan_whole_journey"]

CGROUP_V2_MARKER = "/sys/fs/cgroup/cgroup.controllers"
CONTAINERD_SOCKET_PATH = "/run/containerd/containerd.sock"


@dataclass(frozen=True)
class JourneyPlanRequest:
    to: str
    skew: SkewRules = SkewRules.KUBEADM
    selector: str | None = None
    allow_cgroup_v1: bool = False
    kubelet_websockets_off: bool = False
    binaries_dir: Path | None = None
    install_commands: tuple[str, ...] = ()
    read_nodes: bool = True
    cri_dockerd: Path | None = None  # --cri-dockerd PATH, put on each node in its first drain


@dataclass
class JourneyPlan:
    journey: Journey
    findings: list[Finding] = field(default_factory=list)
    binaries: dict[str, tuple[TargetBinary, ...]] = field(default_factory=dict)  # release -> checked binaries
    cri_dockerd: ReplacementCriDockerd | None = None  # the checked --cri-dockerd

    @property
    def blocked(self) -> bool:
        return any(finding.blocking for finding in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.journey.to_json(),
            "findings": [finding.to_json() for finding in self.findings],
            "binaries": {
                release: {str(item.binary): item.sha256 for item in items} for release, items in self.binaries.items()
            },
            "cri_dockerd": None if self.cri_dockerd is None else self.cri_dockerd.to_record(),
        }


async def plan_whole_journey(connection: Any, request: JourneyPlanRequest) -> JourneyPlan:
    """Read the facts, schedule the journey, find its traps; with ``--binaries``, check every release's."""
    target = parse_target(request.to)
    if request.install_commands:
        parse_install_commands(request.install_commands)  # refused now, not half-way
    # Refused before the cluster is read: a bad path is the operator's to fix, whatever the cluster says.
    replacement = None if request.cri_dockerd is None else await checked_cri_dockerd(request.cri_dockerd)
    async with open_client(connection.kubeconfig, context=connection.context) as client:
        audit = await audit_cluster(client, selector=request.selector, hardened=False)
        nodes = [
            JourneyNode(
                node.name,
                node.role == "control-plane",
                parse_kubelet_version(node.kubelet_version, what=f"node {node.name} kubelet version"),
                node.runtime.runtime is Runtime.DOCKERSHIM,
            )
            for node in audit.nodes
        ]
        pods = await _apiserver_pods(client)
        control_plane = await _control_plane_release(client, pods)
        docker = (Runtime.DOCKERSHIM, Runtime.CRI_DOCKERD)
        cluster = traps.ClusterFacts(
            apiservers=tuple(_manifest(pod) for pod in pods),
            requested_apis=tuple(await _requested_apis(client)),
            other_runtimes=frozenset(
                node.name
                for node in audit.nodes
                if node.runtime.runtime not in docker and node.runtime.runtime is not Runtime.UNKNOWN
            ),
        )
    journey = plan_journey(nodes, control_plane=control_plane, target=target, rules=request.skew)
    plan = JourneyPlan(journey, cri_dockerd=replacement)
    facts: list[traps.NodeFacts] = []
    if request.read_nodes:
        facts = await _read_nodes(connection, [node.name for node in journey.nodes], plan.findings)
    options = traps.TrapOptions(
        allow_cgroup_v1=request.allow_cgroup_v1,
        kubelet_websockets_off=request.kubelet_websockets_off,
        replacement_cri_dockerd=None if replacement is None else replacement.version,
        replacement_source=f"--cri-dockerd {request.cri_dockerd}",
    )
    plan.findings[:0] = traps.journey_findings(journey, cluster=cluster, nodes=facts, options=options)
    if request.binaries_dir is not None:
        await _check_binaries(request.binaries_dir, journey, plan)
    return plan


# --------------------------------------------------------------------------------------------------
# The cluster


async def _apiserver_pods(client: Any) -> list[dict[str, Any]]:
    response = await raw_request(
        client, "GET", "/api/v1/namespaces/kube-system/pods", params={"labelSelector": "component=kube-apiserver"}
    )
    return list(response.body.get("items") or []) if response.status == 200 else []


async def control_plane_release(client: Any) -> KubernetesVersion:
    """The oldest kube-apiserver's release (`upgrade --to` asks it to tell one minor from the journey)."""
    return await _control_plane_release(client, await _apiserver_pods(client))


async def _control_plane_release(client: Any, pods: Sequence[Mapping[str, Any]]) -> KubernetesVersion:
    """The oldest kube-apiserver's release (its static pod's image tag), else the API server's /version."""
    images = [
        (str(pod["spec"].get("nodeName", "")), str((pod["spec"].get("containers") or [{}])[0].get("image", "")))
        for pod in pods
        if pod.get("spec")
    ]
    versions = apiserver_versions_from_images([item for item in images if item[0]]) if images else {}
    if versions:
        return min(versions.values(), key=release_key)
    response = await raw_request(client, "GET", "/version")
    version = response.body.get("gitVersion")
    if response.status != 200 or not isinstance(version, str):
        raise Unavailable("the API server", f"GET /version answered HTTP {response.status}", "is it a kube-apiserver?")
    return parse_kubelet_version(version, what="the API server's /version")


def _manifest(pod: Mapping[str, Any]) -> traps.ApiserverManifest:
    """The flags of a kube-apiserver mirror pod, as kubeadm wrote them into its static pod manifest."""
    spec = pod.get("spec") or {}
    container = (spec.get("containers") or [{}])[0]
    flags: dict[str, tuple[str, int | None]] = {}
    for argument in [*(container.get("command") or []), *(container.get("args") or [])]:
        name, equals, value = str(argument).partition("=")
        if name.startswith("--") and equals:
            flags[name] = (value, None)
    return traps.ApiserverManifest(str(spec.get("nodeName", "")), flags)


_DEPRECATED_API = re.compile(r"^apiserver_requested_deprecated_apis\{(?P<labels>[^}]*)\}\s+1\b", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


async def _requested_apis(client: Any) -> list[traps.RequestedApi]:
    """The deprecated APIs requested since the API server started (its metric; empty when not allowed)."""
    try:
        # Prometheus text, not JSON: the kubeconfig's authenticated HTTP client, without raw_request's decoding.
        response = await _http(client).get("/metrics")
    except httpx2.HTTPError:  # the metric is optional: without it only this one trap goes unchecked
        return []
    return deprecated_apis(response.text) if response.status_code == 200 else []


def deprecated_apis(metrics: str) -> list[traps.RequestedApi]:
    """The ``apiserver_requested_deprecated_apis`` series of a /metrics answer (value 1: requested)."""
    found = []
    for match in _DEPRECATED_API.finditer(metrics):
        labels = dict(_LABEL.findall(match["labels"]))
        found.append(
            traps.RequestedApi(
                labels.get("group", ""),
                labels.get("version", ""),
                labels.get("resource", ""),
                labels.get("removed_release") or None,
            )
        )
    return found


# --------------------------------------------------------------------------------------------------
# The nodes


async def _read_nodes(connection: Any, names: Sequence[str], findings: list[Finding]) -> list[traps.NodeFacts]:
    from shimshift.orchestrator.session import node_pool  # the same connections `plan` uses

    facts = []
    async with node_pool(connection) as pool:
        for name in names:
            try:
                facts.append(await _node_facts(name, await pool.get(name)))
            except (Refusal, Unavailable, NodeAccessError, OSError) as error:
                findings.append(
                    Finding(
                        Severity.WARNING,
                        "node-not-read",
                        f"its files could not be read ({error}); the traps that need them are not checked",
                        Subject.of_node(name),
                        "check the node's SSH access (--ssh-config), then plan again",
                    )
                )
    return facts


async def _node_facts(name: str, access: NodeAccess) -> traps.NodeFacts:
    files = {path: await access.read_file(path, max_bytes=MAX_NODE_FILE_BYTES) for path in NODE_FILES}
    view = NodeView.load(files, node=name)
    # The unified hierarchy has cgroup.controllers at its root; a v1 or hybrid host has not (the kubelet
    # treats hybrid as v1). Read as a file: no command of its own on the node.
    unified = await access.read_file(CGROUP_V2_MARKER, max_bytes=MAX_NODE_FILE_BYTES)
    programs = await access.find_programs(("cri-dockerd", "crictl"))
    cri_dockerd: CriDockerdVersion | None = None
    binary = programs.get("cri-dockerd")
    if binary:
        answer = await access.run([binary, "--version"], check=False)
        text = (answer.stdout or answer.stderr).decode("utf-8", "replace").strip()
        cri_dockerd = parse_cri_dockerd_version(text) if answer.ok else None
    crictl: KubernetesVersion | None = None
    if programs.get("crictl"):
        answer = await access.run(["crictl", "--version"], check=False)
        text = answer.stdout.decode("utf-8", "replace").strip().removeprefix("crictl version ")
        try:
            crictl = parse_kubelet_version(text, what=f"crictl on {name}") if answer.ok else None
        except Refusal:
            crictl = None  # a release newer than the rules know: its CRI versions are not checked
    # Docker's packaged containerd leaves its socket here; kubeadm 1.37's detection then finds two runtimes.
    containerd = await access.run(["ls", "-1", CONTAINERD_SOCKET_PATH], check=False)
    return traps.NodeFacts(
        name,
        view,
        cgroup_version=2 if unified is not None else 1,
        cri_dockerd=cri_dockerd,
        crictl=crictl,
        crictl_found=programs.get("crictl") is not None,
        containerd_socket=containerd.ok,
    )


# --------------------------------------------------------------------------------------------------
# The binaries of every release on the way


async def _check_binaries(directory: Path, journey: Journey, plan: JourneyPlan) -> None:
    """kubeadm, kubelet and kubectl of each release the journey stops at, from a folder per release."""
    releases = sorted({step.release for step in journey.control_plane_steps()} | {journey.target}, key=release_key)
    for release in releases:
        folder = release_binaries_dir(directory, release, only=len(releases) == 1)
        try:
            plan.binaries[f"v{release}"] = await checked_binaries(folder, str(release))
        except Refusal as error:
            plan.findings.append(
                Finding(
                    Severity.ERROR,
                    "release-binaries",
                    str(error),
                    Subject.of_file(str(folder)),
                    f"put kubeadm, kubelet and kubectl of v{release} in {directory}/v{release}/",
                )
            )
