"""Drain one node the way ``kubectl drain`` v1.23 does, plus a dry run that names PDB blocks.

What happens, top to bottom (../shared/reference/peer-tools.md §1.1-1.6):

1. Cordon (recording that we did, see :mod:`shimshift.adapters.kube.nodes`); the node stays cordoned if a
   later step fails, as with kubectl.
2. List the node's pods (``spec.nodeName`` field selector, ``--pod-selector``, pages of ``chunk_size``).
3. Run kubectl's filters (:mod:`shimshift.core.drain`). If any pod is refused, nothing is evicted.
4. Evict every remaining pod in parallel: policy/v1, else policy/v1beta1 (from discovery), else DELETE
   (or DELETE with ``--disable-eviction``). 429 = a PDB (or rate limiting) says no: report which PDB
   blocks which pod, wait until that PDB's status allows a disruption (a watch, or the fleet's cache;
   at most ``eviction_retry_delay``, kubectl's fixed sleep), re-read the pod, retry. 404 = gone. A pod re-read
   with another UID or on another node is gone too (a StatefulSet pod recreated under the same name,
   kubernetes/kubernetes#138229, which kubectl 1.23 would retry forever). 500 and anything else = failed.
5. Wait for each evicted pod by watch until it is gone or its UID changed (with a
   :class:`~shimshift.adapters.kube.cache.ClusterCache`, in the cache: no request per pod); ``--timeout``
   bounds it all.

Dry run: ``client`` writes nothing; ``server`` sends the cordon and every eviction with dryRun=All, so the
API server answers as it would now, and every pod a PDB would block is named (kubectl cannot:
kubernetes/kubectl#719). Unlike kubectl, the server dry run asks about every pod that passes the
filters even when another pod is refused, so one run shows all the problems.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Pod
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.types import OnErrorAction, OnErrorResult

from shimshift.adapters.kube.cache import ClusterCache, wait_budget_allowed
from shimshift.adapters.kube.client import (
    JSON,
    ApiFailure,
    eviction_resources,
    list_pages,
    raw_request,
    status_code,
)
from shimshift.adapters.kube.events import emit_node_event
from shimshift.adapters.kube.nodes import cordon, get_node
from shimshift.core.drain import (
    BlockedPod,
    ControllerRef,
    DrainOptions,
    DryRun,
    EvictionAnswer,
    PodFacts,
    PodFilter,
    RefusedPod,
    eviction_answer,
    eviction_failure,
    eviction_group_version,
    pdb_from_429,
    plan_pods,
    selector_matches,
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


@dataclass
class DrainResult:
    """The outcome for one node. ``to_json()`` gives the issue's exact shape.

    - ``evict``: pods evicted (or deleted) and gone; in a dry run, pods the server would evict now
      (client dry run: every pod that passes the filters). Empty whenever a pod is refused, because then
      kubectl evicts nothing on the node.
    - ``ignored``: DaemonSet pods, mirror pods and long-deleted pods left in place.
    - ``refused``: filter errors (kubectl's messages), plus evictions the server refused with an error
      other than 429 (e.g. 500 for a pod matched by two PDBs), with the server's message.
    - ``blocked``: pods a PDB holds back (dry run: right now; real drain: still, when time ran out).
    - ``pending``: pods still on the node when the drain gave up (blocked ones included).
    """

    node: str
    dry_run: DryRun = DryRun.NONE
    evict: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    refused: list[RefusedPod] = field(default_factory=list)
    blocked: list[BlockedPod] = field(default_factory=list)
    drained: bool = False
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    method: str = ""  # "policy/v1", "policy/v1beta1" or "delete"
    cordoned_by_us: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "evict": list(self.evict),
            "ignored": list(self.ignored),
            "refused": [{"pod": item.pod, "reason": item.reason} for item in self.refused],
            "blocked": [{"pod": item.pod, "pdb": item.pdb} for item in self.blocked],
            "drained": self.drained,
        }


EventCallback = Callable[[DrainEvent], None]
# A wait for a PDB shorter than this came back because the status already allowed a disruption.
QUICK_WAKE_SECONDS = 0.05
# The message of EVICTING/EVICTED events when a server dry run only asks about PDBs (node refused).
PDB_PROBE = "PodDisruptionBudget check only (server dry run): the node is refused, nothing would be evicted"
# How many dry-run evictions budgets_would_refuse has in flight at once.
DRY_RUN_CONCURRENCY = 8


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _controller_of(pod: JSON) -> ControllerRef | None:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ControllerRef(
                str(ref.get("kind", "")), str(ref.get("name", "")), str(ref.get("apiVersion", ""))
            )
    return None


def pod_facts(
    pod: JSON, *, daemonset_lookup_error: str | None = None, daemonset_not_found: bool = False
) -> PodFacts:
    """The filters' view of a pod object from the API."""
    metadata = pod.get("metadata", {})
    volumes = pod.get("spec", {}).get("volumes") or []
    return PodFacts(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        phase=str(pod.get("status", {}).get("phase", "")),
        deletion_timestamp=_parse_time(metadata.get("deletionTimestamp")),
        controller=_controller_of(pod),
        annotations=dict(metadata.get("annotations") or {}),
        has_emptydir=any("emptyDir" in volume for volume in volumes),
        daemonset_lookup_error=daemonset_lookup_error,
        daemonset_not_found=daemonset_not_found,
    )


async def list_node_pods(
    client: AsyncClient, node: str, options: DrainOptions, *, from_watch_cache: bool = False
) -> list[JSON]:
    """The pods on ``node``: kubectl's list (from etcd, in pages of ``chunk_size``), or with
    ``from_watch_cache`` the API server's watch cache as it stands (``resourceVersion=0``, not paged).

    The watch cache indexes pods by ``spec.nodeName``; etcd does not, so kubectl's list of one node's
    pods decodes every pod of the cluster. A fleet run does that for many nodes at once: at 30,000 pods on
    the 1,000-node kwok rig, a hundred drains at once timed out, and ten at once still did (issue 10).
    The cache trails etcd by a watch event's delay; a node is cordoned before its drain lists, so a pod
    it could miss was bound in those milliseconds before the cordon. (A resourceVersion to be at least
    as fresh as would not do: on 1.23 the pod cache advances only with pod events, so it waits 3 s for
    any newer version, such as the node's, and then refuses.)
    """
    params = {"fieldSelector": f"spec.nodeName={node}"}
    if options.pod_selector:
        params["labelSelector"] = options.pod_selector
    if from_watch_cache:
        params["resourceVersion"] = "0"
    pods: list[JSON] = []
    chunk_size = 0 if from_watch_cache else options.chunk_size
    async for page in list_pages(client, "/api/v1/pods", params=params, chunk_size=chunk_size):
        pods.extend(page)
    return pods


async def _facts_for(client: AsyncClient, pods: list[JSON]) -> list[PodFacts]:
    """PodFacts for each pod, looking up the DaemonSet of unfinished DaemonSet pods like kubectl does."""
    lookups: dict[tuple[str, str], tuple[str | None, bool]] = {}
    facts: list[PodFacts] = []
    for pod in pods:
        plain = pod_facts(pod)
        if plain.daemonset_managed and not plain.finished and plain.controller is not None:
            key = (plain.namespace, plain.controller.name)
            if key not in lookups:
                try:
                    await client.get(DaemonSet, key[1], namespace=key[0])
                    lookups[key] = (None, False)
                except ApiError as failure:
                    if status_code(failure) == 404:
                        lookups[key] = (f'daemonsets.apps "{key[1]}" not found', True)
                    else:
                        lookups[key] = (failure.status.message or f"HTTP {status_code(failure)}", False)
            error, not_found = lookups[key]
            if error is not None:
                plain = pod_facts(pod, daemonset_lookup_error=error, daemonset_not_found=not_found)
        facts.append(plain)
    return facts


async def _pdb_for(client: AsyncClient, pod: JSON, named: str | None) -> str | None:
    """``namespace/name`` of the PDB blocking ``pod``: the one the 429 names, else the ones selecting it."""
    namespace = pod.get("metadata", {}).get("namespace", "")
    if named:
        return f"{namespace}/{named}"
    labels = pod.get("metadata", {}).get("labels") or {}
    try:
        budgets = [item async for item in client.list(PodDisruptionBudget, namespace=namespace)]
    except ApiError:
        return None  # only the report's wording depends on it
    names = [
        f"{namespace}/{item.metadata.name}"
        for item in budgets
        if item.metadata is not None
        and item.spec is not None
        and selector_matches(item.spec.selector.to_dict() if item.spec.selector else None, labels)
    ]
    return ",".join(names) or None


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
    """ "policy/v1", "policy/v1beta1" or "delete", as kubectl decides (peer-tools.md §1.3)."""
    if options.disable_eviction:
        return "delete"
    version = eviction_group_version(await eviction_resources(client))
    return version or "delete"


async def drain_node(
    client: AsyncClient,
    node: str,
    options: DrainOptions,
    *,
    on_event: EventCallback | None = None,
    cordon_first: bool = True,
    owner: str = "shimshift",
    record_events: bool = True,
    extra_filters: tuple[PodFilter, ...] = (),
    method: str | None = None,
    cache: ClusterCache | None = None,
) -> DrainResult:
    """Drain ``node`` with kubectl's semantics (see the module docstring). Never raises for a refused or
    blocked pod: the result says what happened. ``method`` forces "policy/v1", "policy/v1beta1" or
    "delete" instead of asking discovery (tests use it to exercise each path on one server). With
    ``cache`` (a fleet run), waits read the cache instead of asking the API server, and the node's pods are
    listed from the API server's watch cache (:func:`list_node_pods`)."""
    dry_run = options.dry_run
    result = DrainResult(node=node, dry_run=dry_run)
    await get_node(client, node)  # a missing node is a Refusal before anything else happens

    def emit(kind: DrainEventKind, pod: str | None = None, message: str = "") -> None:
        if on_event is not None:
            on_event(DrainEvent(kind, node, pod, message))

    if cordon_first and dry_run is not DryRun.CLIENT:
        ours = await cordon(
            client, node, owner=owner, dry_run=dry_run is DryRun.SERVER, emit_event=record_events
        )
        result.cordoned_by_us = ours
        emit(DrainEventKind.CORDONED if ours else DrainEventKind.NOT_OUR_CORDON)

    result.method = method or await eviction_method(client, options)
    drainer = _Drainer(
        client, node, options, on_event=on_event, record_events=record_events, method=result.method, cache=cache
    )
    await drainer.node_event("ShimshiftDrain", f"draining node {node} ({result.method})")

    pods = await list_node_pods(client, node, options, from_watch_cache=cache is not None)
    facts = await _facts_for(client, pods)
    plan = plan_pods(facts, options, now=dt.datetime.now(dt.UTC), extra_filters=extra_filters)
    result.ignored = [pod.key for pod, _ in plan.skip]
    result.refused = [RefusedPod(pod.key, decision.reason) for pod, decision in plan.errors]
    result.warnings = plan.warning_messages()
    for message in result.warnings:
        emit(DrainEventKind.WARNING, None, message)
    for message in plan.error_messages():
        emit(DrainEventKind.REFUSED, None, message)
    if plan.refused:
        await drainer.node_event("ShimshiftDrainRefused", "; ".join(plan.error_messages()), "Warning")

    drainer.probe_only = plan.refused
    by_uid = {str(pod.get("metadata", {}).get("uid", "")): pod for pod in pods}
    runs = [_PodRun(by_uid[fact.uid], fact.key, fact.uid) for fact in plan.delete]

    if dry_run is DryRun.CLIENT:
        result.evict = [] if plan.refused else [run.key for run in runs]
        for key in result.evict:
            emit(DrainEventKind.EVICTED, key, "(client dry run)")
        result.drained = not plan.refused
        return result
    if plan.refused and dry_run is DryRun.NONE:
        result.pending = [run.key for run in runs] + [item.pod for item in result.refused]
        emit(DrainEventKind.NOT_DRAINED, None, "; ".join(plan.error_messages()))
        return result

    deadline = asyncio.get_running_loop().time() + options.timeout if options.timeout > 0 else None
    tasks = [asyncio.create_task(drainer.remove_and_wait(run)) for run in runs]
    timed_out = False
    if tasks:
        try:
            async with asyncio.timeout_at(deadline):
                outcome = await asyncio.gather(*tasks, return_exceptions=True)
        except TimeoutError:
            timed_out = True
            # Let every cancelled task finish unwinding (closing its watch) before we report.
            settled = await asyncio.gather(*tasks, return_exceptions=True)
            outcome = [None if isinstance(item, asyncio.CancelledError) else item for item in settled]
        for run, error in zip(runs, outcome, strict=True):
            if isinstance(error, BaseException) and not isinstance(error, asyncio.CancelledError):
                run.outcome = _Outcome.FAILED
                run.message = str(error)

    for run in runs:
        if run.done and run.outcome in (_Outcome.EVICTED, _Outcome.GONE):
            if not (plan.refused and dry_run is DryRun.SERVER):
                result.evict.append(run.key)
        elif run.outcome is _Outcome.BLOCKED:
            result.blocked.append(BlockedPod(run.key, run.pdb))
            result.pending.append(run.key)
        elif run.outcome is _Outcome.FAILED:
            result.refused.append(RefusedPod(run.key, f"eviction failed: {run.message}"))
            result.errors.append(f"{run.key}: {run.message}")
            result.pending.append(run.key)
        else:
            result.pending.append(run.key)
            result.errors.append(f"{run.key}: still on the node when the timeout was reached")
    if timed_out:
        emit(DrainEventKind.TIMEOUT, None, f"global timeout reached: {options.timeout:g}s")
        result.errors.append(f"global timeout reached: {options.timeout:g}s")

    result.drained = not result.refused and not result.blocked and not result.pending
    if dry_run is DryRun.NONE:
        if result.drained:
            verb = "deleted" if result.method == "delete" else "evicted"
            await drainer.node_event(
                "ShimshiftDrained",
                f"node {node} drained: {len(result.evict)} pods {verb}: {', '.join(result.evict)}",
            )
        else:
            await drainer.node_event(
                "ShimshiftDrainIncomplete",
                f"node {node} not drained; pending: {', '.join(result.pending)}",
                "Warning",
            )
    emit(DrainEventKind.DRAINED if result.drained else DrainEventKind.NOT_DRAINED)
    return result


async def budgets_would_refuse(client: AsyncClient, pods: Iterable[tuple[str, str]], *, method: str) -> bool:
    """A server dry run of one eviction per given pod (namespace, name): True if any is refused with 429.

    The fleet asks this about one pod per PDB of the node it is about to start, instead of dry-running
    the whole drain: only a PDB can turn an eviction into a 429 worth waiting for. The dry runs go out
    ``DRY_RUN_CONCURRENCY`` at a time: one after another they cost about 8 s per start at 1,000 nodes
    (28 PDBs a node, 0.27 s each on a loaded API server), which paced the whole fleet (issue 10).
    """
    if method == "delete":  # --disable-eviction: DELETE ignores PDBs
        return False
    gate = asyncio.Semaphore(DRY_RUN_CONCURRENCY)

    async def refused(namespace: str, name: str) -> bool:
        body = {
            "apiVersion": method,
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": {"dryRun": ["All"]},
        }
        async with gate:
            response = await raw_request(
                client,
                "POST",
                f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                params={"dryRun": "All"},
                body=body,
            )
        return response.status == 429

    probes = [asyncio.ensure_future(refused(namespace, name)) for namespace, name in pods]
    try:
        for answer in asyncio.as_completed(probes):
            if await answer:
                return True
        return False
    finally:
        for probe in probes:  # one 429 is the answer: the rest need not be asked
            probe.cancel()


async def plan_drain(
    client: AsyncClient,
    node: str,
    options: DrainOptions,
    *,
    on_event: EventCallback | None = None,
    extra_filters: tuple[PodFilter, ...] = (),
) -> DrainResult:
    """A server-side dry run of :func:`drain_node`: changes nothing, names every pod a filter refuses and
    every pod a PDB blocks right now."""
    from dataclasses import replace

    return await drain_node(
        client, node, replace(options, dry_run=DryRun.SERVER), on_event=on_event, extra_filters=extra_filters
    )
