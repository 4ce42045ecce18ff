"""The fleet's ClusterCache when the API server goes away and comes back, as an upgraded control plane's
does (kubeadm replaces the kube-apiserver static pod, then the new kubelet restarts it): the watches
list again and go on, so pods deleted after the restart leave the cache, and a drain's wait for a pod
to go ends.

Its own etcd + kube-apiserver (restarted here), not the session's.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from shimshift.adapters.kube.cache import ClusterCache
from shimshift.adapters.kube.client import make_client
from tests.apiserver_fixture import LocalApiServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shimshift.lab.images import LabBinaries

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def restartable(lab_binaries: LabBinaries) -> Iterator[LocalApiServer]:
    with LocalApiServer(controllers=False) as server:
        yield server


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "pause"}]},
    }


async def eventually(check: Any, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not within the timeout"
        await asyncio.sleep(0.2)


async def test_the_cache_lists_again_after_the_api_server_restarts(restartable: LocalApiServer) -> None:
    from lightkube.resources.core_v1 import Pod

    client = make_client(restartable.kubeconfig)
    try:
        for name in ("kept", "waited-for", "deleted-after"):
            await client.create(Pod.from_dict(pod(name)))  # type: ignore[call-overload]
        async with ClusterCache(client) as cache:
            await eventually(lambda: cache.pod("default", "deleted-after") is not None)
            uid = str(cache.pod("default", "waited-for").uid)  # type: ignore[union-attr]
            await asyncio.to_thread(restartable.restart_apiserver, down_for=1.0)
            await client.delete(Pod, "waited-for", namespace="default", grace_period=0)
            assert await cache.wait_pod_gone("default", "waited-for", uid, timeout=30)
            await client.delete(Pod, "deleted-after", namespace="default", grace_period=0)
            await eventually(lambda: cache.pod("default", "deleted-after") is None, timeout=30)
            assert cache.pod("default", "kept") is not None
    finally:
        await client.close()
