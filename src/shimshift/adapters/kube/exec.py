"""Exec into a container over the API, the way kubectl 1.30+ does: a WebSocket to pods/exec.

The stream goes API server -> kubelet -> the container runtime's streaming server (cri-dockerd's, or
dockershim's inside the kubelet), so an answer proves the path ``kubectl exec`` takes on this node.

The protocol is the Kubernetes remote-command one over WebSocket (k8s.io/apimachinery
pkg/util/remotecommand/constants.go and pkg/util/httpstream/wsstream/conn.go at kubernetes v1.23.17):
every binary message starts with its channel (1 stdout, 2 stderr, 3 error), and the error channel carries a
``metav1.Status`` when the command is over: ``Success``, or ``Failure`` with the exit code as the cause
``ExitCode`` (reason ``NonZeroExitCode``) or a message from the runtime. ``v5.channel.k8s.io`` is offered
first, as kubectl does (the API server of 1.30+ negotiates it and, from 1.36 with ExtendWebSocketsToKubelet,
hands the WebSocket on to the kubelet, which is the path that breaks with cri-dockerd:
Mirantis/cri-dockerd#560); ``v4.channel.k8s.io`` is what older API servers speak.

The request is a GET: RBAC checks the verb ``get`` on pods/exec, and API servers with
AuthorizePodWebsocketUpgradeCreatePermission (1.35+) also ``create`` (deploy/rbac.yaml grants both).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx2
import wsproto.events
from httpx2.websockets import AsyncWebSocketSession, HTTPXWSException, WebSocketDisconnect

from shimshift.adapters.kube.client import _http
from shimshift.core.actions import ExecOutcome

if TYPE_CHECKING:
    from lightkube import AsyncClient

SUBPROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
STDOUT, STDERR, ERROR = 1, 2, 3
MAX_OUTPUT = 64 * 1024  # the pause's -v is one line; a chatty command is cut, not buffered without end


def exec_params(container: str, command: Sequence[str]) -> httpx2.QueryParams:
    """The query of pods/exec: one ``command`` per word, stdout and stderr, no stdin, no TTY."""
    words = [("command", word) for word in command]
    return httpx2.QueryParams([*words, ("container", container), ("stdout", "true"), ("stderr", "true")])


def outcome_from_status(status: dict[str, Any], stdout: bytes, stderr: bytes) -> ExecOutcome:
    """The error channel's ``metav1.Status`` as an ExecOutcome."""
    if status.get("status") == "Success":
        return ExecOutcome(0, stdout, stderr)
    causes = (status.get("details") or {}).get("causes") or []
    for cause in causes:
        if cause.get("reason") == "ExitCode":
            try:
                return ExecOutcome(int(cause.get("message", "")), stdout, stderr, str(status.get("message", "")))
            except ValueError:
                break
    return ExecOutcome(None, stdout, stderr, str(status.get("message") or status))


async def exec_in_pod(
    client: AsyncClient, namespace: str, name: str, container: str, command: Sequence[str], *, timeout: float
) -> ExecOutcome:
    """Run ``command`` in the container and wait up to ``timeout`` seconds for it to finish."""
    path = f"/api/v1/namespaces/{namespace}/pods/{name}/exec"
    stdout, stderr = bytearray(), bytearray()
    try:
        # The handshake by hand rather than httpx2's ``websocket()``: a refused upgrade's body (the API server's
        # Status, e.g. the 403 naming the missing verb) is read before the response is closed.
        async with _http(client).stream(
            "GET", path, params=exec_params(container, command), headers=handshake_headers(), timeout=timeout
        ) as response:
            if response.status_code != 101:
                return ExecOutcome(failure=_refusal(response, await response.aread()), status=response.status_code)
            outcome: ExecOutcome | None = None
            try:
                async with AsyncWebSocketSession(response.extensions["network_stream"], response=response) as stream:
                    # _read catches what receiving raises; what leaves this block (closing a stream the other
                    # side already dropped) comes out as an ExceptionGroup of the session's task group.
                    outcome = await _read(stream, stdout, stderr, timeout)
            except ExceptionGroup as group:
                if outcome is None:  # the runtime's answer, when it came, stands whatever the close did
                    failure = _broken(group.exceptions[0], timeout)
                    return ExecOutcome(None, bytes(stdout), bytes(stderr), failure=failure)
            assert outcome is not None
            return outcome
    except (HTTPXWSException, httpx2.TransportError, TimeoutError) as broken:
        return ExecOutcome(None, bytes(stdout), bytes(stderr), failure=_broken(broken, timeout))


def handshake_headers() -> dict[str, str]:
    """RFC 6455's opening handshake, offering the remote-command subprotocols."""
    return {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Key": base64.b64encode(secrets.token_bytes(16)).decode(),
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": ", ".join(SUBPROTOCOLS),
    }


async def _read(stream: AsyncWebSocketSession, stdout: bytearray, stderr: bytearray, timeout: float) -> ExecOutcome:
    while True:
        try:
            event = await stream.receive(timeout=timeout)
        except WebSocketDisconnect as closed:
            # Closed without a Status on the error channel: the runtime never said how the command ended.
            why = f" ({closed.code} {closed.reason})" if closed.reason else ""
            return ExecOutcome(None, bytes(stdout), bytes(stderr),
                               failure=f"the stream closed before the runtime answered{why}")
        except (HTTPXWSException, TimeoutError) as broken:
            return ExecOutcome(None, bytes(stdout), bytes(stderr), failure=_broken(broken, timeout))
        if not isinstance(event, wsproto.events.BytesMessage) or not event.data:
            continue
        channel, data = event.data[0], bytes(event.data[1:])
        if channel == STDOUT:
            stdout += data[: MAX_OUTPUT - len(stdout)]
        elif channel == STDERR:
            stderr += data[: MAX_OUTPUT - len(stderr)]
        elif channel == ERROR and data:
            try:
                status = json.loads(data)
            except ValueError:  # not a Status: kept readable as the runtime's message
                return ExecOutcome(None, bytes(stdout), bytes(stderr), data.decode("utf-8", "replace"))
            return outcome_from_status(status if isinstance(status, dict) else {}, bytes(stdout), bytes(stderr))


def _broken(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g}s"
    return f"{type(error).__name__}: {error}".rstrip(": ")


def _refusal(response: httpx2.Response, body: bytes) -> str:
    """The API server's reason for not upgrading: its Status message, else the status line."""
    try:
        status = json.loads(body)
    except ValueError:
        status = {}
    message = status.get("message") if isinstance(status, dict) else None
    return f"HTTP {response.status_code}" + (f": {message}" if message else f" {response.reason_phrase}".rstrip())


__all__ = ["SUBPROTOCOLS", "exec_in_pod", "exec_params", "handshake_headers", "outcome_from_status"]
