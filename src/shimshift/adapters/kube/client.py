"""Building the Kubernetes client, and the few raw calls lightkube has no typed method for.

lightkube's ``AsyncClient`` does the typed work (get/patch/create/watch). Three things need raw requests on
the same authenticated connection: discovery (``GET /api/v1``, to pick the Eviction version like kubectl),
a policy/v1beta1 Eviction body (lightkube-models 1.37 only has policy/v1), and lists with a label selector
given as a string (``-l``/``--pod-selector`` pass kubectl syntax through untouched) that we page through
as plain dicts, so the audit never decodes more than one page into objects.
Why lightkube: docs/architecture.md#libraries-and-why.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx2
from lightkube import AsyncClient
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.models import User
from lightkube.core.exceptions import ApiError, ConfigError
from lightkube.types import OnErrorAction, OnErrorResult

# exec_compatible is re-exported: it lived here before the resolver had a module of its own.
from shimshift.adapters.kube.kubeconfig import Kubeconfig, load_kubeconfig
from shimshift.adapters.kube.kubeconfig import exec_compatible as exec_compatible
from shimshift.adapters.kube.transport import RetryingReads, environment_proxy, without_password
from shimshift.core.errors import Refusal
from shimshift.core.kubeconfig import KUBECONFIG_CERTIFICATES_UNUSABLE, PROXY_UNUSABLE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from pathlib import Path

FIELD_MANAGER = "shimshift"
JSON = dict[str, Any]


def make_client(
    kubeconfig: Path | None = None,
    *,
    context: str | None = None,
    timeout: float = 30.0,
    resolved: Kubeconfig | None = None,
) -> AsyncClient:
    """An ``AsyncClient`` for ``--kubeconfig``/``--context``, resolved by :func:`load_kubeconfig`
    (kubectl's rules), or for an already ``resolved`` kubeconfig.

    Raises :class:`Refusal` naming the file when the kubeconfig or the context cannot be used.
    """
    config = resolved if resolved is not None else load_kubeconfig(kubeconfig, context=context)
    # A context without a user is kubectl's anonymous request; lightkube asserts that a user exists.
    user = config.single.user or User()
    single = config.single._replace(user=user)
    # As client-go: the cluster's proxy-url wins over the environment's proxy for every request.
    proxy = config.proxy_url or environment_proxy(single.cluster.server, os.environ)
    try:
        # httpx2 uses a transport's own TLS settings, so the transport gets the context lightkube would build.
        tls = verify_cluster(single.cluster, user, single.abs_file)
        inner = httpx2.AsyncHTTPTransport(verify=tls, proxy=proxy)
        return AsyncClient(
            single, timeout=httpx2.Timeout(timeout), field_manager=FIELD_MANAGER, transport=RetryingReads(inner)
        )
    except (OSError, ssl.SSLError, ConfigError) as error:
        # The CA bundle and client certificate are loaded here: a missing or unreadable one ends up here.
        reason = getattr(error, "strerror", None) or str(error)
        raise Refusal(
            f"cannot use the certificates of context {config.single.context_name!r}: {reason}",
            hint="fix certificate-authority / client-certificate / client-key in the kubeconfig",
            file=config.source,
            code=KUBECONFIG_CERTIFICATES_UNUSABLE,
        ) from error
    except (ValueError, ImportError) as error:  # httpx2.InvalidURL is a ValueError; SOCKS needs socksio
        if proxy is None:
            raise
        if config.proxy_url:
            raise Refusal(
                f"cannot use the cluster's proxy-url {without_password(proxy)}: {error}",
                hint="proxy-url must be an http:// or https:// proxy",
                file=config.source,
                code=PROXY_UNUSABLE,
            ) from error
        raise Refusal(
            f"cannot use the proxy {without_password(proxy)} that HTTPS_PROXY / HTTP_PROXY name for "
            f"{single.cluster.server}: {error}",
            hint="fix or unset the variable (an http:// or https:// proxy), or add the server's host to NO_PROXY",
            code=PROXY_UNUSABLE,
        ) from error


@dataclass(frozen=True)
class RawResponse:
    status: int
    body: JSON

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", ""))

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


def _http(client: AsyncClient) -> httpx2.AsyncClient:
    # lightkube keeps its authenticated httpx client here; using it keeps one connection pool and the
    # kubeconfig's auth (token, exec plugin, client cert) for the raw calls too.
    http: httpx2.AsyncClient = client._client._client
    return http


async def raw_request(
    client: AsyncClient,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    body: JSON | None = None,
    content_type: str = "application/json",
) -> RawResponse:
    """One request; never raises for an HTTP status (the caller looks at ``status``)."""
    content = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": content_type} if content is not None else None
    response = await _http(client).request(
        method, path, params=dict(params or {}), content=content, headers=headers
    )
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = {"message": response.text[:500]}
    return RawResponse(response.status_code, data if isinstance(data, dict) else {"items": data})


class ApiFailure(Exception):
    """An unexpected API answer, with the status code and the server's message."""

    def __init__(self, what: str, response: RawResponse) -> None:
        super().__init__(f"{what}: HTTP {response.status} {response.reason} {response.message}".strip())
        self.status = response.status
        self.response = response

    @classmethod
    def of(cls, what: str, error: ApiError) -> ApiFailure:
        """The same failure from a typed lightkube call's ApiError (its Status object)."""
        return cls(what, RawResponse(error.status.code or 0, error.status.to_dict()))


def retry_watch(error: Exception, count: int) -> OnErrorResult:
    """A watch that fails is started again from where it was, backing off up to 5 s."""
    return OnErrorResult(OnErrorAction.RETRY, sleep=min(0.5 * count, 5.0))


def status_code(error: ApiError) -> int:
    return error.status.code or 0


async def list_pages(
    client: AsyncClient, path: str, *, params: Mapping[str, str] | None = None, chunk_size: int = 500
) -> AsyncIterator[list[JSON]]:
    """Yield one page of items at a time (``limit`` + ``continue``), so memory stays at one page."""
    query = dict(params or {})
    if chunk_size:
        query["limit"] = str(chunk_size)
    while True:
        response = await raw_request(client, "GET", path, params=query)
        if response.status != 200:
            raise ApiFailure(f"GET {path}", response)
        items = response.body.get("items") or []
        yield items
        token = (response.body.get("metadata") or {}).get("continue")
        if not token:
            return
        query["continue"] = token


async def eviction_resources(client: AsyncClient) -> list[JSON]:
    """The ``resources`` list of ``GET /api/v1`` (kubectl's CheckEvictionSupport reads it)."""
    response = await raw_request(client, "GET", "/api/v1")
    if response.status != 200:
        raise ApiFailure("GET /api/v1", response)
    resources = response.body.get("resources") or []
    return [item for item in resources if isinstance(item, dict)]
