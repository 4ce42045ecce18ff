"""Health gate, the I/O half: follow the node after its kubelet restarted and ask the gate's rules
(core/health_gate.py) until they pass or the timeout; the report says what is still missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx2
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Node, Pod

from shimshift.adapters.kube.client import JSON, ApiFailure
from shimshift.adapters.kube.drain_pods import list_node_pods
from shimshift.adapters.kube.nodes import get_node
from shimshift.adapters.kube.watching import Pulse, follow_one
from shimshift.core.drain import DrainOptions
from shimshift.core.health_gate import (
    HealthReport,
    NodeBaseline,
    baseline_from,
    control_plane_problems,
    evaluate_health,
    heartbeat_of,
    node_object_problems,
    not_answering,
    not_seen,
)

if TYPE_CHECKING:
    from lightkube import AsyncClient

FIRST_ANSWER_SECONDS = 30.0


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
        return not_seen(node, feed.trouble), False
    problems = node_object_problems(feed.node, since=since, baseline=baseline)
    if problems:
        return HealthReport(node, False, tuple(problems), heartbeat_of(feed.node)), True
    try:
        pods = await _node_pods(client, node)
    except (httpx2.TransportError, ApiError) as error:
        if isinstance(error, ApiError) and _status_of(error) < 500:
            raise ApiFailure.of(f"list pods on node {node}", error) from error
        return HealthReport(node, False, (not_answering(node, error),)), False
    return evaluate_health(feed.node, pods, since=since, baseline=baseline), False


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
                self.trouble = not_answering(self.name, error).message
                self.pulse.fire()
            await asyncio.sleep(1.0)


def _status_of(error: ApiFailure | ApiError) -> int:
    if isinstance(error, ApiFailure):
        return error.status
    return int(getattr(error.status, "code", 0) or 0)


async def wait_control_plane(
    client: AsyncClient, node: str, *, timeout: float, settle: float = 15.0, interval: float = 1.0
) -> tuple[str, ...]:
    """Wait until ``node``'s control-plane static pods are all Ready and stay so for ``settle`` seconds
    with the API server answering every poll; the problems left at ``timeout`` (empty: settled), as the
    words of the findings (the upgrade's procedure reads them as text).

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
            problems = [finding.message for finding in control_plane_problems(pods, node)]
        except (httpx2.TransportError, ApiFailure, ApiError) as error:
            problems = [not_answering(node, error).message]
        now = loop.time()
        stable_since = (stable_since or now) if not problems else None
        if stable_since is not None and now - stable_since >= settle:
            return ()
        if now + interval > deadline:
            return tuple(problems) or (f"not stable for {settle:g}s",)
        await asyncio.sleep(interval)
