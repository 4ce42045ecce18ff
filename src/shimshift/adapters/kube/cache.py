"""One watch-backed view of the cluster's pods and PodDisruptionBudgets for a fleet run.

lightkube's typed list (in pages) then watch from the list's resourceVersion, like an informer: the fleet
loop reads its PDB arithmetic from here (:class:`shimshift.core.fleet.BudgetIndex`) instead of asking the
API server about every waiting node, and drains wait here for a pod to go or a PDB to allow a disruption
instead of polling. Only what those decisions need is kept of each pod, so 150,000 pods cost little memory.

A watch that drops is resumed by lightkube from the last version it saw (or from now after a 410, when
the server replays every object as ADDED). A change the cache misses is never fatal: every eviction is
still decided by the API server, and every wait here is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx2
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod
from lightkube.resources.policy_v1 import PodDisruptionBudget

from shimshift.adapters.kube.client import retry_watch
from shimshift.adapters.kube.watching import Pulse
from shimshift.core.drain import FINISHED_PHASES
from shimshift.core.fleet import BudgetIndex, BudgetSnapshot, BudgetView, PodView
from shimshift.core.wellknown import MIRROR_POD_ANNOTATION

if TYPE_CHECKING:
    from lightkube import AsyncClient

LIST_CHUNK = 500
RELIST_DELAY = 1.0
# A wait on the cache also asks the API server itself this often: a change the watch missed costs
# this long, never the whole timeout.
RECHECK_SECONDS = 5.0


@dataclass(frozen=True)
class PodState:
    """What a drain's wait needs of a pod: which incarnation, where, and whether it is going."""

    uid: str
    node: str
    deleting: bool


def pod_view(pod: Pod) -> PodView:
    """The fleet's view of a pod: a drain evicts it unless a DaemonSet owns it, it is a mirror pod, it has
    finished, or it is already being deleted (kubernetes/kubectl
    ``pkg/drain/filters.go``)."""
    metadata = pod.metadata
    assert metadata is not None
    owners = metadata.ownerReferences or []
    daemonset = any(ref.controller and ref.kind == "DaemonSet" for ref in owners)
    mirror = MIRROR_POD_ANNOTATION in (metadata.annotations or {})
    phase = pod.status.phase if pod.status is not None else None
    evictable = not (daemonset or mirror or phase in FINISHED_PHASES or metadata.deletionTimestamp is not None)
    node = pod.spec.nodeName if pod.spec is not None else None
    return PodView(str(metadata.namespace), str(metadata.name), node or "", dict(metadata.labels or {}), evictable)


def budget_view(pdb: PodDisruptionBudget) -> BudgetView:
    metadata = pdb.metadata
    assert metadata is not None
    selector = pdb.spec.selector.to_dict() if pdb.spec is not None and pdb.spec.selector is not None else None
    allowed = (pdb.status.disruptionsAllowed or 0) if pdb.status is not None else 0
    return BudgetView(str(metadata.namespace), str(metadata.name), selector, allowed)


