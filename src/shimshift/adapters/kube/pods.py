"""Create, read and delete one pod by name: what verify's canary needs of the API, nothing more.

deploy/rbac.yaml grants pods create and delete in the canary's namespace only (a Role); get is the
cluster-wide read the drain already has.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from shimshift.adapters.kube.client import JSON, ApiFailure, raw_request
from shimshift.core.upgrade import apiserver_versions_from_images
from shimshift.core.versions import KubeletVersion

if TYPE_CHECKING:
    from lightkube import AsyncClient

GONE_POLL_SECONDS = 0.25


def _path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/pods"
    return base if name is None else f"{base}/{name}"


async def create_pod(client: AsyncClient, namespace: str, manifest: JSON) -> None:
    response = await raw_request(client, "POST", _path(namespace), body=manifest)
    if response.status not in (200, 201):
        raise ApiFailure(f"create pod {namespace}/{manifest['metadata']['name']}", response)


async def get_pod(client: AsyncClient, namespace: str, name: str) -> JSON | None:
    """The pod, or None when it does not exist."""
    response = await raw_request(client, "GET", _path(namespace, name))
    if response.status == 404:
        return None
    if response.status != 200:
        raise ApiFailure(f"read pod {namespace}/{name}", response)
    return response.body


async def delete_pod(client: AsyncClient, namespace: str, name: str, *, timeout: float) -> bool:
    """Delete the pod at once (grace period 0) and wait until the API server no longer has it.

    True when there was a pod to delete. Raises ApiFailure when it is still there after ``timeout``.
    """
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
    response = await raw_request(client, "DELETE", _path(namespace, name), body=options)
    if response.status == 404:
        return False
    if response.status not in (200, 202):
        raise ApiFailure(f"delete pod {namespace}/{name}", response)
    deadline = time.monotonic() + timeout
    uid = (response.body.get("metadata") or {}).get("uid")
    while True:
        current = await get_pod(client, namespace, name)
        # A pod of the same name with another uid is a new one, not ours.
        if current is None or (uid and (current.get("metadata") or {}).get("uid") != uid):
            return True
        if time.monotonic() >= deadline:
            raise ApiFailure(f"pod {namespace}/{name} still exists {timeout:g}s after its deletion", response)
        await asyncio.sleep(GONE_POLL_SECONDS)


async def static_pod_images(client: AsyncClient, component: str) -> list[tuple[str, str]]:
    """(node, image) of each kube-system static pod of a kubeadm ``component`` (e.g. kube-apiserver)."""
    from lightkube.resources.core_v1 import Pod

    found = []
    async for pod in client.list(Pod, namespace="kube-system", labels={"component": component}):
        spec = pod.spec
        if spec is None or not spec.nodeName or not spec.containers:
            continue
        found.append((spec.nodeName, spec.containers[0].image or ""))
    return found


async def apiserver_versions(client: AsyncClient) -> dict[str, KubeletVersion]:
    """Each control-plane node's kube-apiserver release, read from the image tag of its static pod."""
    return apiserver_versions_from_images(await static_pod_images(client, "kube-apiserver"))
