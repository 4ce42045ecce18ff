"""Runs verify's canary on one node: delete a leftover, create the pod, watch it to a verdict, delete it.

The decisions (the manifest, what the pod's status means) are core/canary.py's; this module owns the
order, the clock and the clean-up: the pod is deleted whatever happened, and a run that died with a
canary on the node deletes it when it resumes (the name is fixed per node).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shimshift.core.canary import (
    DEFAULT_TIMEOUT,
    DOCKER_DEFAULT_BRIDGE,
    NO_NEW_PRIVS_FIELD,
    CanaryResult,
    CanarySettings,
    CanarySpec,
    CanaryState,
    CanaryVerdict,
    canary_manifest,
    canary_name,
    parse_bridge_subnets,
    read_canary,
)
from shimshift.orchestrator.ports import ClusterPort, NodePort

DELETE_TIMEOUT = 60.0


async def bridge_subnets(access: NodePort) -> tuple[list[str], str]:
    """Docker's bridge subnets on the node, and where they came from."""
    shown = await access.run(
        ["docker", "network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"],
        check=False,
    )
    subnets = parse_bridge_subnets(shown.stdout.decode("utf-8", "replace")) if shown.returncode == 0 else []
    if subnets:
        return subnets, "docker network inspect bridge"
    # No bridge network (daemon.json "bridge": "none"): Docker's default is still where a sandbox started
    # without a network plugin would land if the bridge came back.
    return [DOCKER_DEFAULT_BRIDGE], "Docker's default (the node has no bridge network)"


async def remove_canary(cluster: ClusterPort, *, node: str, namespace: str) -> bool:
    """Delete the node's canary if there is one and wait until it is gone; True when there was one."""
    return await cluster.delete_pod(namespace, canary_name(node), timeout=DELETE_TIMEOUT)


async def run_canary(
    cluster: ClusterPort,
    access: NodePort,
    *,
    spec: CanarySpec,
    clock: Callable[[], datetime],
    timeout: float = DEFAULT_TIMEOUT,
) -> CanaryResult:
    """Start the canary, wait up to ``timeout`` seconds for a verdict, delete it. Never leaves it behind."""
    name = canary_name(spec.node)
    leftover = await remove_canary(cluster, node=spec.node, namespace=spec.namespace)
    subnets, subnets_from = await bridge_subnets(access)
    pod_cidrs = list(await cluster.pod_cidrs(spec.node))
    detail: dict[str, Any] = {
        "pod": f"{spec.namespace}/{name}",
        "image": spec.image,
        "leftover_deleted": leftover,
        "pod_cidrs": pod_cidrs,
        "bridge_subnets": subnets,
        "bridge_subnets_from": subnets_from,
        "omitted": [NO_NEW_PRIVS_FIELD] if spec.omit_no_new_privs else [],
    }
    created = clock()
    detail["created_at"] = created.isoformat()
    verdict = CanaryVerdict(CanaryState.WAITING, "not created")
    try:
        await cluster.create_pod(spec.namespace, canary_manifest(spec))

        def decided(pod: Mapping[str, Any] | None) -> bool:
            return read_canary(pod, pod_cidrs=pod_cidrs, bridge_subnets=subnets).state is not CanaryState.WAITING

        pod = await cluster.wait_pod(spec.namespace, name, until=decided, timeout=timeout)
        verdict = read_canary(pod, pod_cidrs=pod_cidrs, bridge_subnets=subnets)
        if verdict.state is CanaryState.WAITING:
            verdict = CanaryVerdict(
                CanaryState.FAILED,
                f"the canary did not run within {timeout:g}s: {verdict.message}",
                verdict.phase,
                verdict.ip,
            )
        detail["verdict_after_s"] = round((clock() - created).total_seconds(), 3)
    finally:
        deleted_from = clock()
        detail["deleted"] = await remove_canary(cluster, node=spec.node, namespace=spec.namespace)
        detail["deleted_after_s"] = round((clock() - deleted_from).total_seconds(), 3)
    detail.update(state=str(verdict.state), message=verdict.message, phase=verdict.phase, ip=verdict.ip)
    return CanaryResult(verdict, detail)


__all__ = ["CanaryResult", "CanarySettings", "bridge_subnets", "remove_canary", "run_canary"]
