"""Fixtures for the cluster side against a real kube-apiserver (no kubelets) started on loopback.

``apiserver``: one etcd + kube-apiserver v1.23.17 + kube-controller-manager (disruption controller only)
for the session. ``kube``: a lightkube AsyncClient on it. ``world``: helpers that create Nodes and Pods and
play the kubelet's part (writing node and pod *status*), each test in its own namespace and with its own
node names so tests never see each other's objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

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
