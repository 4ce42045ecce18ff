"""Kubernetes Events on the Node, so ``kubectl describe node`` shows what shimshift did and when."""

from __future__ import annotations

import datetime as dt
import socket
from typing import TYPE_CHECKING, cast

from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Event

from shimshift.adapters.kube.client import ApiFailure

if TYPE_CHECKING:
    from lightkube import AsyncClient

COMPONENT = "shimshift"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def emit_node_event(
    client: AsyncClient, node: str, *, reason: str, message: str, type: str = "Normal"
) -> str:
    """Record an Event about ``node``; returns the Event's name.

    kubectl describe node looks up events with involvedObject uid equal to the node *name* (that is how the
    kubelet records node events, kubectl describe.go), in any namespace; we write to "default" like the
    kubelet does.
    """
    if type not in ("Normal", "Warning"):
        raise ValueError(f"event type must be Normal or Warning, not {type!r}")
    now = _now()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{node}.shimshift-", "namespace": "default"},
        "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": node, "uid": node},
        "reason": reason,
        # The API rejects messages over 1 KiB; keep the start, which names the pod or the step.
        "message": message[:1000],
        "type": type,
        "source": {"component": COMPONENT, "host": socket.gethostname()},
        "reportingComponent": COMPONENT,
        "reportingInstance": socket.gethostname(),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        created = await client.create(cast("Event", Event.from_dict(body)))
    except ApiError as error:
        raise ApiFailure.of(f"creating an Event on node {node}", error) from error
    return str(created.metadata.name if created.metadata else "")
