"""The API server's failures in one line each: what went wrong, with which server, and what to do.

:func:`translate` turns what httpx2, lightkube and our own raw calls raise (connection refused, TLS,
timeouts, an exec credential plugin that fails, 401, 403, any other unexpected status) into
:class:`~shimshift.core.errors.Unavailable` naming the API server's URL. ``open_client`` in
``client.py`` applies it to everything that escapes a command's use of the client.
"""

from __future__ import annotations

import errno
import os
import re
import ssl
from typing import Any

import httpx2
from lightkube.core.exceptions import ApiError, ConfigError

from shimshift.adapters.kube.client import ApiFailure
from shimshift.core.errors import Unavailable

RBAC_FILE = "deploy/rbac.yaml"
# The authorizer's wording (k8s.io/apiserver pkg/endpoints/handlers/responsewriters/errors.go, forbiddenMessage):
# 'User "u" cannot patch resource "nodes" in API group "" at the cluster scope' (or 'in the namespace "x"').
_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?(?: (?P<scope>at the cluster scope|in the namespace "[^"]*"))?'
)


def translate(error: BaseException, server: str) -> Unavailable | None:
    """``error`` as one line about the API server at ``server``; None for anything that is not about it."""
    peer = f"the API server {server}"
    if isinstance(error, httpx2.TimeoutException):
        return Unavailable(peer, f"no answer in time ({type(error).__name__})", hint=_CHECK_SERVER)
    if isinstance(error, httpx2.TransportError):
        return _transport(peer, error)
    if isinstance(error, ApiFailure):
        return _status(peer, error.status, error.response.reason, error.response.message, error.response.body)
    if isinstance(error, ApiError):
        status = error.status
        body: dict[str, Any] = {"details": status.details.to_dict()} if status.details else {}
        return _status(peer, status.code or 0, status.reason or "", status.message or "", body)
    if isinstance(error, ConfigError):
        # Raised while the request is sent: the exec credential plugin failed or its output is unusable.
        return Unavailable(
            peer,
            f"no credentials to send: {_first_line(str(error))}",
            hint="run the kubeconfig's exec plugin by hand to see why it fails",
        )
    return None


_CHECK_SERVER = "check `server:` in the kubeconfig and that the API server runs and is reachable from here"


def _transport(peer: str, error: httpx2.TransportError) -> Unavailable:
    verify = _find(error, ssl.SSLCertVerificationError)
    if verify is not None:
        reason = verify.verify_message or _first_line(str(verify))
        return Unavailable(
            peer,
            f"TLS verification failed: {reason}",
            hint="the kubeconfig's certificate-authority must be the CA that signed the API server's "
            "certificate (and `server:` a name that certificate lists)",
        )
    tls = _find(error, ssl.SSLError)
    if tls is not None:
        return Unavailable(peer, f"TLS failed: {tls.reason or _first_line(str(tls))}", hint=_CHECK_SERVER)
    os_error = _find(error, OSError, with_errno=True)
    if os_error is not None and os_error.errno is not None:
        reason = os.strerror(os_error.errno).lower()
        if os_error.errno == errno.ECONNREFUSED:
            reason += " (nothing listens there)"
        return Unavailable(peer, f"cannot connect: {reason}", hint=_CHECK_SERVER)
    if isinstance(error, httpx2.ConnectError):
        return Unavailable(peer, f"cannot connect: {_first_line(str(error)) or 'no reason given'}", hint=_CHECK_SERVER)
    return Unavailable(
        peer, f"the connection failed: {type(error).__name__} {_first_line(str(error))}".rstrip(), hint=_CHECK_SERVER
    )


def _status(peer: str, code: int, reason: str, message: str, body: dict[str, Any]) -> Unavailable:
    if code == 401:
        return Unavailable(
            peer,
            "did not accept the credentials (401 Unauthorized): the kubeconfig's token or client certificate "
            "is invalid or expired",
            hint="get fresh credentials for this context, e.g. from the cluster's admin.conf or your "
            "provider's login command",
        )
    if code == 403:
        found = _FORBIDDEN.search(message)
        if found is not None:
            group = found["group"]
            resource = found["resource"] + (f".{group}" if group else "")
            scope = " (cluster scope)" if found["scope"] == "at the cluster scope" else ""
            return Unavailable(
                peer,
                f'403 Forbidden: user "{found["user"]}" may not {found["verb"]} {resource}{scope}',
                hint=f'RBAC must grant "{found["verb"]}" on "{resource}"; {RBAC_FILE} lists what shimshift needs',
            )
        return Unavailable(
            peer, f"403 Forbidden: {_first_line(message)}", hint=f"{RBAC_FILE} lists what shimshift needs"
        )
    details = body.get("details") if isinstance(body.get("details"), dict) else None
    what = f"HTTP {code} {reason}".rstrip()
    if details and details.get("kind") and details.get("name"):
        what += f" for {details['kind']} {details['name']}"
    return Unavailable(peer, f"{what}: {_first_line(message)}" if message else what)


def _find(error: BaseException, kind: type[Any], *, with_errno: bool = False) -> Any:
    """The first exception of ``kind`` in ``error``'s cause/context chain (httpx wraps the socket's)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kind) and (not with_errno or getattr(current, "errno", None)):
            return current
        current = current.__cause__ or current.__context__
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
