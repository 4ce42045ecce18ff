"""A connection to the real kube-apiserver that drops before the answer: a read is sent again, a write is not.

Between shimshift and the API server sits a loopback TCP proxy that passes the TLS handshake and then
closes the connection as soon as the client has sent its request, before any answer comes back: what a
client sees when an API server shuts down or a load balancer recycles a connection under it (seen on the
1,000-node kwok rig: ``RemoteProtocolError: Server disconnected without sending a response``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
import yaml
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Namespace

from shimshift.adapters.kube.client import make_client
from shimshift.adapters.kube.transport import DISCONNECT_WAIT
from tests.loopback_relay import pump, serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.apiserver_fixture import LocalApiServer

APPLICATION_DATA = 0x17  # TLS record type


class CuttingProxy:
    """Forwards loopback TCP to the API server; the next ``to_cut`` new connections are closed right after
    the client's request. Under TLS 1.3 the client's first application-data record is its Finished
    message, the second one its HTTP request."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.to_cut = 0
        self.connections = 0
        self.cut = 0
        self.port = 0

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        cutting = self.to_cut > 0
        self.to_cut -= cutting
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        answers = asyncio.create_task(pump(server_reader, client_writer))
        pending = b""
        application_records = 0
        try:
            while data := await client_reader.read(65536):
                if not cutting:
                    server_writer.write(data)
                    continue
                pending += data
                while len(pending) >= 5 and len(pending) >= 5 + int.from_bytes(pending[3:5], "big"):
                    size = 5 + int.from_bytes(pending[3:5], "big")
                    record, pending = pending[:size], pending[size:]
                    application_records += record[0] == APPLICATION_DATA
                    if application_records == 2:
                        self.cut += 1
                        return
                    server_writer.write(record)
        finally:
            answers.cancel()
            for writer in (server_writer, client_writer):
                writer.close()


@pytest.fixture
async def proxy(apiserver: LocalApiServer) -> AsyncIterator[CuttingProxy]:
    cutting = CuttingProxy(apiserver.port)
    async with serving(cutting.handle) as port:
        cutting.port = port
        yield cutting


def through(apiserver: LocalApiServer, proxy: CuttingProxy, path: Path) -> Any:
    config = yaml.safe_load(apiserver.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path.write_text(yaml.safe_dump(config))
    return make_client(path)


async def test_a_read_is_sent_again_after_client_gos_wait(
    apiserver: LocalApiServer, proxy: CuttingProxy, tmp_path: Path
) -> None:
    client = through(apiserver, proxy, tmp_path / "kubeconfig")
    try:
        proxy.to_cut = 2
        started = time.monotonic()
        namespace = await client.get(Namespace, "default")
        waited = time.monotonic() - started
    finally:
        await client.close()
    assert namespace.metadata is not None and namespace.metadata.name == "default"
    assert (proxy.cut, proxy.connections) == (2, 3)
    assert 2 * DISCONNECT_WAIT <= waited < 2 * DISCONNECT_WAIT + 5, waited


async def test_a_write_is_not_sent_again(apiserver: LocalApiServer, proxy: CuttingProxy, kube: Any,
                                         tmp_path: Path) -> None:
    client = through(apiserver, proxy, tmp_path / "kubeconfig")
    name = f"dropped-{uuid.uuid4().hex[:8]}"
    try:
        proxy.to_cut = 1
        # A TCP close with no TLS close_notify reads as ReadError; a server closing cleanly as RemoteProtocolError.
        with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
            await client.create(ConfigMap(metadata=ObjectMeta(name=name), data={"a": "b"}), namespace="default")
    finally:
        await client.close()
    assert (proxy.cut, proxy.connections) == (1, 1)
    names = [item.metadata.name async for item in kube.list(ConfigMap, namespace="default") if item.metadata]
    assert name not in names
