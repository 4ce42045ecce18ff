"""The Kubernetes API edge: client, audit, cordon ownership, kubectl-grade drain, cri-socket, health, events.

Everything is async, takes the lightkube ``AsyncClient`` first, options keyword-only, reports progress
through callbacks and never prints.
"""

from __future__ import annotations

from shimshift.adapters.kube.audit import AuditReport, NodeAudit, audit_cluster
from shimshift.adapters.kube.client import ApiFailure, make_client
from shimshift.adapters.kube.drain import DrainResult, drain_node, plan_drain
from shimshift.adapters.kube.events import emit_node_event
from shimshift.adapters.kube.evictions import DrainEvent, DrainEventKind
from shimshift.adapters.kube.health import snapshot_node, wait_node_healthy
from shimshift.adapters.kube.nodes import (
    cordon,
    cordoned_by,
    get_cri_socket,
    restore_cri_socket,
    set_cri_socket,
    uncordon_if_ours,
)
from shimshift.core.drain import BlockedPod, RefusedPod
from shimshift.core.health_gate import HealthReport, NodeBaseline, evaluate_health
from shimshift.core.wellknown import CORDONED_BY_ANNOTATION

__all__ = [
    "CORDONED_BY_ANNOTATION",
    "ApiFailure",
    "AuditReport",
    "BlockedPod",
    "DrainEvent",
    "DrainEventKind",
    "DrainResult",
    "HealthReport",
    "NodeAudit",
    "NodeBaseline",
    "RefusedPod",
    "audit_cluster",
    "cordon",
    "cordoned_by",
    "drain_node",
    "emit_node_event",
    "evaluate_health",
    "get_cri_socket",
    "make_client",
    "plan_drain",
    "restore_cri_socket",
    "set_cri_socket",
    "snapshot_node",
    "uncordon_if_ours",
    "wait_node_healthy",
]
