"""Reads the API server dropped or asked us to repeat, tried again the way kubectl's client-go does.

client-go (k8s.io/client-go v0.23 ``rest/request.go`` and ``with_retry.go``) tries a request again, up to
10 times, when the connection was reset or closed before an answer ("connection reset by peer", EOF: an API
server shutting down, a load balancer recycling a connection), waiting 1 s, and when the answer is 429 or
5xx with a ``Retry-After`` header (priority and fairness rejecting a request under load), waiting what the
header says. Without it, one dropped connection in a 1,000-node fleet run failed a node and rolled it back
(``RemoteProtocolError: Server disconnected without sending a response``, the kwok rig at 5%).

Only reads are tried again here. client-go also repeats a write that was answered with ``Retry-After``;
shimshift's writes already decide for themselves: an eviction's 429 is the drain's to wait on (the one that
says "the disruption budget is still being processed" carries ``Retry-After: 10``, and repeating it down
here would hide ten seconds from the drain's own PDB-driven wait), and node patches re-read and retry on
conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx2

if TYPE_CHECKING:
    from collections.abc import Mapping

RETRIES = 10  # client-go's maxRetries
DISCONNECT_WAIT = 1.0  # client-go's stand-in Retry-After for a reset or closed connection
# The connection failed before an answer came, so the request may be sent again as it was.
_DROPPED = (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteError)

log = logging.getLogger(__name__)


def read_retry_wait(method: str, *, status: int | None = None, retry_after: str | None = None,
                    dropped: bool = False) -> float | None:
    """Seconds to wait before sending a request again, or None when it must not be sent again."""
    if method != "GET":
        return None
    if dropped:
        return DISCONNECT_WAIT
    if status is None or not (status == 429 or status >= 500) or retry_after is None:
        return None
    try:
        seconds = int(retry_after.strip())
    except ValueError:
        return None  # an HTTP date: the API server never sends one, and client-go ignores it too
    return float(seconds) if seconds >= 0 else None


class RetryingReads(httpx2.AsyncBaseTransport):
    """``inner``, with reads sent again as :func:`read_retry_wait` says, at most ``retries`` times."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, retries: int = RETRIES) -> None:
        self.inner = inner
        self.retries = retries

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        attempt = 0
        while True:
            try:
                response = await self.inner.handle_async_request(request)
            except _DROPPED as error:
                wait = read_retry_wait(request.method, dropped=True)
                if wait is None or attempt >= self.retries:
                    raise
                reason = f"{type(error).__name__} {error}".strip()
            else:
                wait = read_retry_wait(request.method, status=response.status_code,
                                       retry_after=response.headers.get("Retry-After"))
                if wait is None or attempt >= self.retries:
                    return response
                await response.aclose()
                reason = f"HTTP {response.status_code} Retry-After {wait:g}s"
            attempt += 1
            log.debug("GET %s: %s; again in %gs (retry %d of %d)", request.url.path, reason, wait, attempt,
                      self.retries)
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self.inner.aclose()


def environment_proxy(server: str, environ: Mapping[str, str]) -> str | None:
    """The proxy kubectl would send requests to ``server`` through, from the environment, or None.

    client-go uses Go's ``http.ProxyFromEnvironment`` (golang.org/x/net/http/httpproxy): ``HTTPS_PROXY`` for
    an https server, ``HTTP_PROXY`` for http (the upper-case name first), a proxy without a scheme is http;
    never for localhost or a loopback address; not when ``NO_PROXY`` is ``*`` or names the host: an IP, a
    CIDR, ``example.com`` (that domain and below it) or ``.example.com`` / ``*.example.com`` (below it
    only), each optionally with ``:port``. httpx2 reads the environment itself only when it builds the
    transport, and shimshift builds its own (:class:`RetryingReads`), so the same rules live here.
    """
    url = urlsplit(server)
    scheme = url.scheme.lower()
    proxy = _env(environ, f"{scheme.upper()}_PROXY") if scheme in ("http", "https") else ""
    host = (url.hostname or "").lower()
    if not proxy or not host or host == "localhost" or _is_loopback(host):
        return None
    port = str(url.port or (443 if scheme == "https" else 80))
    if any(_no_proxy_matches(entry.strip().lower(), host, port) for entry in _env(environ, "NO_PROXY").split(",")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _env(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name) or environ.get(name.lower()) or ""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _no_proxy_matches(entry: str, host: str, port: str) -> bool:
    if not entry:
        return False
    if entry == "*":
        return True
    if "/" in entry:
        try:
            return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False  # a host name against a CIDR, or no CIDR at all: Go matches neither
    wanted_port = ""
    name = entry
    if entry.startswith("["):  # [::1]:443
        name, _, rest = entry[1:].partition("]")
        wanted_port = rest.removeprefix(":")
    elif entry.count(":") == 1:
        name, wanted_port = entry.split(":")
    if wanted_port and wanted_port != port:
        return False
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(name) == ipaddress.ip_address(host)
    if name.startswith("*."):
        name = name[1:]
    if name.startswith("."):
        return host.endswith(name)
    return host == name or host.endswith(f".{name}")


def without_password(url: str) -> str:
    """``url`` fit for a message: a proxy's credentials (``http://user:secret@host``) are not shown."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}").geturl()
