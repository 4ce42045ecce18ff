"""Node changes that never overwrite somebody else's: cordon ownership and the cri-socket annotation.

Every change is a JSON merge patch carrying the ``metadata.resourceVersion`` we read, so the API server
rejects it with 409 Conflict if the node changed in between (a kubelet status update, another operator's
label); we then read again, decide again and retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Node
from lightkube.types import PatchType

from shimshift.adapters.kube.client import JSON, ApiFailure, status_code
from shimshift.adapters.kube.events import emit_node_event
from shimshift.core.errors import OPTION_INVALID, Refusal
from shimshift.core.fleet import NODE_NOT_FOUND
from shimshift.core.wellknown import (
    CORDONED_BY_ANNOTATION,
    CRI_DOCKERD_ENDPOINT,
    CRI_SOCKET_ANNOTATION,
    PREVIOUS_CRI_SOCKET_ANNOTATION,
)

# Finding code (docs/findings.md).
NODE_UPDATE_CONFLICT = "node-update-conflict"

if TYPE_CHECKING:
    from collections.abc import Callable

    from lightkube import AsyncClient

# Written when the node had no cri-socket annotation, so a restore after a crash removes ours.
NO_PREVIOUS = "-"


async def get_node(client: AsyncClient, node: str) -> JSON:
    try:
        found = await client.get(Node, node)
    except ApiError as error:
        if status_code(error) == 404:
            raise Refusal(
                f"node {node} does not exist", "check the name with `kubectl get nodes`", node=node, code=NODE_NOT_FOUND
            ) from None
        raise ApiFailure.of(f"GET node {node}", error) from error
    return found.to_dict()


@dataclass(frozen=True)
class NodeUpdate:
    """What :func:`update_node` did: the node before, after (None if no change), and the conflicts met."""

    before: JSON
    after: JSON | None
    conflicts: int


async def update_node(
    client: AsyncClient,
    node: str,
    decide: Callable[[JSON], JSON | None],
    *,
    attempts: int = 10,
    dry_run: bool = False,
) -> NodeUpdate:
    """Read the node, ask ``decide`` for a merge patch (None = nothing to do), apply it under the read
    resourceVersion; on 409 read again and ask again, up to ``attempts`` times."""
    conflicts = 0
    for _ in range(attempts):
        current = await get_node(client, node)
        patch = decide(current)
        if patch is None:
            return NodeUpdate(current, None, conflicts)
        metadata: dict[str, Any] = dict(patch.get("metadata") or {})
        metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        body = {**patch, "metadata": metadata}
        try:
            patched = await client.patch(
                Node, node, body, patch_type=PatchType.MERGE, field_manager="shimshift", dry_run=dry_run
            )
        except ApiError as error:
            if status_code(error) == 409:
                conflicts += 1
                continue
            raise ApiFailure.of(f"PATCH node {node}", error) from error
        return NodeUpdate(current, patched.to_dict(), conflicts)
    raise Refusal(
        f"node {node} kept changing: {attempts} conflicting updates in a row",
        "retry later; something rewrites this node continuously",
        node=node,
        code=NODE_UPDATE_CONFLICT,
    )


def annotations_of(node: JSON) -> dict[str, str]:
    return dict(node.get("metadata", {}).get("annotations") or {})


def is_unschedulable(node: JSON) -> bool:
    return bool(node.get("spec", {}).get("unschedulable"))


# -- cordon -----------------------------------------------------------------------------------------------


async def cordon(
    client: AsyncClient,
    node: str,
    *,
    owner: str = "shimshift",
    dry_run: bool = False,
    emit_event: bool = True,
) -> bool:
    """Cordon ``node`` and record ``owner`` in ``shimshift.io/cordoned-by``. Returns True if the node is
    cordoned by us (now, or already by an earlier run of ours that crashed); False if somebody else had
    cordoned it, in which case nothing is changed and we must never uncordon it."""

    def decide(current: JSON) -> JSON | None:
        if is_unschedulable(current):
            return None
        return {"metadata": {"annotations": {CORDONED_BY_ANNOTATION: owner}}, "spec": {"unschedulable": True}}

    update = await update_node(client, node, decide, dry_run=dry_run)
    if update.after is None:
        return annotations_of(update.before).get(CORDONED_BY_ANNOTATION) == owner
    if emit_event and not dry_run:
        await emit_node_event(
            client,
            node,
            reason="ShimshiftCordon",
            message=f"cordoned by {owner} for the dockershim to cri-dockerd migration",
        )
    return True


async def uncordon_if_ours(
    client: AsyncClient,
    node: str,
    *,
    owner: str = "shimshift",
    dry_run: bool = False,
    emit_event: bool = True,
) -> bool:
    """Uncordon ``node`` only if ``owner`` cordoned it. Returns True if we uncordoned it.

    A node cordoned by someone else (no annotation, or another owner) is left as it is. A node someone
    already uncordoned keeps its state; only our stale annotation is removed.
    """

    def decide(current: JSON) -> JSON | None:
        if annotations_of(current).get(CORDONED_BY_ANNOTATION) != owner:
            return None
        patch: JSON = {"metadata": {"annotations": {CORDONED_BY_ANNOTATION: None}}}
        if is_unschedulable(current):
            patch["spec"] = {"unschedulable": None}
        return patch

    update = await update_node(client, node, decide, dry_run=dry_run)
    if update.after is None or not is_unschedulable(update.before):
        return False
    if emit_event and not dry_run:
        await emit_node_event(client, node, reason="ShimshiftUncordon", message=f"uncordoned by {owner}")
    return True


async def cordoned_by(client: AsyncClient, node: str) -> str | None:
    """Who cordoned the node according to our annotation (None if not cordoned or not by shimshift)."""
    current = await get_node(client, node)
    if not is_unschedulable(current):
        return None
    return annotations_of(current).get(CORDONED_BY_ANNOTATION)


# -- cri-socket annotation ---------------------------------------------------------------------------------


async def get_cri_socket(client: AsyncClient, node: str) -> str | None:
    """kubeadm's ``kubeadm.alpha.kubernetes.io/cri-socket`` annotation (None when absent)."""
    return annotations_of(await get_node(client, node)).get(CRI_SOCKET_ANNOTATION)


