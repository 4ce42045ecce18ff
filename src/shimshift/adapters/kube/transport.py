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
import logging

import httpx2

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
