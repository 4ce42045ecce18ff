"""The node's pods as a drain sees them: listed (kubectl's paged list, or the API server's watch cache) and
turned into the facts kubectl's filters decide on, with kubectl's lookup of each DaemonSet pod's DaemonSet.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import DaemonSet

from shimshift.adapters.kube.client import (
    JSON,
    list_pages,
    status_code,
)
from shimshift.core.drain import (
    ControllerRef,
    DrainOptions,
    PodFacts,
)

if TYPE_CHECKING:
    from lightkube import AsyncClient


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _controller_of(pod: JSON) -> ControllerRef | None:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ControllerRef(
                str(ref.get("kind", "")), str(ref.get("name", "")), str(ref.get("apiVersion", ""))
            )
    return None


def pod_facts(
    pod: JSON, *, daemonset_lookup_error: str | None = None, daemonset_not_found: bool = False
) -> PodFacts:
    """The filters' view of a pod object from the API."""
    metadata = pod.get("metadata", {})
    volumes = pod.get("spec", {}).get("volumes") or []
    return PodFacts(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        phase=str(pod.get("status", {}).get("phase", "")),
        deletion_timestamp=_parse_time(metadata.get("deletionTimestamp")),
        controller=_controller_of(pod),
        annotations=dict(metadata.get("annotations") or {}),
        has_emptydir=any("emptyDir" in volume for volume in volumes),
        daemonset_lookup_error=daemonset_lookup_error,
        daemonset_not_found=daemonset_not_found,
    )


async def list_node_pods(
    client: AsyncClient, node: str, options: DrainOptions, *, from_watch_cache: bool = False
) -> list[JSON]:
    """The pods on ``node``: kubectl's list (from etcd, in pages of ``chunk_size``), or with
    ``from_watch_cache`` the API server's watch cache as it stands (``resourceVersion=0``, not paged).

    The watch cache indexes pods by ``spec.nodeName``; etcd does not, so kubectl's list of one node's
    pods decodes every pod of the cluster. A fleet run does that for many nodes at once: at 30,000 pods on
    the 1,000-node kwok rig, a hundred drains at once timed out, and ten at once still did (docs/benchmarks.md).
    The cache trails etcd by a watch event's delay; a node is cordoned before its drain lists, so a pod
    it could miss was bound in those milliseconds before the cordon. (A resourceVersion to be at least
    as fresh as would not do: on 1.23 the pod cache advances only with pod events, so it waits 3 s for
    any newer version, such as the node's, and then refuses.)
    """
    params = {"fieldSelector": f"spec.nodeName={node}"}
    if options.pod_selector:
        params["labelSelector"] = options.pod_selector
    if from_watch_cache:
        params["resourceVersion"] = "0"
    pods: list[JSON] = []
    chunk_size = 0 if from_watch_cache else options.chunk_size
    async for page in list_pages(client, "/api/v1/pods", params=params, chunk_size=chunk_size):
        pods.extend(page)
    return pods


async def _facts_for(client: AsyncClient, pods: list[JSON]) -> list[PodFacts]:
    """PodFacts for each pod, looking up the DaemonSet of unfinished DaemonSet pods like kubectl does."""
    lookups: dict[tuple[str, str], tuple[str | None, bool]] = {}
    facts: list[PodFacts] = []
    for pod in pods:
        plain = pod_facts(pod)
        if plain.daemonset_managed and not plain.finished and plain.controller is not None:
            key = (plain.namespace, plain.controller.name)
            if key not in lookups:
                try:
                    await client.get(DaemonSet, key[1], namespace=key[0])
                    lookups[key] = (None, False)
                except ApiError as failure:
                    if status_code(failure) == 404:
                        lookups[key] = (f'daemonsets.apps "{key[1]}" not found', True)
                    else:
                        lookups[key] = (failure.status.message or f"HTTP {status_code(failure)}", False)
            error, not_found = lookups[key]
            if error is not None:
                plain = pod_facts(pod, daemonset_lookup_error=error, daemonset_not_found=not_found)
        facts.append(plain)
    return facts
