"""The API server reached through the proxy the kubeconfig or the environment names, as kubectl reaches it.

A loopback HTTP CONNECT proxy stands between shimshift and the real kube-apiserver. The kubeconfig names
the server ``https://kubernetes:PORT`` (a name in the server's certificate that does not resolve here), so
only a client that hands the name to the proxy can reach it; the proxy tunnels to 127.0.0.1. Loopback
addresses are never proxied (Go's rule), which is why the test needs a name.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import yaml
from click.testing import CliRunner
from lightkube.resources.core_v1 import Namespace

from shimshift.adapters.kube.client import make_client
from shimshift.cli.main import main
from tests.loopback_relay import pump, serving

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.apiserver_fixture import LocalApiServer

pytestmark = pytest.mark.e2e


class ConnectProxy:
    """Answers CONNECT kubernetes:PORT by tunnelling to the API server on loopback; refuses anything else."""

    def __init__(self, apiserver_port: int) -> None:
        self.apiserver_port = apiserver_port
        self.requests: list[str] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].decode()
        self.requests.append(request_line)
        if request_line != f"CONNECT kubernetes:{self.apiserver_port} HTTP/1.1":
            writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.apiserver_port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        back = asyncio.create_task(pump(upstream_reader, writer))
        try:
            await pump(reader, upstream_writer)
        finally:
            back.cancel()
            upstream_writer.close()
            writer.close()


@pytest.fixture
async def proxy(apiserver: LocalApiServer) -> AsyncIterator[ConnectProxy]:
    connect = ConnectProxy(apiserver.port)
    async with serving(connect.handle) as port:
        connect.port = port
        yield connect


def named_server(apiserver: LocalApiServer, path: Path, **cluster: str) -> Path:
    config = yaml.safe_load(apiserver.kubeconfig.read_text())
    config["clusters"][0]["cluster"].update(server=f"https://kubernetes:{apiserver.port}", **cluster)
    path.write_text(yaml.safe_dump(config))
    return path


async def test_requests_go_through_https_proxy(
    apiserver: LocalApiServer, proxy: ConnectProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = make_client(named_server(apiserver, tmp_path / "kubeconfig"))
    try:
        namespace = await client.get(Namespace, "default")
    finally:
        await client.close()
    assert namespace.metadata is not None and namespace.metadata.name == "default"
    assert proxy.requests == [f"CONNECT kubernetes:{apiserver.port} HTTP/1.1"]


async def test_the_clusters_proxy_url_wins_over_the_environment(
    apiserver: LocalApiServer, proxy: ConnectProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # the discard port: nothing listens there
    kubeconfig = named_server(apiserver, tmp_path / "kubeconfig", **{"proxy-url": f"http://127.0.0.1:{proxy.port}"})
    client = make_client(kubeconfig)
    try:
        namespace = await client.get(Namespace, "default")
    finally:
        await client.close()
    assert namespace.metadata is not None and namespace.metadata.name == "default"
    assert proxy.requests == [f"CONNECT kubernetes:{apiserver.port} HTTP/1.1"]


async def test_a_proxy_that_cannot_be_used_is_refused_without_its_password(
    apiserver: LocalApiServer, tmp_path: Path
) -> None:
    kubeconfig = named_server(apiserver, tmp_path / "kubeconfig")
    environment = {"HTTPS_PROXY": "socks5://ops:s3cret@127.0.0.1:1080", "NO_PROXY": "", "no_proxy": ""}
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["audit", "--kubeconfig", str(kubeconfig)], env=environment
    )
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "cannot use the proxy socks5://ops:***@127.0.0.1:1080" in line, line
    assert "s3cret" not in result.output
