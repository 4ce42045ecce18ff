"""Health gate: after the kubelet restarted at time T, is the node back, really?

Healthy means, all at once: the Ready condition is True with a heartbeat newer than T (so it is the new
kubelet speaking, not a status written before the restart), every DaemonSet pod on the node is Running
(and, given a baseline, every DaemonSet that had a pod there before still has one), and no condition that
was good in the baseline turned bad (MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable: good
is False; Ready: good is True). ``evaluate_health`` is pure; ``wait_node_healthy`` polls it until it
passes or the timeout, and the report says what is still missing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx2
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod

from shimshift.adapters.kube.client import JSON, ApiFailure
from shimshift.adapters.kube.nodes import get_node

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lightkube import AsyncClient

GOOD_WHEN_TRUE = frozenset({"Ready"})


def _parse(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def conditions_of(node: JSON) -> dict[str, JSON]:
    return {str(c.get("type")): c for c in node.get("status", {}).get("conditions") or []}


def condition_good(kind: str, status: str) -> bool:
    return status == "True" if kind in GOOD_WHEN_TRUE else status == "False"


@dataclass(frozen=True)
class NodeBaseline:
    """What the node looked like before the restart: condition statuses and DaemonSets with a pod there."""

    conditions: Mapping[str, str] = field(default_factory=dict)
    daemonsets: frozenset[str] = frozenset()  # namespace/name


@dataclass(frozen=True)
class HealthReport:
    node: str
    healthy: bool
    missing: tuple[str, ...]
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
        return f"node {self.node} not healthy: " + "; ".join(self.missing)


def _daemonset_of(pod: JSON) -> str | None:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "DaemonSet":
            return f"{pod['metadata'].get('namespace', '')}/{ref.get('name', '')}"
    return None


def baseline_from(node: JSON, pods: list[JSON]) -> NodeBaseline:
    conditions = {kind: str(c.get("status")) for kind, c in conditions_of(node).items()}
    daemonsets = frozenset(ds for pod in pods if (ds := _daemonset_of(pod)) is not None)
    return NodeBaseline(conditions, daemonsets)


def evaluate_health(
    node: JSON, pods: list[JSON], *, since: dt.datetime, baseline: NodeBaseline | None = None
) -> HealthReport:
    """Pure: the node object and its pods now, T, and the baseline → what is missing (nothing = healthy)."""
    name = str(node.get("metadata", {}).get("name", ""))
    missing: list[str] = []
    conditions = conditions_of(node)
    ready = conditions.get("Ready")
    heartbeat = _parse(ready.get("lastHeartbeatTime")) if ready else None
    if ready is None:
        missing.append("no Ready condition")
    elif ready.get("status") != "True":
        missing.append(
            f"Ready is {ready.get('status')}: {ready.get('reason', '')} {ready.get('message', '')}".rstrip()
        )
    # Heartbeats are stamped to the whole second, and with node leases an unchanged status is posted
    # again only every nodeStatusReportFrequency (5 min): a kubelet restarted at 12:00:00.4 posts
    # "12:00:00" at once and then nothing for minutes. So compare at the heartbeat's own precision;
    # callers take T after the old kubelet is gone, so a heartbeat at or after T's second is new.
    if heartbeat is None or heartbeat < since.replace(microsecond=0):
        missing.append(
            f"no heartbeat since {since:%Y-%m-%dT%H:%M:%S}Z"
            + (f" (last {heartbeat:%H:%M:%S}Z)" if heartbeat else "")
        )
    for kind, condition in sorted(conditions.items()):
        status = str(condition.get("status"))
        if kind == "Ready" or condition_good(kind, status):
            continue
        before = baseline.conditions.get(kind) if baseline else None
        if baseline is None or before is None or condition_good(kind, before):
            missing.append(f"condition {kind} turned {status}: {condition.get('message', '')}".rstrip(": "))
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
            missing.append(f"DaemonSet pod {key} is {phase or 'not started'}")
    if baseline is not None:
        missing.extend(
            f"DaemonSet {ds} has no Running pod on the node" for ds in sorted(baseline.daemonsets - present)
        )
    return HealthReport(name, not missing, tuple(missing), heartbeat, tuple(ds_pods))


async def _node_pods(client: AsyncClient, node: str) -> list[JSON]:
    listing = client.list(Pod, namespace="*", fields={"spec.nodeName": node}, chunk_size=500)
    return [pod.to_dict() async for pod in listing]


async def snapshot_node(client: AsyncClient, node: str) -> NodeBaseline:
    """Record the baseline before restarting anything on ``node``."""
    return baseline_from(await get_node(client, node), await _node_pods(client, node))


# The timeout is a parameter (not the caller's asyncio.timeout) because on expiry we return the report of
# what is missing instead of raising.
async def wait_node_healthy(
    client: AsyncClient,
    node: str,
    *,
    since: dt.datetime,
    timeout: float,
    baseline: NodeBaseline | None = None,
    interval: float = 1.0,
) -> HealthReport:
    """Poll until :func:`evaluate_health` passes or ``timeout`` seconds pass; returns the last report
    (``healthy`` False on timeout, with everything still missing)."""
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware (UTC)")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            report = evaluate_health(
                await get_node(client, node), await _node_pods(client, node), since=since, baseline=baseline
            )
        except (httpx2.TransportError, ApiFailure, ApiError) as error:
            if isinstance(error, ApiFailure | ApiError) and _status_of(error) < 500:
                raise
            # The node's own kube-apiserver may be restarting: a new kubelet release restarts the static
            # pods it runs (seen on the control plane after its kubelet went 1.23 -> 1.24). Keep waiting.
            report = HealthReport(node, False, (f"API server not answering: {type(error).__name__}: {error}",))
        report = HealthReport(
            report.node,
            report.healthy,
            report.missing,
            report.heartbeat,
            report.daemonset_pods,
            dt.datetime.now(dt.UTC),
        )
        if report.healthy or loop.time() + interval > deadline:
            return report
        await asyncio.sleep(interval)


def _status_of(error: ApiFailure | ApiError) -> int:
    if isinstance(error, ApiFailure):
        return error.status
    return int(getattr(error.status, "code", 0) or 0)


CONTROL_PLANE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def control_plane_problems(pods: list[JSON], node: str) -> list[str]:
    """What keeps ``node``'s kubeadm static pods from counting as up: each component's mirror pod must be
    there and Ready."""
    ready: dict[str, bool] = {}
    for pod in pods:
        component = (pod.get("metadata", {}).get("labels") or {}).get("component")
        if component in CONTROL_PLANE_COMPONENTS and pod.get("spec", {}).get("nodeName") == node:
            conditions = {c.get("type"): c.get("status") for c in pod.get("status", {}).get("conditions") or []}
            ready[component] = conditions.get("Ready") == "True"
    return [f"{name} is not Ready on {node}" for name in CONTROL_PLANE_COMPONENTS if not ready.get(name)]


async def wait_control_plane(
    client: AsyncClient, node: str, *, timeout: float, settle: float = 15.0, interval: float = 1.0
) -> tuple[str, ...]:
    """Wait until ``node``'s control-plane static pods are all Ready and stay so for ``settle`` seconds
    with the API server answering every poll; the problems left at ``timeout`` (empty: settled).

    A kubelet of a new release restarts the static pods it runs one after another (their container
    hash changes), so the API server comes and goes for a while after the restart; what follows must
    not start before that is over.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    stable_since: float | None = None
    problems: list[str] = ["not checked yet"]
    while True:
        try:
            listing = client.list(Pod, namespace="kube-system", fields={"spec.nodeName": node})
            pods = [pod.to_dict() async for pod in listing]
            problems = control_plane_problems(pods, node)
        except (httpx2.TransportError, ApiFailure, ApiError) as error:
            problems = [f"API server not answering: {type(error).__name__}: {error}"]
        now = loop.time()
        stable_since = (stable_since or now) if not problems else None
        if stable_since is not None and now - stable_since >= settle:
            return ()
        if now + interval > deadline:
            return tuple(problems) or (f"not stable for {settle:g}s",)
        await asyncio.sleep(interval)
