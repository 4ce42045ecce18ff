"""A drain's eviction loop: evict (or delete) one pod until the server accepts, the pod is gone, the
eviction fails or the drain's deadline cancels it, then wait until the pod is gone; progress goes to
the caller as DrainEvents.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod
from lightkube.types import OnErrorAction, OnErrorResult

from shimshift.adapters.kube.cache import ClusterCache, wait_budget_allowed
from shimshift.adapters.kube.client import (
    JSON,
    ApiFailure,
    eviction_resources,
    raw_request,
    status_code,
)
from shimshift.adapters.kube.drain_budgets import _pdb_for
from shimshift.adapters.kube.drain_pods import pod_facts
from shimshift.adapters.kube.events import emit_node_event
from shimshift.core.drain import (
    DrainOptions,
    DryRun,
    EvictionAnswer,
    eviction_answer,
    eviction_failure,
    eviction_group_version,
    pdb_from_429,
    should_skip_wait,
)

if TYPE_CHECKING:
    from lightkube import AsyncClient


class DrainEventKind(enum.StrEnum):
    CORDONED = "cordoned"
    NOT_OUR_CORDON = "not-our-cordon"  # somebody else had cordoned the node; we will not uncordon it
    WARNING = "warning"
    REFUSED = "refused"
    EVICTING = "evicting"
    DELETING = "deleting"
    BLOCKED = "blocked"  # 429: will retry after eviction_retry_delay
    EVICTED = "evicted"  # accepted by the server (dry run: would be)
    DELETED = "deleted"
    GONE = "gone"  # the pod has left the node (404, new UID, or skip-wait timeout)
    FAILED = "failed"
    TIMEOUT = "timeout"
    DRAINED = "drained"
    NOT_DRAINED = "not-drained"


@dataclass(frozen=True)
class DrainEvent:
    """Progress for the caller's display; ``pdb`` is ``namespace/name`` for BLOCKED when known."""

    kind: DrainEventKind
    node: str
    pod: str | None = None
    message: str = ""
    pdb: str | None = None


EventCallback = Callable[[DrainEvent], None]
# A wait for a PDB shorter than this came back because the status already allowed a disruption.
QUICK_WAKE_SECONDS = 0.05
# The message of EVICTING/EVICTED events when a server dry run only asks about PDBs (node refused).
PDB_PROBE = "PodDisruptionBudget check only (server dry run): the node is refused, nothing would be evicted"


class _Outcome(enum.Enum):
    EVICTED = "evicted"  # accepted; now waiting
    GONE = "gone"
    BLOCKED = "blocked"
    FAILED = "failed"


@dataclass
class _PodRun:
    pod: JSON
    key: str
    uid: str
    outcome: _Outcome | None = None
    message: str = ""
    pdb: str | None = None
    done: bool = False  # gone from the node (or, in a dry run, accepted)
    quick_wakes: int = 0  # waits for the PDB that returned at once: the status said yes, the server no


