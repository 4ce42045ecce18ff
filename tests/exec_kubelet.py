"""A stand-in for a kubelet's streaming endpoint, for pods/exec through a real kube-apiserver on loopback.

The API server resolves a pod's node to the kubelet's address (``status.addresses``, port
``status.daemonEndpoints.kubeletEndpoint.Port``), dials it over TLS (the fixture's API server has no
``--kubelet-certificate-authority``, so it does not verify the kubelet's certificate, as a default kubeadm
1.23 cluster does not) and forwards the WebSocket upgrade of ``/exec/<namespace>/<pod>/<container>``. This
stand-in answers that upgrade as the kubelet's streaming server does (the remote-command protocol
``v4.channel.k8s.io``: channel byte, then data; the error channel's ``metav1.Status`` ends the command), or
refuses it as a broken runtime stream would. What shimshift does with the answer is tested against the API
server's real proxying; the real kubelet and cri-dockerd answer in the lab's e2e tests.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wsproto
import wsproto.events

STATUS_SUCCESS = {"metadata": {}, "status": "Success"}


def exit_status(code: int) -> dict[str, Any]:
    """The Status the kubelet sends when the command exited non-zero (remotecommand's NonZeroExitCode)."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


@dataclass
class ExecKubelet:
    """Serves one answer to every exec: ``stdout`` then ``status``; ``status=None`` closes without one;
    ``refuse`` answers the upgrade with that HTTP status instead."""

    cert: Path
    key: Path
    stdout: bytes = b""
    status: dict[str, Any] | None = field(default_factory=lambda: dict(STATUS_SUCCESS))
    refuse: int | None = None
    targets: list[str] = field(default_factory=list)  # the request lines the API server sent
    subprotocols: list[list[str]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> ExecKubelet:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            connection = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
            head = await reader.readuntil(b"\r\n\r\n")
            self.targets.append(head.split(b"\r\n", 1)[0].decode())
            if self.refuse is not None:
                body = json.dumps({"kind": "Status", "status": "Failure", "message": "stream refused"}).encode()
                writer.write(
                    f"HTTP/1.1 {self.refuse} Refused\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
                )
                await writer.drain()
                return
            connection.receive_data(head)
            request = next(event for event in connection.events() if isinstance(event, wsproto.events.Request))
            self.subprotocols.append(list(request.subprotocols))
            chosen = "v4.channel.k8s.io" if "v4.channel.k8s.io" in request.subprotocols else None
            out = connection.send(wsproto.events.AcceptConnection(subprotocol=chosen))
            if self.stdout:
                out += connection.send(wsproto.events.BytesMessage(b"\x01" + self.stdout))
            if self.status is not None:
                out += connection.send(wsproto.events.BytesMessage(b"\x03" + json.dumps(self.status).encode()))
            out += connection.send(wsproto.events.CloseConnection(code=1000))
            writer.write(out)
            await writer.drain()
            await asyncio.wait_for(reader.read(), 5)  # until the client closes its side
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError):
            pass
        finally:
            writer.close()
