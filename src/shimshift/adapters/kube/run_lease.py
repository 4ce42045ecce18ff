"""The run Lease on the API server: read it, write it with optimistic concurrency, nothing else.

The rules (who may take it, when it expired) are core/run_lease.py's; this module only turns a
``coordination.k8s.io/v1`` Lease into a :class:`LeaseState` and back. Every write carries the
``resourceVersion`` it was decided on, so two runs that decide at once cannot both win: the API server
answers the loser 409 Conflict (``Conflict`` here), and the loser reads again and decides again.
deploy/rbac.yaml grants get, create and update on this one Lease (by name) in its namespace.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shimshift.adapters.kube.client import JSON, ApiFailure, raw_request
from shimshift.core.run_lease import LEASE_NAME, Holder, LeaseState, RunStatus

if TYPE_CHECKING:
    from lightkube import AsyncClient

ANNOTATION = "shimshift.io/"
RUN = ANNOTATION + "run"
RUN_STATUS = ANNOTATION + "run-status"
USER = ANNOTATION + "user"
HOST = ANNOTATION + "host"
PID = ANNOTATION + "pid"
COMMAND = ANNOTATION + "command"
TAKEN_OVER = ANNOTATION + "taken-over"


class Conflict(Exception):
    """Another writer changed the Lease since it was read (409): read again and decide again."""


def lease_path(namespace: str, name: str = "") -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


async def read_lease(client: AsyncClient, namespace: str) -> LeaseState | None:
    """The Lease, or None when there is none yet."""
    response = await raw_request(client, "GET", lease_path(namespace, LEASE_NAME))
    if response.status == 404:
        return None
    if response.status != 200:
        raise ApiFailure(f"read Lease {namespace}/{LEASE_NAME}", response)
    return lease_state(response.body)


async def write_lease(client: AsyncClient, namespace: str, lease: LeaseState) -> LeaseState:
    """Create the Lease (``resource_version`` "") or update the one read; returns it as written.

    Raises :class:`Conflict` when another writer got there first (409 on update, or on create when a
    Lease appeared meanwhile)."""
    body = lease_body(namespace, lease)
    if lease.resource_version:
        response = await raw_request(client, "PUT", lease_path(namespace, LEASE_NAME), body=body)
    else:
        response = await raw_request(client, "POST", lease_path(namespace), body=body)
    if response.status == 409:
        raise Conflict(response.message)
    if response.status not in (200, 201):
        raise ApiFailure(f"write Lease {namespace}/{LEASE_NAME}", response)
    return lease_state(response.body)


def lease_state(body: JSON) -> LeaseState:
    metadata = body.get("metadata") or {}
    notes: dict[str, str] = metadata.get("annotations") or {}
    spec = body.get("spec") or {}
    identity = spec.get("holderIdentity") or ""
    holder = None
    if identity:
        holder = Holder(
            run_id=notes.get(RUN, identity),
            user=notes.get(USER, "?"),
            host=notes.get(HOST, "?"),
            pid=_int(notes.get(PID)),
            command=notes.get(COMMAND, ""),
        )
        if holder.identity != identity:
            # Written by something else than shimshift (or edited by hand): keep what it says as the run.
            holder = Holder(run_id=identity, user="?", host="?", pid=0)
    status = notes.get(RUN_STATUS, str(RunStatus.RUNNING))
    return LeaseState(
        holder=holder,
        run_id=notes.get(RUN, ""),
        run_status=RunStatus(status) if status in set(RunStatus) else RunStatus.RUNNING,
        acquired=_time(spec.get("acquireTime")),
        renewed=_time(spec.get("renewTime")),
        duration=timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0)),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(metadata.get("resourceVersion") or ""),
        taken_over=notes.get(TAKEN_OVER, ""),
    )


def lease_body(namespace: str, lease: LeaseState) -> JSON:
    holder = lease.holder
    notes = {RUN: holder.run_id if holder is not None else lease.run_id, RUN_STATUS: str(lease.run_status)}
    if holder is not None:
        notes |= {USER: holder.user, HOST: holder.host, PID: str(holder.pid), COMMAND: holder.command}
    if lease.taken_over:
        notes[TAKEN_OVER] = lease.taken_over
    metadata: dict[str, Any] = {"name": LEASE_NAME, "namespace": namespace, "annotations": notes}
    if lease.resource_version:
        metadata["resourceVersion"] = lease.resource_version
    spec: dict[str, Any] = {
        "holderIdentity": holder.identity if holder is not None else None,
        "leaseDurationSeconds": int(lease.duration.total_seconds()),
        "leaseTransitions": lease.transitions,
        "acquireTime": _micro_time(lease.acquired),
        "renewTime": _micro_time(lease.renewed),
    }
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


def _micro_time(moment: datetime | None) -> str | None:
    # MicroTime: RFC 3339 with microseconds (k8s.io/apimachinery pkg/apis/meta/v1/micro_time.go, RFC3339Micro).
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment is not None else None


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0