async def set_cri_socket(
    client: AsyncClient, node: str, value: str = CRI_DOCKERD_ENDPOINT, *, emit_event: bool = True
) -> str | None:
    """Set the cri-socket annotation; returns the previous value (None if there was none).

    The first value we replace is kept in ``shimshift.io/previous-cri-socket`` so :func:`restore_cri_socket`
    works after a crash; running this twice keeps the original, not our own value.
    """
    if not value.startswith("unix://") and not value.startswith("/"):
        raise Refusal(
            f"cri-socket {value!r} is not a unix socket path",
            "use unix:///var/run/cri-dockerd.sock",
            node=node,
            code=OPTION_INVALID,
        )
    previous: list[str | None] = [None]

    def decide(current: JSON) -> JSON | None:
        annotations = annotations_of(current)
        previous[0] = annotations.get(CRI_SOCKET_ANNOTATION)
        if previous[0] == value:
            return None
        patch: dict[str, str | None] = {CRI_SOCKET_ANNOTATION: value}
        if PREVIOUS_CRI_SOCKET_ANNOTATION not in annotations:
            patch[PREVIOUS_CRI_SOCKET_ANNOTATION] = previous[0] if previous[0] is not None else NO_PREVIOUS
        return {"metadata": {"annotations": patch}}

    update = await update_node(client, node, decide)
    if update.after is not None and emit_event:
        await emit_node_event(
            client,
            node,
            reason="ShimshiftCriSocket",
            message=f"{CRI_SOCKET_ANNOTATION} set to {value} (was {previous[0] or 'unset'})",
        )
    return previous[0]


_UNSET: Any = object()


async def restore_cri_socket(
    client: AsyncClient, node: str, previous: str | None = _UNSET, *, emit_event: bool = True
) -> str | None:
    """Put the cri-socket annotation back to ``previous`` (or, when not given, to the value recorded by
    :func:`set_cri_socket`); None removes it. Returns the value now in place. Drops our record."""

    restored: list[str | None] = [None]

    def decide(current: JSON) -> JSON | None:
        annotations = annotations_of(current)
        target = previous
        if target is _UNSET:
            if PREVIOUS_CRI_SOCKET_ANNOTATION not in annotations:
                restored[0] = annotations.get(CRI_SOCKET_ANNOTATION)
                return None  # nothing recorded: nothing of ours to undo
            recorded = annotations[PREVIOUS_CRI_SOCKET_ANNOTATION]
            target = None if recorded == NO_PREVIOUS else recorded
        restored[0] = target
        patch: dict[str, str | None] = {}
        if annotations.get(CRI_SOCKET_ANNOTATION) != target:
            patch[CRI_SOCKET_ANNOTATION] = target
        if PREVIOUS_CRI_SOCKET_ANNOTATION in annotations:
            patch[PREVIOUS_CRI_SOCKET_ANNOTATION] = None
        return {"metadata": {"annotations": patch}} if patch else None

    update = await update_node(client, node, decide)
    if update.after is not None and emit_event:
        await emit_node_event(
            client,
            node,
            reason="ShimshiftCriSocketRestored",
            message=f"{CRI_SOCKET_ANNOTATION} restored to {restored[0] or 'unset'}",
        )
    return restored[0]
