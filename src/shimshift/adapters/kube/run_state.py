"""The run's copy on the cluster: one ConfigMap per run, ``shimshift-run-<id>``, in the Lease's namespace.

Layout (core/run_copy.py has the why): ``data.run`` is the run (options, start, status, who);
``binaryData["node.NAME"]`` a node's journal records, gzip'd JSON; ``data["sha256.node.NAME"]`` their
SHA-256. Each node's key is written with a JSON merge patch of that key alone, so nodes migrated at once
never overwrite each other and no read-modify-write is needed (the Lease already makes this run the only
writer). deploy/rbac.yaml grants configmaps create, get and patch in that namespace (no delete: docs/run-lease.md).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from shimshift.adapters.kube.client import ApiFailure, raw_request
from shimshift.core.errors import Refusal
from shimshift.core.run_copy import (
    MAX_BYTES,
    RUN_KEY,
    RUN_RECORD_INVALID,
    RUN_STATE_TOO_LARGE,
    SHA_PREFIX,
    CopiedRecord,
    RunCopy,
    decode_node,
    decode_run,
    encode_node,
    node_key,
    size_after,
)

if TYPE_CHECKING:
    from lightkube import AsyncClient

MERGE_PATCH = "application/merge-patch+json"
MANAGED_BY = {"app.kubernetes.io/managed-by": "shimshift"}


def configmap_name(run_id: str) -> str:
    return f"shimshift-run-{run_id.lower()}"


def _path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    return f"{base}/{name}" if name else base


class RunState:
    """One run's ConfigMap, as this run writes it. Keeps every key's size to refuse a write that would not fit."""

    def __init__(self, client: AsyncClient, namespace: str, run_id: str) -> None:
        self.client = client
        self.namespace = namespace
        self.run_id = run_id
        self.name = configmap_name(run_id)
        self._sizes: dict[str, int] = {}

    @property
    def where(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    async def write_run(self, run: RunCopy) -> None:
        """Create the ConfigMap with the run's record, or update that record (a resume, the end)."""
        text = run.run_json()
        self._sizes[RUN_KEY] = len(text)
        patch = {"data": {RUN_KEY: text}}
        response = await raw_request(
            self.client, "PATCH", _path(self.namespace, self.name), body=patch, content_type=MERGE_PATCH
        )
        if response.status == 404:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": self.name, "namespace": self.namespace, "labels": MANAGED_BY},
                "data": {RUN_KEY: text},
            }
            response = await raw_request(self.client, "POST", _path(self.namespace), body=body)
        if response.status not in (200, 201):
            raise ApiFailure(f"write {self.where}", response)

    async def write_node(self, node: str, records: list[CopiedRecord]) -> None:
        key = node_key(node)
        data, sha256 = encode_node(records)
        encoded = base64.b64encode(data).decode("ascii")
        size = len(data) + len(sha256)
        if size_after(self._sizes, key, size) > MAX_BYTES:
            raise Refusal(
                f"the run's state no longer fits {self.where} (1 MiB) with node {node}'s records",
                hint="migrate fewer nodes per run (-l SELECTOR or NODES)",
                node=node,
                code=RUN_STATE_TOO_LARGE,
            )
        patch = {"binaryData": {key: encoded}, "data": {SHA_PREFIX + key: sha256}}
        response = await raw_request(
            self.client, "PATCH", _path(self.namespace, self.name), body=patch, content_type=MERGE_PATCH
        )
        if response.status != 200:
            raise ApiFailure(f"write node {node}'s records to {self.where}", response)
        self._sizes[key] = size


async def read_run_state(client: AsyncClient, namespace: str, run_id: str) -> RunCopy | None:
    """The run as the cluster keeps it, every node's records checked; None when there is no such ConfigMap."""
    name = configmap_name(run_id)
    response = await raw_request(client, "GET", _path(namespace, name))
    if response.status == 404:
        return None
    if response.status != 200:
        raise ApiFailure(f"read ConfigMap {namespace}/{name}", response)
    where = f"ConfigMap {namespace}/{name}"
    data: dict[str, str] = response.body.get("data") or {}
    binary: dict[str, str] = response.body.get("binaryData") or {}
    if RUN_KEY not in data:
        raise Refusal("the ConfigMap has no run record", file=where, code=RUN_RECORD_INVALID)
    run = decode_run(data[RUN_KEY], where=where)
    nodes: dict[str, list[CopiedRecord]] = {}
    for key, encoded in sorted(binary.items()):
        node = key.removeprefix("node.")
        nodes[node] = decode_node(node, base64.b64decode(encoded), data.get(SHA_PREFIX + key, ""), where=where)
    return RunCopy(run.run_id, run.options, run.started_at, run.status, run.by, nodes)

