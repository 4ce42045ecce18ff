"""Test helpers that create Nodes and Pods on a real kube-apiserver and play the kubelet's part.

Used by tests/e2e/cluster and benchmarks; a kubelet-less API server keeps what we write in *status*.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from typing import Any

from shimshift.adapters.kube.client import JSON, raw_request

_counter = itertools.count()


def now_rfc3339(offset: float = 0.0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    """Creates API objects for one test. Names carry a per-test suffix."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.suffix = f"t{next(_counter)}-{uuid.uuid4().hex[:5]}"
        self.namespace = f"ns-{self.suffix}"

    def name(self, base: str) -> str:
        return f"{base}-{self.suffix}"

    async def call(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        *,
        ok: tuple[int, ...] = (200, 201),
        content_type: str = "application/json",
    ) -> JSON:
        response = await raw_request(self.client, method, path, body=body, content_type=content_type)
        assert response.status in ok, f"{method} {path}: {response.status} {response.body}"
        return response.body

    async def setup(self) -> None:
        await self.call(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
        )

    async def node(
        self,
        base: str,
        *,
        runtime: str = "docker://20.10.24",
        kubelet: str = "v1.23.17",
        cri_socket: str | None = "/var/run/dockershim.sock",
        labels: dict[str, str] | None = None,
        ready: bool = True,
        heartbeat_offset: float = 0.0,
        conditions: dict[str, str] | None = None,
    ) -> str:
        name = self.name(base)
        annotations = {"kubeadm.alpha.kubernetes.io/cri-socket": cri_socket} if cri_socket else {}
        await self.call(
            "POST",
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {"shimshift-test": self.suffix, **(labels or {})},
                    "annotations": annotations,
                },
            },
        )
        await self.node_status(
            name,
            runtime=runtime,
            kubelet=kubelet,
            ready=ready,
            heartbeat_offset=heartbeat_offset,
            conditions=conditions,
        )
        return name

    async def node_status(
        self,
        name: str,
        *,
        runtime: str = "docker://20.10.24",
        kubelet: str = "v1.23.17",
        ready: bool = True,
        heartbeat_offset: float = 0.0,
        conditions: dict[str, str] | None = None,
    ) -> None:
        """Write the node status as a kubelet would (heartbeat = now + offset)."""
        beat = now_rfc3339(heartbeat_offset)
        statuses = {
            "MemoryPressure": "False",
            "DiskPressure": "False",
            "PIDPressure": "False",
            "Ready": "True" if ready else "False",
            **(conditions or {}),
        }
        await self.call(
            "PATCH",
            f"/api/v1/nodes/{name}/status",
            {
                "status": {
                    "nodeInfo": {
                        "kubeletVersion": kubelet,
                        "containerRuntimeVersion": runtime,
                        "osImage": "Debian GNU/Linux 12 (bookworm)",
                        "kubeProxyVersion": kubelet,
                        "machineID": "",
                        "systemUUID": "",
                        "bootID": "",
                        "kernelVersion": "6.1",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                    },
                    "conditions": [
                        {
                            "type": kind,
                            "status": status,
                            "lastHeartbeatTime": beat,
                            "lastTransitionTime": beat,
                            "reason": "Test",
                            "message": f"{kind} {status}",
                        }
                        for kind, status in statuses.items()
                    ],
                }
            },
            content_type="application/strategic-merge-patch+json",
        )

    async def owner(self, kind: str, base: str) -> dict[str, Any]:
        """A real owner object for kinds whose existence matters (DaemonSet), else a reference only."""
        name = self.name(base)
        if kind == "DaemonSet":
            body = await self.call(
                "POST",
                f"/apis/apps/v1/namespaces/{self.namespace}/daemonsets",
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "metadata": {"name": name},
                    "spec": {
                        "selector": {"matchLabels": {"ds": name}},
                        "template": {
                            "metadata": {"labels": {"ds": name}},
                            "spec": {
                                "nodeSelector": {"no-such-node": "x"},
                                "containers": [{"name": "c", "image": "busybox"}],
                            },
                        },
                    },
                },
            )
            uid = body["metadata"]["uid"]
            api = "apps/v1"
        else:
            uid = str(uuid.uuid4())
            api = "batch/v1" if kind == "Job" else ("v1" if kind == "ReplicationController" else "apps/v1")
        return {"apiVersion": api, "kind": kind, "name": name, "uid": uid, "controller": True}

    async def pod(
        self,
        name: str,
        *,
        node: str,
        owner: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        emptydir: bool = False,
        host_paths: tuple[str, ...] = (),
        phase: str = "Running",
        ready: bool = True,
        annotations: dict[str, str] | None = None,
        grace: int = 30,
    ) -> JSON:
        volumes: list[JSON] = []
        if emptydir:
            volumes.append({"name": "scratch", "emptyDir": {}})
        volumes.extend(
            {"name": f"host{index}", "hostPath": {"path": path}} for index, path in enumerate(host_paths)
        )
        metadata: JSON = {
            "name": name,
            "namespace": self.namespace,
            "labels": labels or {},
            "annotations": annotations or {},
        }
        if owner:
            metadata["ownerReferences"] = [owner]
        body = await self.call(
            "POST",
            f"/api/v1/namespaces/{self.namespace}/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": metadata,
                "spec": {
                    "nodeName": node,
                    "terminationGracePeriodSeconds": grace,
                    "volumes": volumes,
                    "containers": [{"name": "c", "image": "busybox"}],
                },
            },
        )
        await self.pod_status(name, phase=phase, ready=ready)
        return body

    async def pod_status(self, name: str, *, phase: str = "Running", ready: bool = True) -> None:
        stamp = now_rfc3339()
        await self.call(
            "PATCH",
            f"/api/v1/namespaces/{self.namespace}/pods/{name}/status",
            {
                "status": {
                    "phase": phase,
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True" if ready and phase == "Running" else "False",
                            "lastTransitionTime": stamp,
                        }
                    ],
                }
            },
            content_type="application/strategic-merge-patch+json",
        )

    async def pdb(self, base: str, *, labels: dict[str, str], min_available: int) -> str:
        name = self.name(base)
        await self.call(
            "POST",
            f"/apis/policy/v1/namespaces/{self.namespace}/poddisruptionbudgets",
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": name},
                "spec": {"minAvailable": min_available, "selector": {"matchLabels": labels}},
            },
        )
        return name

    async def wait_pdb(self, name: str, *, allowed: int, timeout: float = 30.0) -> None:
        """Until the disruption controller has computed ``disruptionsAllowed == allowed``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: JSON = {}
        while loop.time() < deadline:
            last = await self.call(
                "GET", f"/apis/policy/v1/namespaces/{self.namespace}/poddisruptionbudgets/{name}"
            )
            status = last.get("status", {})
            if (
                status.get("observedGeneration") == last["metadata"].get("generation")
                and status.get("disruptionsAllowed") == allowed
            ):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"PDB {name} never reached disruptionsAllowed={allowed}: {last.get('status')}")

    async def get_pod(self, name: str) -> JSON | None:
        response = await raw_request(self.client, "GET", f"/api/v1/namespaces/{self.namespace}/pods/{name}")
        if response.status == 404:
            return None
        assert response.status == 200, response.body
        return response.body

    async def delete_pod_now(self, name: str) -> None:
        await self.call(
            "DELETE",
            f"/api/v1/namespaces/{self.namespace}/pods/{name}",
            {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0},
            ok=(200, 404),
        )

    async def get_node(self, name: str) -> JSON:
        return await self.call("GET", f"/api/v1/nodes/{name}")
