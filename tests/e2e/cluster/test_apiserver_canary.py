"""verify's canary against a real kube-apiserver: deploy/rbac.yaml, and the canary's procedure
(core/procedures/canary.py) performed by the one executor: create, watch, exec, delete.

The test plays the kubelet: it writes the canary's status, and answers the API server's exec stream as the
kubelet's streaming server does (tests/exec_kubelet.py); the node side is this machine through
LocalNodeAccess (its Docker's bridge subnet, read with `docker network inspect`).

Matrix: as the `shimshift` user bound by deploy/rbac.yaml, the canary is created, read, exec'd into and
deleted in its namespace and refused (403) anywhere else; a pod a finalizer keeps is reported with the
finalizer; the procedure with a pod that runs on the pod network (and answers exec), whose exec stream
is refused, on Docker's bridge, never runs (timeout), and with a leftover canary of an earlier run: each
ends with the pod gone and its timings recorded.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import pytest

from shimshift.adapters.kube import pods
from shimshift.adapters.kube.client import ApiFailure, make_client
from shimshift.adapters.kube.exec import exec_in_pod
from shimshift.adapters.local import LocalNodeAccess
from shimshift.core.canary import (
    CANARY_EXEC_FAILED,
    EXEC_COMMAND,
    CanarySpec,
    CanaryState,
    canary_manifest,
    canary_name,
)
from shimshift.core.drain import DrainOptions
from shimshift.core.procedures.canary import bridge_subnets, run_canary
from shimshift.orchestrator.executor import NodeExecutor
from shimshift.orchestrator.ports import CriPort
from shimshift.orchestrator.session import MemoryJournal
from shimshift.orchestrator.wiring import KubeCluster
from tests.exec_kubelet import ExecKubelet

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


async def test_rbac_allows_exec_into_the_canary_in_its_namespace_only(
    apiserver: LocalApiServer, as_shimshift: Any, world: World
) -> None:
    node = await world.node("exec")
    spec = CanarySpec(node, "kube-system", "registry.k8s.io/pause:3.6", "run-1")
    await pods.create_pod(as_shimshift, "kube-system", canary_manifest(spec))
    try:
        async with stand_in_kubelet(apiserver, world, node) as kubelet:
            allowed = await exec_in_pod(as_shimshift, "kube-system", canary_name(node), "canary", EXEC_COMMAND,
                                        timeout=10)
        assert allowed.exit_code == 0 and allowed.stdout == b"pause.c v3.6\n", allowed
        assert kubelet.targets == [f"GET /exec/kube-system/{canary_name(node)}/canary?command=%2Fpause&command=-v"
                                   "&error=1&output=1 HTTP/1.1"]
        await world.pod("other", node=node)
        forbidden = await exec_in_pod(as_shimshift, world.namespace, "other", "c", EXEC_COMMAND, timeout=10)
        assert forbidden.status == 403 and "cannot get resource \"pods/exec\"" in forbidden.failure, forbidden
    finally:
        await pods.delete_pod(as_shimshift, "kube-system", canary_name(node), timeout=30)


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


def stand_in_kubelet(apiserver: LocalApiServer, world: World, node: str, **answer: Any) -> ExecKubelet:
    """The node's kubelet streaming endpoint, where the API server sends pods/exec of the node's pods."""

    class Registered(ExecKubelet):
        async def __aenter__(self) -> ExecKubelet:
            await super().__aenter__()
            status = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                      "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}}}
            await world.call("PATCH", f"/api/v1/nodes/{node}/status", {"status": status},
                             content_type="application/merge-patch+json")
            return self

    return Registered(apiserver.directory / "apiserver.crt", apiserver.directory / "apiserver.key",
                      stdout=b"pause.c v3.6\n", **answer)


def executor(kube: Any, node: str) -> NodeExecutor:
    return NodeExecutor(node, KubeCluster(kube, DrainOptions()), LocalNodeAccess(node), cast(CriPort, object()),
                        MemoryJournal())


def running_on(ip: str) -> dict[str, Any]:
    return {
        "phase": "Running",
        "podIP": ip,
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {"name": "canary", "ready": True, "restartCount": 0, "image": "i", "imageID": "", "state": {"running": {}}}
        ],
    }


async def canary_on(
    apiserver: LocalApiServer, world: World, kube: Any, status: dict[str, Any] | None, *, timeout: float = 20,
    **exec_answer: Any,
) -> Any:
    node = await world.node("canary")
    await world.call(
        "PATCH", f"/api/v1/nodes/{node}", {"spec": {"podCIDR": POD_CIDR}}, content_type="application/merge-patch+json"
    )
    spec = CanarySpec(node, world.namespace, "registry.k8s.io/pause:3.6", "run-1")
    async with stand_in_kubelet(apiserver, world, node, **exec_answer), Kubelet(world, canary_name(node), status):
        result = await executor(kube, node).drive(run_canary(spec, timeout))
    assert result.detail["deleted"] is True
    assert await world.get_pod(canary_name(node)) is None
    return result


async def test_a_canary_on_the_pod_network_passes_and_is_deleted(
    apiserver: LocalApiServer, world: World, kube: Any
) -> None:
    result = await canary_on(apiserver, world, kube, running_on("10.244.7.9"))
    assert result.ok, result.verdict
    assert result.detail["pod_cidrs"] == [POD_CIDR]
    assert result.detail["ip"] == "10.244.7.9" and result.detail["phase"] == "Running"
    assert result.detail["verdict_after_s"] < 20
    assert result.detail["exec"] == {"command": ["/pause", "-v"], "exit_code": 0, "stdout": "pause.c v3.6"}


async def test_a_canary_whose_exec_stream_is_refused_fails_and_is_deleted(
    apiserver: LocalApiServer, world: World, kube: Any
) -> None:
    # As a kubelet 1.36 answers when it cannot reach cri-dockerd's streaming server (Mirantis/cri-dockerd#560).
    result = await canary_on(apiserver, world, kube, running_on("10.244.7.9"), refuse=500)
    assert result.verdict.code == CANARY_EXEC_FAILED
    assert result.verdict.message.startswith("exec into the canary (`/pause -v`) failed: HTTP 500: stream refused")
    assert result.detail["exec"]["status"] == 500


async def test_a_canary_on_dockers_bridge_fails_and_is_deleted(
    apiserver: LocalApiServer, world: World, kube: Any
) -> None:
    node_bridge, _ = await executor(kube, "here").drive(bridge_subnets())
    result = await canary_on(apiserver, world, kube, running_on("172.17.0.5"))
    assert result.verdict.state is CanaryState.FAILED
    assert "on Docker's bridge (172.17.0.0/16)" in result.verdict.message
    # This machine's own Docker answered, or (no bridge network here) Docker's default stood in.
    assert result.detail["bridge_subnets"] == node_bridge


async def test_a_canary_that_never_runs_fails_at_the_timeout_and_is_deleted(
    apiserver: LocalApiServer, world: World, kube: Any
) -> None:
    result = await canary_on(apiserver, world, kube, None, timeout=2)
    assert result.verdict.state is CanaryState.FAILED
    assert result.verdict.message.startswith("the canary did not run within 2s: Pending")
    assert 2 <= result.detail["verdict_after_s"] < 10


async def test_a_leftover_canary_is_deleted_before_the_new_one(
    apiserver: LocalApiServer, world: World, kube: Any
) -> None:
    node = await world.node("leftover")
    old = CanarySpec(node, world.namespace, "registry.k8s.io/pause:3.6", "run-0")
    await pods.create_pod(kube, world.namespace, canary_manifest(old))
    leftover = await world.get_pod(canary_name(node))
    assert leftover is not None
    spec = CanarySpec(node, world.namespace, old.image, "run-1")
    uid = leftover["metadata"]["uid"]
    async with stand_in_kubelet(apiserver, world, node), Kubelet(world, canary_name(node), running_on("10.9.9.9"),
                                                                 leftover=uid):
        result = await executor(kube, node).drive(run_canary(spec, 60))
    assert result.detail["leftover_deleted"] is True
    assert result.ok, result.verdict  # no podCIDR on this node: only Docker's bridge is ruled out
    assert await world.get_pod(canary_name(node)) is None
