"""PodDisruptionBudgets in a drain: which budget blocks a pod, and whether a node's budgets would refuse
an eviction right now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from lightkube.core.exceptions import ApiError
from lightkube.resources.policy_v1 import PodDisruptionBudget

from shimshift.adapters.kube.client import (
    JSON,
    raw_request,
)
from shimshift.core.drain import (
    selector_matches,
)

if TYPE_CHECKING:
    from lightkube import AsyncClient

# How many dry-run evictions budgets_would_refuse has in flight at once.
DRY_RUN_CONCURRENCY = 8


async def _pdb_for(client: AsyncClient, pod: JSON, named: str | None) -> str | None:
    """``namespace/name`` of the PDB blocking ``pod``: the one the 429 names, else the ones selecting it."""
    namespace = pod.get("metadata", {}).get("namespace", "")
    if named:
        return f"{namespace}/{named}"
    labels = pod.get("metadata", {}).get("labels") or {}
    try:
        budgets = [item async for item in client.list(PodDisruptionBudget, namespace=namespace)]
    except ApiError:
        return None  # only the report's wording depends on it
    names = [
        f"{namespace}/{item.metadata.name}"
        for item in budgets
        if item.metadata is not None
        and item.spec is not None
        and selector_matches(item.spec.selector.to_dict() if item.spec.selector else None, labels)
    ]
    return ",".join(names) or None


async def budgets_would_refuse(client: AsyncClient, pods: Iterable[tuple[str, str]], *, method: str) -> bool:
    """A server dry run of one eviction per given pod (namespace, name): True if any is refused with 429.

    The fleet asks this about one pod per PDB of the node it is about to start, instead of dry-running
    the whole drain: only a PDB can turn an eviction into a 429 worth waiting for. The dry runs go out
    ``DRY_RUN_CONCURRENCY`` at a time: one after another they cost about 8 s per start at 1,000 nodes
    (28 PDBs a node, 0.27 s each on a loaded API server), which paced the whole fleet (docs/benchmarks.md).
    """
    if method == "delete":  # --disable-eviction: DELETE ignores PDBs
        return False
    gate = asyncio.Semaphore(DRY_RUN_CONCURRENCY)

    async def refused(namespace: str, name: str) -> bool:
        body = {
            "apiVersion": method,
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": {"dryRun": ["All"]},
        }
        async with gate:
            response = await raw_request(
                client,
                "POST",
                f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                params={"dryRun": "All"},
                body=body,
            )
        return response.status == 429

    probes = [asyncio.ensure_future(refused(namespace, name)) for namespace, name in pods]
    try:
        for answer in asyncio.as_completed(probes):
            if await answer:
                return True
        return False
    finally:
        for probe in probes:  # one 429 is the answer: the rest need not be asked
            probe.cancel()