class _Drainer:
    def __init__(
        self,
        client: AsyncClient,
        node: str,
        options: DrainOptions,
        *,
        on_event: EventCallback | None,
        record_events: bool,
        method: str,
        cache: ClusterCache | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.node = node
        self.options = options
        self.on_event = on_event
        self.record_events = record_events and options.dry_run is DryRun.NONE
        self.method = method
        self.dry = options.dry_run is DryRun.SERVER
        self.probe_only = False

    def emit(
        self, kind: DrainEventKind, pod: str | None = None, message: str = "", pdb: str | None = None
    ) -> None:
        if self.on_event is not None:
            self.on_event(DrainEvent(kind, self.node, pod, message, pdb))

    async def node_event(self, reason: str, message: str, kind: str = "Normal") -> None:
        if self.record_events:
            # An Event is a record, not a step: losing one must not fail the drain.
            with contextlib.suppress(ApiFailure, OSError):
                await emit_node_event(self.client, self.node, reason=reason, message=message, type=kind)

    def _delete_options(self, uid: str = "") -> JSON:
        options: JSON = {}
        if uid:
            # Only this incarnation: never evict or delete a replacement that took the same name (a
            # StatefulSet pod recreated between our listing and our request); the server answers 409.
            options["preconditions"] = {"uid": uid}
        if self.options.grace_period >= 0:
            options["gracePeriodSeconds"] = self.options.grace_period
        if self.dry:
            options["dryRun"] = ["All"]
        return options

    async def remove_once(self, run: _PodRun) -> tuple[int, JSON]:
        """One eviction (or DELETE) request; returns the HTTP status and the Status body."""
        metadata = run.pod["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        params = {"dryRun": "All"} if self.dry else None
        if self.method == "delete":
            path = f"/api/v1/namespaces/{namespace}/pods/{name}"
            body = {"apiVersion": "v1", "kind": "DeleteOptions", **self._delete_options(run.uid)}
            response = await raw_request(self.client, "DELETE", path, params=params, body=body)
        else:
            path = f"/api/v1/namespaces/{namespace}/pods/{name}/eviction"
            body = {
                "apiVersion": self.method,
                "kind": "Eviction",
                "metadata": {"name": name, "namespace": namespace},
                "deleteOptions": self._delete_options(run.uid),
            }
            response = await raw_request(self.client, "POST", path, params=params, body=body)
        return response.status, response.body

    async def get_pod(self, run: _PodRun) -> JSON | None:
        """The pod under ``run``'s name now (maybe another incarnation), or None when there is none."""
        metadata = run.pod["metadata"]
        try:
            pod = await self.client.get(Pod, metadata["name"], namespace=metadata["namespace"])
        except ApiError as error:
            if status_code(error) == 404:
                return None
            raise ApiFailure.of(f"GET pod {run.key}", error) from error
        return pod.to_dict()

    async def wait_to_retry(self, run: _PodRun) -> None:
        """After a 429: until the one PDB that refused allows a disruption, at most the retry delay.

        kubectl sleeps a fixed 5 s; the PDB's status says when a retry can succeed, so waiting for it
        retries as soon as the disruption controller frees a disruption. A 429 naming no single PDB (API
        rate limiting, or a pod under two PDBs) keeps kubectl's sleep, and so does a PDB whose status said
        "allowed" twice in a row while the server still refused (a stale status must not spin us).
        """
        delay = self.options.eviction_retry_delay
        keys = (run.pdb or "").split(",")
        if not run.pdb or len(keys) != 1 or run.quick_wakes >= 2:
            run.quick_wakes = 0
            await asyncio.sleep(delay)
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self.cache is not None:
            await self.cache.wait_budget_allowed(keys[0], timeout=delay)
        else:
            await wait_budget_allowed(self.client, keys[0], timeout=delay)
        run.quick_wakes = run.quick_wakes + 1 if loop.time() - started < QUICK_WAKE_SECONDS else 0

    async def refresh(self, run: _PodRun) -> bool:
        """Re-read the pod between retries (kubectl's refreshPod). True if it is gone from this node."""
        metadata = run.pod["metadata"]
        if self.cache is not None and (state := self.cache.pod(metadata["namespace"], metadata["name"])):
            # The watch already says whether our incarnation is still on the node: no GET needed.
            if state.uid != run.uid or state.node not in ("", self.node):
                return True
            if not state.deleting:
                return False
        fresh = await self.get_pod(run)
        if fresh is None:
            return True
        if fresh.get("metadata", {}).get("uid") != run.uid:
            return True
        if fresh.get("spec", {}).get("nodeName") not in (None, "", self.node):
            return True
        run.pod = fresh
        return False

    async def evict(self, run: _PodRun) -> None:
        """Evict until accepted, gone, failed, or cancelled by the deadline (then ``run`` says why)."""
        started = DrainEventKind.DELETING if self.method == "delete" else DrainEventKind.EVICTING
        # With a refused node, a server dry run only probes the PDBs: say so, nothing would be evicted.
        self.emit(started, run.key, PDB_PROBE if self.probe_only else "")
        reported_pdb: str | None = None
        while True:
            status, body = await self.remove_once(run)
            answer = eviction_answer(status, body, deleting=bool(run.pod.get("metadata", {}).get("deletionTimestamp")))
            if answer is EvictionAnswer.DELETING:
                run.outcome = _Outcome.EVICTED
                return
            if answer is EvictionAnswer.EVICTED:
                run.outcome = _Outcome.EVICTED
                run.pdb = None
                kind = DrainEventKind.DELETED if self.method == "delete" else DrainEventKind.EVICTED
                note = PDB_PROBE if self.probe_only else "(server dry run)" if self.dry else ""
                # No Event per pod: at 30 pods a node that was most of a fleet run's requests beyond the
                # evictions themselves. The ShimshiftDrained Event names them all.
                self.emit(kind, run.key, note)
                return
            if answer is EvictionAnswer.GONE:
                run.outcome = _Outcome.GONE
                run.done = True
                self.emit(DrainEventKind.GONE, run.key, "already gone")
                return
            if answer is EvictionAnswer.RE_READ:
                # A precondition failed: if the name now belongs to a replacement, ours is gone;
                # otherwise the pod changed under us: re-read it and retry.
                if await self.refresh(run):
                    run.outcome = _Outcome.GONE
                    run.done = True
                    self.emit(DrainEventKind.GONE, run.key, "replaced by a new pod of the same name")
                    return
                continue
            if answer is EvictionAnswer.BUDGET:
                run.outcome = _Outcome.BLOCKED
                run.pdb = await _pdb_for(self.client, run.pod, pdb_from_429(body))
                run.message = str(body.get("message", "Too Many Requests"))
                self.emit(
                    DrainEventKind.BLOCKED,
                    run.key,
                    f"{run.message} (will retry after {self.options.eviction_retry_delay:g}s)",
                    run.pdb,
                )
                if run.pdb != reported_pdb and not self.dry:
                    reported_pdb = run.pdb
                    await self.node_event(
                        "ShimshiftEvictionBlocked",
                        f"pod {run.key} blocked by PodDisruptionBudget {run.pdb}: {run.message}",
                        "Warning",
                    )
                if self.dry:
                    return
            elif answer is EvictionAnswer.RETRY:
                run.outcome = _Outcome.BLOCKED
                run.message = str(body.get("message", ""))
            else:
                run.outcome = _Outcome.FAILED
                run.message = eviction_failure(status, body)
                self.emit(DrainEventKind.FAILED, run.key, run.message)
                return
            await self.wait_to_retry(run)
            if await self.refresh(run):
                run.outcome = _Outcome.GONE
                run.done = True
                run.pdb = None
                self.emit(DrainEventKind.GONE, run.key, "left the node while we waited to retry")
                return

    async def wait_gone(self, run: _PodRun) -> None:
        """Until the pod is gone: 404, a new UID (same name), or deleted longer ago than skip-wait."""
        metadata = run.pod["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        if (
            self.cache is not None
            and self.options.skip_wait_for_delete_timeout <= 0
            and self.cache.pod(namespace, name) is not None
        ):
            # The cache's pod watch sees the deletion; no GET and no watch of our own per pod. The loop
            # only bounds each wait, the drain's --timeout cancels us.
            while not await self.cache.wait_pod_gone(namespace, name, run.uid, timeout=60.0):
                pass
            run.done = True
            self.emit(DrainEventKind.GONE, run.key)
            return
        fresh = await self.get_pod(run)
        if fresh is None or fresh["metadata"]["uid"] != run.uid:
            run.done = True
        else:
            run.pod = fresh  # carries the deletionTimestamp the skip-wait rule looks at
            run.done = self._skip(run.pod)
        if run.done:
            self.emit(DrainEventKind.GONE, run.key)
            return
        updates: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def retry(error: Exception, count: int) -> OnErrorResult:
            return OnErrorResult(OnErrorAction.RETRY, sleep=min(1.0 * count, 5.0))

        async def pump() -> None:
            async for change, obj in self.client.watch(
                Pod,
                namespace=namespace,
                fields={"metadata.name": name},
                resource_version=run.pod["metadata"]["resourceVersion"],
                on_error=retry,
            ):
                await updates.put((change, obj))

        watcher = asyncio.create_task(pump())
        try:
            while not run.done:
                try:
                    change, obj = await asyncio.wait_for(updates.get(), timeout=1.0)
                except TimeoutError:
                    if watcher.done() and watcher.exception() is not None:
                        raise watcher.exception() from None  # type: ignore[misc]
                    if self.options.skip_wait_for_delete_timeout > 0 and self._skip(run.pod):
                        run.done = True
                    continue
                if obj.metadata.uid != run.uid or change == "DELETED":
                    run.done = True
                else:
                    run.pod = obj.to_dict()
                    run.done = self._skip(run.pod)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        self.emit(DrainEventKind.GONE, run.key)

    def _skip(self, pod: JSON) -> bool:
        return should_skip_wait(pod_facts(pod), self.options, now=dt.datetime.now(dt.UTC))

    async def remove_and_wait(self, run: _PodRun) -> None:
        await self.evict(run)
        if run.outcome is _Outcome.EVICTED and not self.dry:
            await self.wait_gone(run)
        elif run.outcome is _Outcome.EVICTED:
            run.done = True


async def eviction_method(client: AsyncClient, options: DrainOptions) -> str:
    """ "policy/v1", "policy/v1beta1" or "delete", as kubectl's ``CheckEvictionSupport`` decides."""
    if options.disable_eviction:
        return "delete"
    version = eviction_group_version(await eviction_resources(client))
    return version or "delete"
