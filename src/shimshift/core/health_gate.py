"""The health gate's rules: after the kubelet restarted at time T, is the node back, really?

Healthy means, all at once: the Ready condition is True with a heartbeat newer than T (so it is the new
kubelet speaking, not a status written before the restart), every DaemonSet pod on the node is Running
(and, given a baseline, every DaemonSet that had a pod there before still has one), and no condition that
was good in the baseline turned bad (MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable: good
is False; Ready: good is True). Pure: node and pod objects (as the API server returns them) in, findings
out; adapters/kube/health.py follows the node and asks these functions until they pass.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shimshift.core.findings import Finding, Subject, error

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

JSON = dict[str, Any]

GOOD_WHEN_TRUE = frozenset({"Ready"})
CONTROL_PLANE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")

# The codes of the gate's findings (docs/findings.md).
NOT_READY = "node-not-ready"
NO_HEARTBEAT = "no-heartbeat-since-restart"
CONDITION_TURNED_BAD = "node-condition-turned-bad"
DAEMONSET_POD_NOT_RUNNING = "daemonset-pod-not-running"
DAEMONSET_POD_GONE = "daemonset-pod-gone"
NODE_NOT_SEEN = "node-not-seen"
API_SERVER_NOT_ANSWERING = "api-server-not-answering"
CONTROL_PLANE_POD_NOT_READY = "control-plane-pod-not-ready"


def _parse(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def conditions_of(node: Mapping[str, Any]) -> dict[str, JSON]:
    return {str(c.get("type")): c for c in node.get("status", {}).get("conditions") or []}


def condition_good(kind: str, status: str) -> bool:
    return status == "True" if kind in GOOD_WHEN_TRUE else status == "False"


def heartbeat_of(node: Mapping[str, Any]) -> dt.datetime | None:
    ready = conditions_of(node).get("Ready")
    return _parse(ready.get("lastHeartbeatTime")) if ready else None


@dataclass(frozen=True)
class NodeBaseline:
    """What the node looked like before the restart: condition statuses and DaemonSets with a pod there."""

    conditions: Mapping[str, str] = field(default_factory=dict)
    daemonsets: frozenset[str] = frozenset()  # namespace/name


@dataclass(frozen=True)
class HealthReport:
    node: str
    healthy: bool
    missing: tuple[Finding, ...]
    heartbeat: dt.datetime | None = None
    daemonset_pods: tuple[str, ...] = ()
    checked_at: dt.datetime | None = None

    def describe(self) -> str:
        if self.healthy:
            return (
                f"node {self.node} healthy (heartbeat {self.heartbeat:%H:%M:%S}Z)"
                if self.heartbeat
                else f"node {self.node} healthy"
            )
        return f"node {self.node} not healthy: " + "; ".join(item.message for item in self.missing)


def _daemonset_of(pod: Mapping[str, Any]) -> str | None:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "DaemonSet":
            return f"{pod['metadata'].get('namespace', '')}/{ref.get('name', '')}"
    return None


def baseline_from(node: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> NodeBaseline:
    conditions = {kind: str(c.get("status")) for kind, c in conditions_of(node).items()}
    daemonsets = frozenset(ds for pod in pods if (ds := _daemonset_of(pod)) is not None)
    return NodeBaseline(conditions, daemonsets)


def node_object_problems(
    node: Mapping[str, Any], *, since: dt.datetime, baseline: NodeBaseline | None = None
) -> list[Finding]:
    """What the node object itself still lacks (Ready, a heartbeat since T, its conditions)."""
    subject = Subject.of_node(str(node.get("metadata", {}).get("name", "")))
    missing: list[Finding] = []
    conditions = conditions_of(node)
    ready = conditions.get("Ready")
    heartbeat = heartbeat_of(node)
    if ready is None:
        missing.append(error(NOT_READY, "no Ready condition", subject=subject))
    elif ready.get("status") != "True":
        text = f"Ready is {ready.get('status')}: {ready.get('reason', '')} {ready.get('message', '')}".rstrip()
        missing.append(error(NOT_READY, text, subject=subject))
    # Heartbeats are stamped to the whole second, and with node leases an unchanged status is posted
    # again only every nodeStatusReportFrequency (5 min): a kubelet restarted at 12:00:00.4 posts
    # "12:00:00" at once and then nothing for minutes. So compare at the heartbeat's own precision;
    # callers take T after the old kubelet is gone, so a heartbeat at or after T's second is new.
    if heartbeat is None or heartbeat < since.replace(microsecond=0):
        text = f"no heartbeat since {since:%Y-%m-%dT%H:%M:%S}Z" + (
            f" (last {heartbeat:%H:%M:%S}Z)" if heartbeat else ""
        )
        missing.append(error(NO_HEARTBEAT, text, subject=subject))
    for kind, condition in sorted(conditions.items()):
        status = str(condition.get("status"))
        if kind == "Ready" or condition_good(kind, status):
            continue
        before = baseline.conditions.get(kind) if baseline else None
        if baseline is None or before is None or condition_good(kind, before):
            text = f"condition {kind} turned {status}: {condition.get('message', '')}".rstrip(": ")
            missing.append(error(CONDITION_TURNED_BAD, text, subject=subject))
    return missing


def evaluate_health(
    node: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
    *,
    since: dt.datetime,
    baseline: NodeBaseline | None = None,
) -> HealthReport:
    """The node object and its pods now, T, and the baseline → what is missing (nothing = healthy)."""
    name = str(node.get("metadata", {}).get("name", ""))
    subject = Subject.of_node(name)
    missing = node_object_problems(node, since=since, baseline=baseline)
    ds_pods: list[str] = []
    present: set[str] = set()
    for pod in pods:
        ds = _daemonset_of(pod)
        if ds is None or pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        key = f"{pod['metadata'].get('namespace', '')}/{pod['metadata'].get('name', '')}"
        ds_pods.append(key)
        phase = pod.get("status", {}).get("phase", "")
        if phase == "Running":
            present.add(ds)
        else:
            text = f"DaemonSet pod {key} is {phase or 'not started'}"
            missing.append(error(DAEMONSET_POD_NOT_RUNNING, text, subject=subject))
    if baseline is not None:
        missing.extend(
            error(DAEMONSET_POD_GONE, f"DaemonSet {ds} has no Running pod on the node", subject=subject)
            for ds in sorted(baseline.daemonsets - present)
        )
    return HealthReport(name, not missing, tuple(missing), heartbeat_of(node), tuple(ds_pods))


def not_seen(node: str, why: str | None) -> HealthReport:
    """The report while the node object is not at hand: ``why`` is the API server's last trouble."""
    return HealthReport(node, False, (error(NODE_NOT_SEEN, why or "not seen yet", subject=Subject.of_node(node)),))


def not_answering(node: str, failure: Exception) -> Finding:
    text = f"API server not answering: {type(failure).__name__}: {failure}"
    return error(API_SERVER_NOT_ANSWERING, text, subject=Subject.of_node(node))


def control_plane_problems(pods: Iterable[Mapping[str, Any]], node: str) -> list[Finding]:
    """What keeps ``node``'s kubeadm static pods from counting as up: each component's mirror pod must be
    there and Ready."""
    ready: dict[str, bool] = {}
    for pod in pods:
        component = (pod.get("metadata", {}).get("labels") or {}).get("component")
        if component in CONTROL_PLANE_COMPONENTS and pod.get("spec", {}).get("nodeName") == node:
            conditions = {c.get("type"): c.get("status") for c in pod.get("status", {}).get("conditions") or []}
            ready[component] = conditions.get("Ready") == "True"
    return [
        error(CONTROL_PLANE_POD_NOT_READY, f"{name} is not Ready on {node}", subject=Subject.of_node(node))
        for name in CONTROL_PLANE_COMPONENTS
        if not ready.get(name)
    ]