class ClusterCache:
    """Pods and PDBs of the whole cluster, kept current by two watches. Use as ``async with``."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.budgets = BudgetIndex()
        self.pods: dict[tuple[str, str], PodState] = {}
        self._budget_pulse = Pulse()
        self._pod_pulse = Pulse()
        self._tasks: list[asyncio.Task[None]] = []
        self._snapshot_generation = 0

    async def __aenter__(self) -> ClusterCache:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """List PDBs then pods (PDBs first: each pod is matched once, as it arrives), then watch both."""
        budget_version = await self._list(PodDisruptionBudget, self._put_budget)
        pod_version = await self._list(Pod, self._put_pod)
        self._tasks = [
            asyncio.create_task(self._watch(PodDisruptionBudget, budget_version, self._put_budget, self._drop_budget)),
            asyncio.create_task(self._watch(Pod, pod_version, self._put_pod, self._drop_pod)),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _list(self, resource: Any, put: Callable[[Any], None]) -> str:
        # "*": every namespace. Without it lightkube lists the kubeconfig's namespace only.
        listing = self.client.list(resource, namespace="*", chunk_size=LIST_CHUNK)
        async for item in listing:
            put(item)
        return listing.resourceVersion

    async def _watch(
        self, resource: Any, version: str, put: Callable[[Any], None], drop: Callable[[Any], None]
    ) -> None:
        """Watch from ``version``; whenever the watch ends or fails, list again and watch from there.

        The API server itself may go away for a while (an upgraded control plane restarts its static
        pods; seen in the lab: the watch ended and the cache stayed still while a drain waited on it).
        A new list also drops what was deleted while nobody watched.
        """
        while True:
            try:
                watch = self.client.watch(resource, namespace="*", resource_version=version, on_error=retry_watch)
                async for change, item in watch:
                    if change == "DELETED":
                        drop(item)
                    else:
                        put(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # any end of the watch: list again below
                await asyncio.sleep(RELIST_DELAY)
            version = await self._relist(resource, put)

    async def _relist(self, resource: Any, put: Callable[[Any], None]) -> str:
        while True:
            try:
                listing = self.client.list(resource, namespace="*", chunk_size=LIST_CHUNK)
                items = [item async for item in listing]
                break
            except asyncio.CancelledError:
                raise
            except Exception:  # the API server still away: try again
                await asyncio.sleep(RELIST_DELAY)
        listed = {(str(item.metadata.namespace), str(item.metadata.name)) for item in items}
        if resource is Pod:
            for key in [key for key in self.pods if key not in listed]:
                self.pods.pop(key, None)
                self.budgets.remove_pod(*key)
            self._pod_pulse.fire()
        else:
            for budget in self.budgets.budget_keys() - {f"{ns}/{name}" for ns, name in listed}:
                self.budgets.remove_budget(*budget.split("/", 1))
            self._budget_pulse.fire()
        for item in items:
            put(item)
        return str(listing.resourceVersion)

    def _put_budget(self, pdb: PodDisruptionBudget) -> None:
        self.budgets.put_budget(budget_view(pdb))
        self._budget_pulse.fire()

    def _drop_budget(self, pdb: PodDisruptionBudget) -> None:
        assert pdb.metadata is not None
        self.budgets.remove_budget(str(pdb.metadata.namespace), str(pdb.metadata.name))
        self._budget_pulse.fire()

    def _put_pod(self, pod: Pod) -> None:
        view = pod_view(pod)
        assert pod.metadata is not None
        key = (view.namespace, view.name)
        before = self.pods.get(key)
        state = PodState(str(pod.metadata.uid), view.node, pod.metadata.deletionTimestamp is not None)
        self.pods[key] = state
        self.budgets.put_pod(view)
        if before != state:
            self._pod_pulse.fire()

    def _drop_pod(self, pod: Pod) -> None:
        assert pod.metadata is not None
        key = (str(pod.metadata.namespace), str(pod.metadata.name))
        self.pods.pop(key, None)
        self.budgets.remove_pod(*key)
        self._pod_pulse.fire()

    # --- what the fleet loop and the drains read -------------------------------------------------

    async def snapshot(self) -> BudgetSnapshot:
        self._snapshot_generation = self._budget_pulse.generation
        return self.budgets.snapshot()

    async def budgets_changed(self) -> None:
        """Returns once a PDB event (the disruption controller publishing a new status) arrived after the
        last :meth:`snapshot`, at once if one already did."""
        await self._budget_pulse.wait_past(self._snapshot_generation)

    async def wait_budget_allowed(self, key: str, *, timeout: float) -> bool:
        """Until the PDB ``namespace/name`` allows a disruption (True), or ``timeout`` (False)."""
        namespace, name = key.split("/", 1)

        async def allowed_on_server() -> bool:
            try:
                pdb = await self.client.get(PodDisruptionBudget, name, namespace=namespace)
            except (ApiError, httpx2.TransportError):
                return False
            return pdb.status is not None and (pdb.status.disruptionsAllowed or 0) > 0

        allowed = lambda: (self.budgets.allowed(key) or 0) > 0  # noqa: E731 - read at each wake-up
        return await _wait_until(allowed, self._budget_pulse, timeout, recheck=allowed_on_server)

    async def wait_pod_gone(self, namespace: str, name: str, uid: str, *, timeout: float) -> bool:
        """Until the pod ``uid`` is deleted or replaced under its name (True), or ``timeout`` (False)."""

        def gone() -> bool:
            state = self.pods.get((namespace, name))
            return state is None or state.uid != uid

        async def gone_on_server() -> bool:
            try:
                pod = await self.client.get(Pod, name, namespace=namespace)
            except ApiError as error:
                return error.status.code == 404
            except httpx2.TransportError:
                return False
            return pod.metadata is None or pod.metadata.uid != uid

        return await _wait_until(gone, self._pod_pulse, timeout, recheck=gone_on_server)

    def pod(self, namespace: str, name: str) -> PodState | None:
        return self.pods.get((namespace, name))


async def _wait_until(
    done: Callable[[], bool],
    pulse: Pulse,
    timeout: float,
    *,
    recheck: Callable[[], Awaitable[bool]] | None = None,
) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        generation = pulse.generation  # before the check: a change after it wakes the wait below
        if done():
            return True
        left = deadline - loop.time()
        if left <= 0:
            return False
        step = left if recheck is None else min(left, RECHECK_SECONDS)
        try:
            await asyncio.wait_for(pulse.wait_past(generation), timeout=step)
        except TimeoutError:
            if recheck is not None and await recheck():
                return True


async def wait_budget_allowed(client: AsyncClient, key: str, *, timeout: float) -> bool:
    """Without a cache: watch the one PDB ``namespace/name`` until it allows a disruption (True) or
    ``timeout`` (False). Two requests (a GET, then a watch from its resourceVersion) instead of a sleep."""
    namespace, name = key.split("/", 1)

    async def allowed() -> bool:
        pdb = await client.get(PodDisruptionBudget, name, namespace=namespace)
        if pdb.status is not None and (pdb.status.disruptionsAllowed or 0) > 0:
            return True
        assert pdb.metadata is not None
        async for _, item in client.watch(
            PodDisruptionBudget,
            namespace=namespace,
            fields={"metadata.name": name},
            resource_version=pdb.metadata.resourceVersion,
            on_error=retry_watch,
        ):
            if item.status is not None and (item.status.disruptionsAllowed or 0) > 0:
                return True
        return False

    try:
        return await asyncio.wait_for(allowed(), timeout=timeout)
    except TimeoutError:
        return False
