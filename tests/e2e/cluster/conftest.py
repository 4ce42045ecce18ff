"""Fixtures for the cluster side against a real kube-apiserver (no kubelets) started on loopback.

``apiserver``: one etcd + kube-apiserver v1.23.17 + kube-controller-manager (disruption controller only)
for the session. ``kube``: a lightkube AsyncClient on it. ``world``: helpers that create Nodes and Pods and
play the kubelet's part (writing node and pod *status*), each test in its own namespace and with its own
node names so tests never see each other's objects. ``as_shimshift``: a client acting as the user
deploy/rbac.yaml binds, with exactly that file applied (the least RBAC the README lists).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from shimshift.adapters.kube.client import make_client
from tests.apiserver_fixture import LocalApiServer
from tests.kube_world import World

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from shimshift.lab.images import LabBinaries


@pytest.fixture(scope="session")
def apiserver(lab_binaries: LabBinaries) -> Iterator[LocalApiServer]:
    # lab_binaries: kube-apiserver and kube-controller-manager are built before the first test needs them.
    with LocalApiServer(audit_log=True) as server:
        yield server


@pytest.fixture(scope="session")
async def kube(apiserver: LocalApiServer) -> AsyncIterator[Any]:
    client = make_client(apiserver.kubeconfig)
    yield client
    await client.close()


@pytest.fixture
async def world(kube: Any) -> World:
    created = World(kube)
    await created.setup()
    return created


RBAC = Path(__file__).resolve().parents[3] / "deploy" / "rbac.yaml"
PATHS = {
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
}


@pytest.fixture
async def as_shimshift(apiserver: LocalApiServer, world: World) -> AsyncIterator[Any]:
    """A client acting as the user deploy/rbac.yaml binds, with exactly that file applied."""
    created = []
    for document in yaml.safe_load_all(RBAC.read_text()):
        path = PATHS[document["kind"]].format(namespace=document["metadata"].get("namespace", ""))
        await world.call("POST", path, document)
        created.append(f"{path}/{document['metadata']['name']}")
    client = make_client(apiserver.kubeconfig)
    # The admin may impersonate: every request of this client is authorized as user `shimshift`.
    client._client._client.headers["Impersonate-User"] = "shimshift"
    try:
        yield client
    finally:
        await client.close()
        for path in created:
            await world.call("DELETE", path)
