"""verify's canary against a real kube-apiserver: deploy/rbac.yaml, and the create-watch-delete driver.

The test plays the kubelet (it writes the canary's status); the node side is this machine through
LocalNodeAccess (its Docker's bridge subnet, read with `docker network inspect`).

Matrix: as the `shimshift` user bound by deploy/rbac.yaml, the canary is created, read and deleted in its
namespace and refused (403) anywhere else; a pod a finalizer keeps is reported with the finalizer; the
driver with a pod that runs on the pod network, on Docker's bridge, never runs (timeout), and with a
leftover canary of an earlier run: each ends with the pod gone and its timings recorded.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from shimshift.adapters.kube import pods
from shimshift.adapters.kube.client import ApiFailure, make_client
from shimshift.adapters.local import LocalNodeAccess
from shimshift.core.canary import CanarySpec, CanaryState, canary_manifest, canary_name
from shimshift.core.drain import DrainOptions
from shimshift.orchestrator.canary import bridge_subnets, run_canary
from shimshift.orchestrator.wiring import KubeCluster

if TYPE_CHECKING:

    from tests.apiserver_fixture import LocalApiServer
    from tests.kube_world import World

pytestmark = pytest.mark.e2e

POD_CIDR = "10.244.7.0/24"


async def test_rbac_allows_the_canary_in_its_namespace_only(as_shimshift: Any, world: World) -> None:
    spec = CanarySpec(world.name("node"), "kube-system", "registry.k8s.io/pause:3.6", "run-1")
    await pods.create_pod(as_shimshift, "kube-system", canary_manifest(spec))
    pod = await pods.get_pod(as_shimshift, "kube-system", canary_name(spec.node))
    assert pod is not None and pod["spec"]["nodeName"] == spec.node
    assert await pods.delete_pod(as_shimshift, "kube-system", canary_name(spec.node), timeout=30) is True
    assert await pods.get_pod(as_shimshift, "kube-system", canary_name(spec.node)) is None
    elsewhere = CanarySpec(spec.node, world.namespace, spec.image, spec.run_id)
    with pytest.raises(ApiFailure) as refused:
        await pods.create_pod(as_shimshift, world.namespace, canary_manifest(elsewhere))
    assert refused.value.status == 403


async def test_a_pod_a_finalizer_keeps_is_reported_with_its_finalizer(apiserver: LocalApiServer, world: World) -> None:
    node = await world.node("held")
    name = world.name("held")
    await world.pod(name, node=node)
    path = f"/api/v1/namespaces/{world.namespace}/pods/{name}"
    merge = "application/merge-patch+json"
    await world.call("PATCH", path, {"metadata": {"finalizers": ["example.com/hold"]}}, content_type=merge)
    client = make_client(apiserver.kubeconfig)
    try:
        with pytest.raises(pods.PodNotGone, match=f"pod {world.namespace}/{name} still exists 1s after its "
                           "deletion \\(finalizers example.com/hold hold it\\)"):
            await pods.delete_pod(client, world.namespace, name, timeout=1)
    finally:
        await world.call("PATCH", path, {"metadata": {"finalizers": None}}, content_type=merge)
        await client.close()
    assert await world.get_pod(name) is None


class Kubelet:
    """Plays the node's kubelet for the canary: once the pod exists, writes the given status once.

    ``leftover``: the UID of an older pod of that name, which the driver deletes first: the status goes to
    the new pod only (writing it to the leftover would lose it with the leftover)."""

    def __init__(
        self, world: World, name: str, status: dict[str, Any] | None, *, leftover: str | None = None
    ) -> None:
        self.world, self.name, self.status, self.leftover = world, name, status, leftover
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        path = f"/api/v1/namespaces/{self.world.namespace}/pods/{self.name}"
        for _ in range(6000):  # polls every 10 ms, as the driver's own 0.5 s poll is what is tested
            pod = await self.world.get_pod(self.name)
            if pod is not None and pod["metadata"]["uid"] != self.leftover:
                break
            await asyncio.sleep(0.01)
        if self.status is not None:
            await self.world.call(
                "PATCH", f"{path}/status", {"status": self.status}, content_type="application/merge-patch+json"
            )

    async def __aenter__(self) -> Kubelet:
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()


def running_on(ip: str) -> dict[str, Any]:
    return {
        "phase": "Running",
        "podIP": ip,
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {"name": "canary", "ready": True, "restartCount": 0, "image": "i", "imageID": "", "state": {"running": {}}}
        ],
    }


async def canary_on(world: World, kube: Any, status: dict[str, Any] | None, *, timeout: float = 20) -> Any:
    node = await world.node("canary")
    await world.call(
        "PATCH", f"/api/v1/nodes/{node}", {"spec": {"podCIDR": POD_CIDR}}, content_type="application/merge-patch+json"
    )
    spec = CanarySpec(node, world.namespace, "registry.k8s.io/pause:3.6", "run-1")
    async with Kubelet(world, canary_name(node), status):
        result = await run_canary(
            KubeCluster(kube, DrainOptions()),
            LocalNodeAccess(node),
            spec=spec,
            clock=lambda: datetime.now(UTC),
            timeout=timeout,
        )
    assert result.detail["deleted"] is True
    assert await world.get_pod(canary_name(node)) is None
    return result


async def test_a_canary_on_the_pod_network_passes_and_is_deleted(world: World, kube: Any) -> None:
    result = await canary_on(world, kube, running_on("10.244.7.9"))
    assert result.ok, result.verdict
    assert result.detail["pod_cidrs"] == [POD_CIDR]
    assert result.detail["ip"] == "10.244.7.9" and result.detail["phase"] == "Running"
    assert result.detail["verdict_after_s"] < 20


async def test_a_canary_on_dockers_bridge_fails_and_is_deleted(world: World, kube: Any) -> None:
    node_bridge, _ = await bridge_subnets(LocalNodeAccess())
    result = await canary_on(world, kube, running_on("172.17.0.5"))
    assert result.verdict.state is CanaryState.FAILED
    assert "on Docker's bridge (172.17.0.0/16)" in result.verdict.message
    # This machine's own Docker answered, or (no bridge network here) Docker's default stood in.
    assert result.detail["bridge_subnets"] == node_bridge


async def test_a_canary_that_never_runs_fails_at_the_timeout_and_is_deleted(world: World, kube: Any) -> None:
    result = await canary_on(world, kube, None, timeout=2)
    assert result.verdict.state is CanaryState.FAILED
    assert result.verdict.message.startswith("the canary did not run within 2s: Pending")
    assert 2 <= result.detail["verdict_after_s"] < 10


async def test_a_leftover_canary_is_deleted_before_the_new_one(world: World, kube: Any) -> None:
    node = await world.node("leftover")
    old = CanarySpec(node, world.namespace, "registry.k8s.io/pause:3.6", "run-0")
    await pods.create_pod(kube, world.namespace, canary_manifest(old))
    leftover = await world.get_pod(canary_name(node))
    assert leftover is not None
    spec = CanarySpec(node, world.namespace, old.image, "run-1")
    async with Kubelet(world, canary_name(node), running_on("10.9.9.9"), leftover=leftover["metadata"]["uid"]):
        result = await run_canary(
            KubeCluster(kube, DrainOptions()), LocalNodeAccess(node), spec=spec, clock=lambda: datetime.now(UTC)
        )
    assert result.detail["leftover_deleted"] is True
    assert result.ok, result.verdict  # no podCIDR on this node: only Docker's bridge is ruled out
    assert await world.get_pod(canary_name(node)) is None
