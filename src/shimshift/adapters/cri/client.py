"""A thin async client for the CRI RuntimeService (runtime.v1) over a unix socket.

Only what preflight and verify need: Version, Status, ListPodSandbox, ListContainers
(cri-dockerd ``core/docker_service.go``; docs/runtime-facts.md#cri-dockerd: it answers ``Version`` with
``RuntimeName: docker`` and its ``Status`` reports ``NetworkReady=false`` until its network plugin is
ready). Every call has a deadline; a socket that is missing or does not answer becomes `CriUnavailable`,
naming the node and the socket and what to check.

To reach a node's socket, `connect_cri` forwards it through the node's `NodeAccess` (over SSH,
``forward_local_path``; locally, the path itself).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from shimshift.adapters.cri.generated import api_pb2, api_pb2_grpc
from shimshift.core.wellknown import CRI_DOCKERD_SOCKET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from shimshift.adapters.node_access import NodeAccess

DEFAULT_TIMEOUT = 10.0
# The kubelet's own CRI client allows 16 MiB responses; ListContainers on a busy node can be large.
_MAX_MESSAGE = 16 * 1024 * 1024
# What the API version was when this client was written (``VersionRequest.version`` is informational).
_KUBELET_API_VERSION = "v1"


@dataclass(frozen=True)
class CriVersion:
    version: str
    runtime_name: str
    runtime_version: str
    runtime_api_version: str


@dataclass(frozen=True)
class RuntimeCondition:
    type: str
    status: bool
    reason: str
    message: str


@dataclass(frozen=True)
class CriStatus:
    runtime_ready: bool
    network_ready: bool
    conditions: tuple[RuntimeCondition, ...]

    def condition(self, kind: str) -> RuntimeCondition | None:
        return next((c for c in self.conditions if c.type == kind), None)


@dataclass(frozen=True)
class PodSandboxInfo:
    id: str
    name: str
    namespace: str
    uid: str
    attempt: int
    state: str  # "SANDBOX_READY" | "SANDBOX_NOTREADY"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    created_at: int = 0  # nanoseconds since the epoch


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    attempt: int
    pod_sandbox_id: str
    image: str
    image_ref: str
    state: str  # "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    created_at: int = 0


class CriError(Exception):
    """A CRI call failed for a reason other than the socket not answering."""

    def __init__(self, node: str | None, message: str) -> None:
        super().__init__(f"node {node}: {message}" if node else message)
        self.node = node


class CriUnavailable(CriError):
    """Nothing answers on the CRI socket (missing, refused, or no answer within the deadline)."""


class CriClient:
    """RuntimeService calls on ``socket_path`` (a local unix socket path).

    ``node`` and ``remote_socket`` only shape error messages (the socket as the node sees it, when
    ``socket_path`` is a forward of it). Use as ``async with CriClient(...) as cri:`` or call `close`.
    """

    def __init__(
        self,
        socket_path: str,
        *,
        node: str | None = None,
        remote_socket: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not socket_path.startswith("/"):
            raise ValueError(f"socket path must be absolute, got {socket_path!r}")
        self._node = node
        self._shown_socket = remote_socket or socket_path
        self._timeout = timeout
        self._channel = aio.insecure_channel(
            f"unix://{socket_path}",
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ],
        )
        # grpc ships no type information; the messages are typed (api_pb2.pyi), the stub is not.
        stub: Any = api_pb2_grpc.RuntimeServiceStub
        self._runtime: Any = stub(self._channel)

    async def __aenter__(self) -> CriClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def version(self) -> CriVersion:
        reply = await self._call("Version", api_pb2.VersionRequest(version=_KUBELET_API_VERSION))
        return CriVersion(
            version=reply.version,
            runtime_name=reply.runtime_name,
            runtime_version=reply.runtime_version,
            runtime_api_version=reply.runtime_api_version,
        )

    async def status(self) -> CriStatus:
        reply = await self._call("Status", api_pb2.StatusRequest(verbose=False))
        conditions = tuple(
            RuntimeCondition(type=c.type, status=c.status, reason=c.reason, message=c.message)
            for c in reply.status.conditions
        )

        def ready(kind: str) -> bool:
            return any(c.type == kind and c.status for c in conditions)

        return CriStatus(
            runtime_ready=ready("RuntimeReady"), network_ready=ready("NetworkReady"), conditions=conditions
        )

    async def list_pod_sandboxes(self, *, ready_only: bool = True) -> list[PodSandboxInfo]:
        request = api_pb2.ListPodSandboxRequest()
        if ready_only:
            request.filter.state.state = api_pb2.SANDBOX_READY
        reply = await self._call("ListPodSandbox", request)
        return [
            PodSandboxInfo(
                id=item.id,
                name=item.metadata.name,
                namespace=item.metadata.namespace,
                uid=item.metadata.uid,
                attempt=item.metadata.attempt,
                state=api_pb2.PodSandboxState.Name(item.state),
                labels=dict(item.labels),
                annotations=dict(item.annotations),
                created_at=item.created_at,
            )
            for item in reply.items
        ]

    async def list_containers(
        self, *, running_only: bool = False, pod_sandbox_id: str | None = None
    ) -> list[ContainerInfo]:
        request = api_pb2.ListContainersRequest()
        if running_only:
            request.filter.state.state = api_pb2.CONTAINER_RUNNING
        if pod_sandbox_id:
            request.filter.pod_sandbox_id = pod_sandbox_id
        reply = await self._call("ListContainers", request)
        return [
            ContainerInfo(
                id=item.id,
                name=item.metadata.name,
                attempt=item.metadata.attempt,
                pod_sandbox_id=item.pod_sandbox_id,
                image=item.image.image,
                image_ref=item.image_ref,
                state=api_pb2.ContainerState.Name(item.state),
                labels=dict(item.labels),
                annotations=dict(item.annotations),
                created_at=item.created_at,
            )
            for item in reply.containers
        ]

    async def _call(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self._runtime, method)(request, timeout=self._timeout)
        except aio.AioRpcError as exc:
            raise self._translate(method, exc) from exc

    def _translate(self, method: str, exc: aio.AioRpcError) -> CriError:
        code, details = exc.code(), exc.details() or ""
        where = f"CRI socket {self._shown_socket}"
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            answer = (
                "did not answer in time" if code == grpc.StatusCode.DEADLINE_EXCEEDED else "is not answering"
            )
            return CriUnavailable(
                self._node,
                f"{where} {answer} ({method}: {details}); check `systemctl status cri-docker.socket "
                "cri-docker.service` and `journalctl -u cri-docker` on the node",
            )
        if code == grpc.StatusCode.UNIMPLEMENTED and "runtime.v1" in details:
            # cri-dockerd 0.2.x serves only v1alpha2 (Mirantis/cri-dockerd#136, Mirantis/cri-dockerd#137).
            return CriError(
                self._node,
                f"{where} does not serve CRI runtime.v1 ({details}); cri-dockerd older than 0.3.0 "
                "speaks only v1alpha2: install cri-dockerd 0.3.x",
            )
        return CriError(self._node, f"{where}: {method} failed with {code.name}: {details}")


@contextlib.asynccontextmanager
async def connect_cri(
    access: NodeAccess,
    remote_socket: str = CRI_DOCKERD_SOCKET,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> AsyncIterator[CriClient]:
    """A `CriClient` for ``remote_socket`` on the node behind ``access`` (forwarded over SSH if remote)."""
    async with access.open_unix_socket_forward(remote_socket) as local:
        client = CriClient(local, node=access.node, remote_socket=remote_socket, timeout=timeout)
        try:
            yield client
        finally:
            await client.close()
