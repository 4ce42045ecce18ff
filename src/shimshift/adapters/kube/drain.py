"""Drain one node the way ``kubectl drain`` v1.23 does, plus a dry run that names PDB blocks.

What happens, top to bottom (kubernetes/kubectl ``pkg/drain/drain.go`` and ``pkg/cmd/drain/drain.go``):

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

The pods are listed in drain_pods.py, evicted one by one in evictions.py, and the budgets asked in
drain_budgets.py; this module runs the drain of one node from those parts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shimshift.adapters.kube.cache import ClusterCache
from shimshift.adapters.kube.drain_pods import _facts_for, list_node_pods
from shimshift.adapters.kube.evictions import (
    DrainEvent,
    DrainEventKind,
    EventCallback,
    _Drainer,
    _Outcome,
    _PodRun,
    eviction_method,
)
from shimshift.adapters.kube.nodes import cordon, get_node
from shimshift.core.drain import (
    BlockedPod,
    DrainOptions,
    DryRun,
    PodFilter,
    RefusedPod,
    plan_pods,
)

if TYPE_CHECKING:
    from lightkube import AsyncClient


@dataclass
class DrainResult:
    """The outcome for one node. ``to_json()`` gives its stable JSON shape (``shimshift drain -o json``).

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
