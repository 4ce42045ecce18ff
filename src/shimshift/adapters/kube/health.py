"""Health gate: after the kubelet restarted at time T, is the node back, really?

Healthy means, all at once: the Ready condition is True with a heartbeat newer than T (so it is the new
kubelet speaking, not a status written before the restart), every DaemonSet pod on the node is Running
(and, given a baseline, every DaemonSet that had a pod there before still has one), and no condition that
was good in the baseline turned bad (MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable: good
is False; Ready: good is True). ``evaluate_health`` is pure; ``wait_node_healthy`` follows the node by
watch and applies it until it passes or the timeout, and the report says what is still missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import httpx2
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Node, Pod

from shimshift.adapters.kube.client import JSON, ApiFailure
from shimshift.adapters.kube.drain import list_node_pods
from shimshift.adapters.kube.nodes import get_node
from shimshift.adapters.kube.watching import Pulse, follow_one
from shimshift.core.drain import DrainOptions

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lightkube import AsyncClient

GOOD_WHEN_TRUE = frozenset({"Ready"})
FIRST_ANSWER_SECONDS = 30.0


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


def node_problems(node: JSON, *, since: dt.datetime, baseline: NodeBaseline | None = None) -> list[str]:
    """Pure: what the node object itself still lacks (Ready, a heartbeat since T, its conditions)."""
    missing: list[str] = []
    conditions = conditions_of(node)
    ready = conditions.get("Ready")
    heartbeat = _heartbeat(node)
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
    return missing


def _heartbeat(node: JSON) -> dt.datetime | None:
    ready = conditions_of(node).get("Ready")
    return _parse(ready.get("lastHeartbeatTime")) if ready else None


def evaluate_health(
    node: JSON, pods: list[JSON], *, since: dt.datetime, baseline: NodeBaseline | None = None
) -> HealthReport:
    """Pure: the node object and its pods now, T, and the baseline → what is missing (nothing = healthy)."""
    name = str(node.get("metadata", {}).get("name", ""))
    missing = node_problems(node, since=since, baseline=baseline)
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
    return HealthReport(name, not missing, tuple(missing), _heartbeat(node), tuple(ds_pods))


async def _node_pods(client: AsyncClient, node: str) -> list[JSON]:
    # From the watch cache (list_node_pods): the gate looks again a second later anyway.
    return await list_node_pods(client, node, DrainOptions(), from_watch_cache=True)


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
    """Until :func:`evaluate_health` passes or ``timeout`` seconds pass; returns the last report
    (``healthy`` False on timeout, with everything still missing).

    The node is followed by a watch (:class:`_NodeFeed`) and its pods are listed only once the node
    itself is back, every ``interval`` until its DaemonSet pods run: polling both every second cost
    most of a node's requests while kwok's loaded kubelets took 40 s to report (docs/benchmarks.md).
    """
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware (UTC)")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    feed = _NodeFeed(client, node)
    follower = asyncio.create_task(feed.run(), name=f"watch node {node}")
    try:
        # The first answer (the node, or why there is none) even with timeout 0, which means "check once":
        # the poll this replaces made one GET whatever the timeout.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(feed.pulse.wait_past(0), timeout=max(timeout, FIRST_ANSWER_SECONDS))
        while True:
            seen = feed.pulse.generation
            report, wait_for_node_change = await _check(client, node, feed, since=since, baseline=baseline)
            report = replace(report, checked_at=dt.datetime.now(dt.UTC))
            left = deadline - loop.time()
            if report.healthy or left < interval:
                return report
            if wait_for_node_change:
                # The node itself is not back: nothing to do until it changes.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(feed.pulse.wait_past(seen), timeout=left - interval)
            else:
                await asyncio.sleep(interval)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


async def _check(
    client: AsyncClient, node: str, feed: _NodeFeed, *, since: dt.datetime, baseline: NodeBaseline | None
) -> tuple[HealthReport, bool]:
    """The report, and whether only a change of the node object can help (it is seen and not back yet)."""
    if feed.failure is not None:
        raise feed.failure
    if feed.node is None:
        # Not seen yet, or the watch is in trouble: look again in ``interval``, not only on a change.
        return HealthReport(node, False, (feed.trouble or "not seen yet",)), False
    problems = node_problems(feed.node, since=since, baseline=baseline)
    if problems:
        return HealthReport(node, False, tuple(problems), _heartbeat(feed.node)), True
    try:
        pods = await _node_pods(client, node)
    except (httpx2.TransportError, ApiError) as error:
        if isinstance(error, ApiError) and _status_of(error) < 500:
            raise ApiFailure.of(f"list pods on node {node}", error) from error
        return HealthReport(node, False, (_not_answering(error),)), False
    return evaluate_health(feed.node, pods, since=since, baseline=baseline), False


def _not_answering(error: Exception) -> str:
    return f"API server not answering: {type(error).__name__}: {error}"


class _NodeFeed:
    """The node as a watch last saw it, followed again after any failure: the node's own kube-apiserver
    may be restarting (a new kubelet release restarts the static pods it runs; seen on the control plane
    after its kubelet went 1.23 -> 1.24). A refusal below 500 (403, 404) ends the wait at once."""

    def __init__(self, client: AsyncClient, node: str) -> None:
        self.client = client
        self.name = node
        self.node: JSON | None = None
        self.trouble: str | None = None  # the API server's last transient failure, for the report
        self.failure: ApiFailure | None = None
        self.pulse = Pulse()

    async def run(self) -> None:
        while True:
            try:
                async for current in follow_one(self.client, Node, self.name):
                    self.node = None if current is None else current.to_dict()
                    self.trouble = None if current is not None else f"node {self.name} not found"
                    self.pulse.fire()
            except (httpx2.TransportError, ApiError) as error:
                if isinstance(error, ApiError) and _status_of(error) < 500:
                    self.failure = ApiFailure.of(f"watch node {self.name}", error)
                    self.pulse.fire()
                    return
                self.node = None
                self.trouble = _not_answering(error)
                self.pulse.fire()
            await asyncio.sleep(1.0)


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
