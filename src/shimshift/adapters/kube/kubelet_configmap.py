"""kube-system/kubelet-config, the ConfigMap kubeadm writes every node's /var/lib/kubelet/config.yaml from
(its ``kubelet`` key; unversioned from 1.24: cmd/kubeadm/app/phases/kubelet/config.go at v1.24.17).

The journey changes one field in it with ``--allow-cgroup-v1`` (core/journey/node_edits.py decides the
text); this module only reads and writes the key. A merge patch of that key alone leaves the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shimshift.adapters.kube.client import ApiFailure, raw_request

if TYPE_CHECKING:
    from lightkube import AsyncClient

_PATH = "/api/v1/namespaces/kube-system/configmaps/kubelet-config"
_KEY = "kubelet"
_MERGE_PATCH = "application/merge-patch+json"


async def read_kubelet_configmap(client: AsyncClient) -> str | None:
    """The ``kubelet`` document; None when the ConfigMap or the key is absent."""
    response = await raw_request(client, "GET", _PATH)
    if response.status == 404:
        return None
    if response.status != 200:
        raise ApiFailure("read ConfigMap kube-system/kubelet-config", response)
    value = (response.body.get("data") or {}).get(_KEY)
    return value if isinstance(value, str) else None


async def write_kubelet_configmap(client: AsyncClient, text: str) -> None:
    response = await raw_request(client, "PATCH", _PATH, body={"data": {_KEY: text}}, content_type=_MERGE_PATCH)
    if response.status != 200:
        raise ApiFailure("write ConfigMap kube-system/kubelet-config", response)


__all__ = ["read_kubelet_configmap", "write_kubelet_configmap"]
