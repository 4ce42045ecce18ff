"""Create, read, watch and delete one pod by name: what verify's canary needs of the API, nothing more.

deploy/rbac.yaml grants pods create and delete in the canary's namespace only (a Role); get, list and
watch are the cluster-wide reads the drain and the fleet's cache already have.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, cast

from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod

from shimshift.adapters.kube.client import JSON, ApiFailure, status_code
from shimshift.adapters.kube.watching import follow_one
from shimshift.core.upgrade.cluster import apiserver_versions_from_images
from shimshift.core.versions import KubernetesVersion

if TYPE_CHECKING:
    from collections.abc import Callable

    from lightkube import AsyncClient


async def create_pod(client: AsyncClient, namespace: str, manifest: JSON) -> None:
    name = manifest["metadata"]["name"]
    pod = cast("Pod", Pod.from_dict({**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}))
    try:
        await client.create(pod)
    except ApiError as error:
        raise ApiFailure.of(f"create pod {namespace}/{name}", error) from error


async def get_pod(client: AsyncClient, namespace: str, name: str) -> JSON | None:
    """The pod, or None when it does not exist."""
    try:
        return (await client.get(Pod, name, namespace=namespace)).to_dict()
    except ApiError as error:
        if status_code(error) == 404:
            return None
        raise ApiFailure.of(f"read pod {namespace}/{name}", error) from error


async def delete_pod(client: AsyncClient, namespace: str, name: str, *, timeout: float) -> bool:
    """Delete the pod at once (grace period 0) and wait until the API server no longer has a pod of that
    name: a canary is a bare pod, nothing recreates it.

    True when there was a pod to delete. Raises :class:`PodNotGone` when it is still there after ``timeout``.
    """
    try:
        await client.delete(Pod, name, namespace=namespace, grace_period=0)
    except ApiError as error:
        if status_code(error) == 404:
            return False
        raise ApiFailure.of(f"delete pod {namespace}/{name}", error) from error
    still = await wait_pod(client, namespace, name, until=lambda current: current is None, timeout=timeout)
    if still is not None:
        raise PodNotGone(namespace, name, timeout, tuple(still.get("metadata", {}).get("finalizers") or ()))
    return True


class PodNotGone(Exception):
    """A pod deleted with grace period 0 still exists: only finalizers keep such a pod (or a server that
    did not answer the watch in time), so they are named."""

    def __init__(self, namespace: str, name: str, timeout: float, finalizers: tuple[str, ...]) -> None:
        held = f"finalizers {', '.join(finalizers)} hold it" if finalizers else "it has no finalizers"
        super().__init__(
            f"pod {namespace}/{name} still exists {timeout:g}s after its deletion ({held}); "
            f"see `kubectl get pod -n {namespace} {name} -o yaml`"
        )
        self.finalizers = finalizers


async def wait_pod(
    client: AsyncClient, namespace: str, name: str, *, until: Callable[[JSON | None], bool], timeout: float
) -> JSON | None:
    """The pod (None: there is none) as soon as ``until`` holds for it, else as it last was after ``timeout``
    seconds. A list of that one name, then a watch from the list's resourceVersion: two requests where
    polling asked several times a second (docs/benchmarks.md counts requests per node)."""
    last: JSON | None = None

    async def watch() -> None:
        nonlocal last
        async for pod in follow_one(client, Pod, name, namespace=namespace):
            last = None if pod is None else pod.to_dict()
            if until(last):
                return

    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch(), timeout=timeout)
    except ApiError as error:
        raise ApiFailure.of(f"watch pod {namespace}/{name}", error) from error
    return last


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


async def apiserver_versions(client: AsyncClient) -> dict[str, KubernetesVersion]:
    """Each control-plane node's kube-apiserver release, read from the image tag of its static pod."""
    return apiserver_versions_from_images(await static_pod_images(client, "kube-apiserver"))
