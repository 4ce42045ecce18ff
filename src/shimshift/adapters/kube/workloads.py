"""Listing the cluster's pods and workloads for the hardened-pod detection, and the kubelet versions the
migrate guard needs.

Paged like the audit (``limit``/``continue``): each page is fed to the pure :class:`HardenedScan` and
dropped, so memory holds one page plus one record per hardened workload. Pods come first, as the scan
requires. The whole cluster is scanned whatever nodes are selected: any of those pods may be scheduled
onto a migrated node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shimshift.adapters.kube.client import ApiFailure, list_pages
from shimshift.core.hardened_pods import HardenedScan, HardenedWorkload

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from lightkube import AsyncClient

# (kind, list path[s], newest first). CronJob is batch/v1 from 1.21; older API servers serve v1beta1 only.
WORKLOAD_LISTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ReplicaSet", ("/apis/apps/v1/replicasets",)),
    ("Job", ("/apis/batch/v1/jobs",)),
    ("Deployment", ("/apis/apps/v1/deployments",)),
    ("StatefulSet", ("/apis/apps/v1/statefulsets",)),
    ("DaemonSet", ("/apis/apps/v1/daemonsets",)),
    ("CronJob", ("/apis/batch/v1/cronjobs", "/apis/batch/v1beta1/cronjobs")),
)


async def feed_workloads(client: AsyncClient, scan: HardenedScan, *, chunk_size: int = 500) -> None:
    """Feed every workload of the kinds that carry a pod template to ``scan`` (after its pods)."""
    for kind, paths in WORKLOAD_LISTS:
        for index, path in enumerate(paths):
            try:
                async for page in list_pages(client, path, chunk_size=chunk_size):
                    for item in page:
                        scan.add_workload(kind, item)
                break
            except ApiFailure as failure:
                if failure.status != 404 or index == len(paths) - 1:
                    raise


async def scan_hardened_workloads(
    client: AsyncClient, *, chunk_size: int = 500, on_progress: Callable[[str, int], None] | None = None
) -> list[HardenedWorkload]:
    """Every workload and bare pod whose pods a kubelet < 1.24 on cri-dockerd would refuse."""
    scan = HardenedScan()
    async for page in list_pages(client, "/api/v1/pods", chunk_size=chunk_size):
        for pod in page:
            scan.add_pod(pod)
        if on_progress is not None:
            on_progress("pods", scan.pods_seen)
    await feed_workloads(client, scan, chunk_size=chunk_size)
    return scan.result()


async def kubelet_versions(client: AsyncClient, names: Iterable[str], *, chunk_size: int = 500) -> dict[str, str]:
    """name -> status.nodeInfo.kubeletVersion for the named nodes (one paged list, not a GET per node)."""
    wanted = set(names)
    found: dict[str, str] = {}
    async for page in list_pages(client, "/api/v1/nodes", chunk_size=chunk_size):
        for node in page:
            name = str(node.get("metadata", {}).get("name", ""))
            if name in wanted:
                found[name] = str((node.get("status", {}).get("nodeInfo") or {}).get("kubeletVersion", ""))
    return found
