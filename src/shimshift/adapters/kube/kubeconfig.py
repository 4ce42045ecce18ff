"""The one kubeconfig resolver: reads what ``core.kubeconfig`` says to read, in kubectl's order.

Every command goes through :func:`load_kubeconfig` (the client, the journal's cluster identity and the
CLI options all see the same cluster): ``--kubeconfig``, else ``$KUBECONFIG`` merged, else
``~/.kube/config``, else the in-cluster service account.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from lightkube import KubeConfig
from lightkube.core.exceptions import ConfigError

from shimshift.core import kubeconfig as rules
from shimshift.core.errors import Refusal
from shimshift.core.kubeconfig import (
    KUBECONFIG_CERTIFICATES_UNUSABLE,
    KUBECONFIG_CONTEXT_UNKNOWN,
    KUBECONFIG_INVALID,
    KUBECONFIG_MISSING,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lightkube.config.kubeconfig import SingleConfig

EXEC_V1 = "client.authentication.k8s.io/v1"
EXEC_V1BETA1 = "client.authentication.k8s.io/v1beta1"
IN_CLUSTER = "the in-cluster service account"


@dataclass(frozen=True)
class Kubeconfig:
    """The context in use and where it came from (``source``: the files read, or in-cluster)."""

    single: SingleConfig
    source: str
    # The cluster's `proxy-url` (kubectl honours it; lightkube's model does not read it).
    proxy_url: str | None = None

    @property
    def server(self) -> str:
        return str(self.single.cluster.server)

    def ca_certificate(self) -> bytes | None:
        """The cluster's CA certificate as configured (PEM), or None if it names none."""
        cluster = self.single.cluster
        if cluster.certificate_auth_data:
            return base64.b64decode(cluster.certificate_auth_data)
        if cluster.certificate_auth:
            path = Path(self.single.abs_file(cluster.certificate_auth))
            try:
                return path.read_bytes()
            except OSError as error:
                raise Refusal(
                    f"cannot read the cluster's certificate-authority: {error.strerror}",
                    hint=f"fix certificate-authority in {self.source}",
                    file=str(path),
                    code=KUBECONFIG_CERTIFICATES_UNUSABLE,
                ) from error
        return None


def exec_compatible(config: dict[str, Any]) -> dict[str, Any]:
    """The kubeconfig with exec plugins of ``client.authentication.k8s.io/v1`` read as ``v1beta1``.

    lightkube 1.0.1 refuses v1 exec plugins although it only reads ``status.token`` from their output,
    which v1 and v1beta1 share (gtsystem/lightkube ``config/client_adapter.py``); gke-gcloud-auth-plugin
    and ``aws eks get-token`` then work whichever version the kubeconfig names. Pure: returns a copy.
    """
    users = []
    for entry in config.get("users") or []:
        user = dict(entry.get("user") or {}) if isinstance(entry, dict) else {}
        exec_section = user.get("exec")
        if isinstance(exec_section, dict) and exec_section.get("apiVersion") == EXEC_V1:
            user["exec"] = {**exec_section, "apiVersion": EXEC_V1BETA1}
            entry = {**entry, "user": user}
        users.append(entry)
    return {**config, "users": users}


def load_kubeconfig(
    kubeconfig: Path | None = None,
    *,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Kubeconfig:
    """The kubeconfig context to use, by kubectl's rules (see ``core/kubeconfig.py``).

    Raises :class:`Refusal` naming the file (and line, for YAML errors) when it cannot be used, when
    ``$KUBECONFIG`` names only missing files, or when the context does not exist.
    """
    env = os.environ if environ is None else environ
    search = rules.kubeconfig_search(kubeconfig, env.get(rules.ENV_VAR), home or Path.home())
    documents = []
    for path in search.files:
        document = _read(path, required=search.required)
        if document is not None:
            documents.append(rules.absolutize(document, path))
    if not documents:
        if search.origin == "default" and env.get("KUBERNETES_SERVICE_HOST"):
            return _in_cluster(context)
        raise rules.nothing_found(search)
    source = ":".join(str(path) for path in search.files if path.is_file())
    merged = exec_compatible(rules.merge(documents))
    # Every relative reference is absolute by now; fname only names the first file in lightkube's errors.
    first = next(path for path in search.files if path.is_file())
    try:
        single = KubeConfig.from_dict(merged, fname=first).get(context_name=context)
    except (ConfigError, KeyError, ValueError, TypeError) as error:
        raise Refusal(
            f"cannot use the kubeconfig: {_config_problem(error, context)}",
            hint="pass --context NAME of a context that exists (kubectl config get-contexts)",
            file=source,
            code=KUBECONFIG_CONTEXT_UNKNOWN,
        ) from error
    if single is None:
        raise Refusal(
            "the kubeconfig has no current-context", hint="pass --context NAME", file=source,
            code=KUBECONFIG_CONTEXT_UNKNOWN,
        )
    return Kubeconfig(single, source, proxy_url=_proxy_url(merged, single.context.cluster))


def _proxy_url(config: dict[str, Any], cluster: str) -> str | None:
    entry: dict[str, Any] = next(
        (item for item in config.get("clusters") or [] if isinstance(item, dict) and item.get("name") == cluster), {}
    )
    value = (entry.get("cluster") or {}).get("proxy-url")
    return str(value) if value else None


def _read(path: Path, *, required: bool) -> dict[str, Any] | None:
    try:
        text = path.read_text()
    except FileNotFoundError as error:
        if not required:
            return None
        raise Refusal(
            "kubeconfig file not found", hint="pass an existing --kubeconfig", file=str(path), code=KUBECONFIG_MISSING
        ) from error
    except OSError as error:
        raise Refusal(
            f"cannot read the kubeconfig: {error.strerror}", file=str(path), code=KUBECONFIG_INVALID
        ) from error
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "not YAML"
        raise Refusal(
            f"not a kubeconfig: {problem}", file=str(path), line=mark.line + 1 if mark is not None else None,
            code=KUBECONFIG_INVALID,
        ) from error
    if loaded is None:
        return {}  # kubectl reads an empty file as an empty config
    if not isinstance(loaded, dict):
        raise Refusal("not a kubeconfig (no mapping at the top)", file=str(path), code=KUBECONFIG_INVALID)
    return loaded


def _in_cluster(context: str | None) -> Kubeconfig:
    try:
        single = KubeConfig.from_service_account().get(context_name=context)
    except (ConfigError, OSError, KeyError) as error:
        raise Refusal(
            f"cannot use {IN_CLUSTER}: {error}", hint="pass --kubeconfig FILE (or set $KUBECONFIG)",
            code=KUBECONFIG_INVALID,
        ) from error
    assert single is not None  # from_service_account always sets its one context
    return Kubeconfig(single, IN_CLUSTER)


def _config_problem(error: Exception, context: str | None) -> str:
    if isinstance(error, KeyError):
        return f"context {context!r} refers to a cluster or user that is not defined ({error})"
    return str(error)
