"""Drain semantics against a real kube-apiserver v1.23.17 and its disruption controller (no kubelets).

Without kubelets a pod deleted gracefully stays Terminating for ever, so most drains here use
``--grace-period=0`` (the API server then removes the pod at once); the wait tests use a grace period on
purpose and play the kubelet's final removal themselves.

Matrix (kubernetes/kubectl `pkg/cmd/drain/drain_test.go` at v0.23.17, TestDrain):
- TestDrain's cases, each once through eviction (policy/v1) and once through DELETE;
- TestDeleteOrEvict: policy/v1, policy/v1beta1 and DELETE each remove exactly the targeted pods;
- TestCheckEvictionSupport against the real discovery document;
- TestDeleteOrEvictWithDryRunServer: eviction and DELETE with server dry run change nothing;
- TestDeletePods: wait completes, same name new UID counts as gone, timeout, caller cancellation,
  skip-wait of long-deleted pods, a client error passed out;
- beyond kubectl: a PDB that blocks (waits, retries, times out cleanly, names the PDB), 429 then success,
  a StatefulSet pod recreated under the same name while blocked, a 500 (two PDBs), and a server dry run
  that predicts exactly what the real drain then does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from shimshift.adapters.kube import DrainEvent, DrainEventKind, drain_node, make_client, plan_drain
from shimshift.adapters.kube.cache import ClusterCache
from shimshift.adapters.kube.client import ApiFailure, raw_request
from shimshift.adapters.kube.drain_budgets import budgets_would_refuse
from shimshift.adapters.kube.evictions import _Drainer, _PodRun, eviction_method
from shimshift.core.drain import (
    DAEMONSET_FATAL,
    LOCAL_STORAGE_FATAL,
    UNMANAGED_FATAL,
    DrainOptions,
    DryRun,
)

if TYPE_CHECKING:
    from tests.apiserver_fixture import LocalApiServer
    from tests.kube_world import World

FAST: dict[str, Any] = {"grace_period": 0, "eviction_retry_delay": 0.3}
METHODS = ["policy/v1", "delete"]


@dataclass
class Case:
    name: str
    pods: list[dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)
    fatal: bool = False
    deleted: bool = True  # is the pod "bar" gone afterwards
    refused_reason: str | None = None
    ignored: bool = False


CASES = [
    Case("RC-managed pod", [{"owner": "ReplicationController"}]),
    Case(
        "DS-managed pod", [{"owner": "DaemonSet"}], fatal=True, deleted=False, refused_reason=DAEMONSET_FATAL
    ),
    Case("DS-managed terminated pod", [{"owner": "DaemonSet", "phase": "Succeeded"}]),
    Case(
        "orphaned DS-managed pod",
        [{"owner": "OrphanDaemonSet"}],
        fatal=True,
        deleted=False,
        refused_reason="not found",
    ),
    Case("orphaned DS-managed pod with --force", [{"owner": "OrphanDaemonSet"}], {"force": True}),
    Case(
        "DS-managed pod with --ignore-daemonsets",
        [{"owner": "DaemonSet"}],
        {"ignore_daemonsets": True},
        deleted=False,
        ignored=True,
    ),
    Case(
        "DS-managed pod with emptyDir with --ignore-daemonsets",
        [{"owner": "DaemonSet", "emptydir": True}],
        {"ignore_daemonsets": True},
        deleted=False,
        ignored=True,
    ),
    Case(
        "Job-managed pod with local storage",
        [{"owner": "Job", "emptydir": True}],
        {"force": True, "delete_emptydir_data": True},
    ),
    Case("Job-managed terminated pod", [{"owner": "Job", "phase": "Succeeded"}]),
    Case("RS-managed pod", [{"owner": "ReplicaSet"}]),
    Case("naked pod", [{}], fatal=True, deleted=False, refused_reason=UNMANAGED_FATAL),
    Case("naked pod with --force", [{}], {"force": True}),
    Case(
        "pod with EmptyDir",
        [{"emptydir": True}],
        {"force": True},
        fatal=True,
        deleted=False,
        refused_reason=LOCAL_STORAGE_FATAL,
    ),
    Case("terminated pod with emptyDir", [{"emptydir": True, "phase": "Failed"}]),
    Case(
        "pod with EmptyDir and --delete-emptydir-data",
        [{"owner": "ReplicaSet", "emptydir": True}],
        {"delete_emptydir_data": True},
    ),
    Case(
        "mirror pod", [{"annotations": {"kubernetes.io/config.mirror": "hash"}}], deleted=False, ignored=True
    ),
    Case("empty node", []),
]


async def _make_pod(world: World, node: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    owner_kind = spec.get("owner")
    owner = None
    if owner_kind == "OrphanDaemonSet":
        owner = await world.owner("ReplicaSet", "gone")
        owner["kind"], owner["apiVersion"] = "DaemonSet", "apps/v1"
    elif owner_kind:
        owner = await world.owner(owner_kind, name)
    return await world.pod(
        name,
        node=node,
        owner=owner,
        emptydir=spec.get("emptydir", False),
        phase=spec.get("phase", "Running"),
        annotations=spec.get("annotations"),
    )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_kubectl_drain_case(case: Case, method: str, world: World, kube: Any) -> None:
    node = await world.node("node")
    other = await world.node("other")
    await world.pod("elsewhere", node=other, owner=await world.owner("ReplicaSet", "x"))
    for spec in case.pods:
        await _make_pod(world, node, "bar", spec)
    options = DrainOptions(**{**FAST, **case.options, "disable_eviction": method == "delete"})
    events: list[DrainEvent] = []
    result = await drain_node(kube, node, options, on_event=events.append)

    assert (await world.get_node(node))["spec"]["unschedulable"] is True  # cordoned, whatever happened
    assert result.drained is not case.fatal
    assert result.method == method
    assert (await world.get_pod("bar") is None) is (case.deleted or not case.pods)
    assert await world.get_pod("elsewhere") is not None  # only the node's pods are touched
    key = f"{world.namespace}/bar"
    if case.refused_reason:
        assert [r.pod for r in result.refused] == [key]
        assert case.refused_reason in result.refused[0].reason
        assert result.evict == []
        assert any(e.kind is DrainEventKind.REFUSED for e in events)
    elif case.pods and case.deleted:
        assert result.evict == [key]
        assert sum(1 for e in events if e.kind is DrainEventKind.GONE and e.pod == key) == 1
    assert result.ignored == ([key] if case.ignored else [])


async def test_warning_for_ignored_daemonset_pods(world: World, kube: Any) -> None:
    node = await world.node("node")
    await _make_pod(world, node, "agent", {"owner": "DaemonSet", "emptydir": True})
    events: list[DrainEvent] = []
    await drain_node(kube, node, DrainOptions(**FAST, ignore_daemonsets=True), on_event=events.append)
    assert [e.message for e in events if e.kind is DrainEventKind.WARNING] == [
        f"ignoring DaemonSet-managed Pods: {world.namespace}/agent"
    ]


async def test_pod_selector_limits_the_drain(world: World, kube: Any) -> None:
    node = await world.node("node")
    rs = await world.owner("ReplicaSet", "rs")
    await world.pod("a", node=node, owner=rs, labels={"app": "a"})
    await world.pod("b", node=node, owner=rs, labels={"app": "b"})
    result = await drain_node(kube, node, DrainOptions(**FAST, pod_selector="app=a"))
    assert result.evict == [f"{world.namespace}/a"]
    assert await world.get_pod("b") is not None


async def test_pods_are_listed_like_kubectl(world: World, kube: Any, apiserver: LocalApiServer) -> None:
    """kubectl's cmd test asserts fieldSelector=spec.nodeName=<node>, limit=500; so do we (audit log)."""
    one, three = await world.node("one"), await world.node("three")
    await world.pod("a", node=one, owner=await world.owner("ReplicaSet", "a"))
    for name in ("b", "c", "d"):
        await world.pod(name, node=three, owner=await world.owner("ReplicaSet", name))
    await drain_node(kube, one, DrainOptions(**FAST))
    await drain_node(kube, three, DrainOptions(**FAST, chunk_size=2))

    def lists(node: str) -> list[str]:
        return [
            str(event["requestURI"])
            for event in apiserver.audited_requests()
            if event.get("verb") == "list" and f"spec.nodeName%3D{node}" in str(event["requestURI"])
        ]

    async def logged() -> bool:
        return len(lists(one)) >= 1 and len(lists(three)) >= 2

    await _until(logged)
    assert all("limit=500" in uri for uri in lists(one)) and len(lists(one)) == 1
    assert [("limit=2" in uri, "continue=" in uri) for uri in lists(three)] == [(True, False), (True, True)]


async def test_a_fleet_drain_lists_the_nodes_pods_from_the_watch_cache(
    world: World, kube: Any, apiserver: LocalApiServer
) -> None:
    """In a fleet run (a ClusterCache given), one list with resourceVersion=0 and no limit: the watch
    cache's spec.nodeName index instead of a read of every pod in etcd (audit log)."""
    node = await world.node("fleet")
    for name in ("e", "f", "g"):
        await world.pod(name, node=node, owner=await world.owner("ReplicaSet", name))
    async with ClusterCache(kube) as cache:
        result = await drain_node(kube, node, DrainOptions(**FAST, chunk_size=2), cache=cache)
    assert sorted(result.evict) == [f"{world.namespace}/{name}" for name in ("e", "f", "g")]

    def lists() -> list[str]:
        return [
            str(event["requestURI"])
            for event in apiserver.audited_requests()
            if event.get("verb") == "list" and f"spec.nodeName%3D{node}" in str(event["requestURI"])
        ]

    async def logged() -> bool:
        return len(lists()) >= 1

    await _until(logged)
    assert [("resourceVersion=0" in uri, "limit=" in uri) for uri in lists()] == [(True, False)]


async def test_eviction_support_is_discovered_like_kubectl(kube: Any) -> None:
    assert await eviction_method(kube, DrainOptions()) == "policy/v1"
    assert await eviction_method(kube, DrainOptions(disable_eviction=True)) == "delete"


@pytest.mark.parametrize("method", ["policy/v1", "policy/v1beta1", "delete"])
async def test_each_removal_path_removes_exactly_the_targeted_pods(
    method: str, world: World, kube: Any
) -> None:
    node = await world.node("node")
    other = await world.node("other")
    for name in ("t1", "t2"):
        await world.pod(name, node=node, owner=await world.owner("ReplicaSet", name))
    for name in ("o1", "o2"):
        await world.pod(name, node=other, owner=await world.owner("ReplicaSet", name))
    events: list[DrainEvent] = []
    result = await drain_node(kube, node, DrainOptions(**FAST), on_event=events.append, method=method)
    assert result.drained and sorted(result.evict) == [f"{world.namespace}/t1", f"{world.namespace}/t2"]
    assert [await world.get_pod(n) is None for n in ("t1", "t2", "o1", "o2")] == [True, True, False, False]
    started = DrainEventKind.DELETING if method == "delete" else DrainEventKind.EVICTING
    assert sum(1 for e in events if e.kind is started) == 2


@pytest.mark.parametrize("method", ["policy/v1", "delete"])
async def test_server_dry_run_changes_nothing(method: str, world: World, kube: Any) -> None:
    node = await world.node("node")
    await world.pod("a", node=node, owner=await world.owner("ReplicaSet", "a"))
    result = await drain_node(kube, node, DrainOptions(**FAST, dry_run=DryRun.SERVER), method=method)
    assert result.evict == [f"{world.namespace}/a"] and result.drained
    assert await world.get_pod("a") is not None
    assert not (await world.get_node(node))["spec"].get("unschedulable")


async def test_client_dry_run_sends_no_writes(world: World, kube: Any) -> None:
    node = await world.node("node")
    await world.pod("a", node=node, owner=await world.owner("ReplicaSet", "a"))
    await world.pod("naked", node=node)
    result = await drain_node(kube, node, DrainOptions(**FAST, dry_run=DryRun.CLIENT))
    assert result.evict == [] and [r.pod for r in result.refused] == [f"{world.namespace}/naked"]
    forced = await drain_node(kube, node, DrainOptions(**FAST, dry_run=DryRun.CLIENT, force=True))
    assert sorted(forced.evict) == [f"{world.namespace}/a", f"{world.namespace}/naked"] and forced.drained
    assert await world.get_pod("a") is not None and await world.get_pod("naked") is not None
    assert not (await world.get_node(node))["spec"].get("unschedulable")


# -- waiting for deletion (TestDeletePods) -------------------------------------------------------------
async def _until(predicate: Any) -> None:
    """Poll an API condition (there is nothing to wait on locally: the change happens in the server)."""
    async with asyncio.timeout(20):
        while not await predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def test_wait_completes_when_the_kubelet_finally_removes_the_pod(world: World, kube: Any) -> None:
    node = await world.node("node")
    await world.pod("slow", node=node, owner=await world.owner("ReplicaSet", "rs"))
    events: list[DrainEvent] = []
    drain = asyncio.create_task(drain_node(kube, node, DrainOptions(grace_period=30), on_event=events.append))

    async def terminating() -> bool:
        pod = await world.get_pod("slow")
        return pod is not None and bool(pod["metadata"].get("deletionTimestamp"))

    await _until(terminating)
    assert not drain.done()  # a Terminating pod is not gone yet
    await world.delete_pod_now("slow")  # what the kubelet does once the containers stopped
    result = await asyncio.wait_for(drain, 20)
    assert result.drained and result.evict == [f"{world.namespace}/slow"]


async def test_same_name_new_uid_counts_as_gone(world: World, kube: Any) -> None:
    node = await world.node("node")
    other = await world.node("other")
    rs = await world.owner("StatefulSet", "db")
    await world.pod("db-0", node=node, owner=rs)
    drain = asyncio.create_task(drain_node(kube, node, DrainOptions(grace_period=30)))

    async def terminating() -> bool:
        pod = await world.get_pod("db-0")
        return pod is not None and bool(pod["metadata"].get("deletionTimestamp"))

    await _until(terminating)
    await world.delete_pod_now("db-0")
    await world.pod("db-0", node=other, owner=rs)  # the StatefulSet controller's replacement
    result = await asyncio.wait_for(drain, 20)
    assert result.drained
    assert (await world.get_pod("db-0") or {})["spec"]["nodeName"] == other


async def test_deleting_can_time_out(world: World, kube: Any) -> None:
    node = await world.node("node")
    await world.pod("stuck", node=node, owner=await world.owner("ReplicaSet", "rs"))
    events: list[DrainEvent] = []
    result = await drain_node(kube, node, DrainOptions(grace_period=60, timeout=2), on_event=events.append)
    assert not result.drained
    assert result.pending == [f"{world.namespace}/stuck"] and result.evict == []
    assert "global timeout reached: 2s" in result.errors
    assert any(e.kind is DrainEventKind.TIMEOUT for e in events)


async def test_the_callers_cancellation_stops_the_wait(world: World, kube: Any) -> None:
    node = await world.node("node")
    await world.pod("stuck", node=node, owner=await world.owner("ReplicaSet", "rs"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1.5):
            await drain_node(kube, node, DrainOptions(grace_period=60, timeout=60))
    assert loop.time() - started < 10


async def test_long_deleted_pods_are_not_waited_for(world: World, kube: Any) -> None:
    node = await world.node("node")
    await world.pod("old", node=node, owner=await world.owner("ReplicaSet", "rs"), grace=1)
    # The pod is deleted (deletionTimestamp = now + 1 s) and never goes away: no kubelet.
    await world.call(
        "DELETE",
        f"/api/v1/namespaces/{world.namespace}/pods/old",
        {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 1},
    )
    await asyncio.sleep(3.2)
    result = await drain_node(
        kube, node, DrainOptions(grace_period=30, skip_wait_for_delete_timeout=1, timeout=10)
    )
    assert result.drained and result.ignored == [f"{world.namespace}/old"]
    # During the wait too: evicted with a 1 s grace, it counts as gone once deleted > 1 s ago.
    await world.pod("young", node=node, owner=await world.owner("ReplicaSet", "rs2"), grace=1)
    result = await drain_node(
        kube, node, DrainOptions(grace_period=1, skip_wait_for_delete_timeout=1, timeout=15)
    )
    assert result.drained and result.evict == [f"{world.namespace}/young"]
    assert await world.get_pod("young") is not None  # still Terminating: skipped, not gone


async def test_client_errors_are_passed_out(world: World, apiserver: LocalApiServer, tmp_path: Any) -> None:
    node = await world.node("node")
    await world.pod("a", node=node, owner=await world.owner("ReplicaSet", "a"))
    limited = make_client(apiserver.kubeconfig_for(tmp_path / "limited", apiserver.limited_token))
    try:
        with pytest.raises(ApiFailure, match="403"):
            await drain_node(limited, node, DrainOptions(**FAST))
    finally:
        await limited.close()
    assert await world.get_pod("a") is not None


@pytest.mark.parametrize("method", ["policy/v1", "policy/v1beta1", "delete"])
async def test_a_replacement_with_the_same_name_is_never_removed(
    method: str, world: World, kube: Any
) -> None:
    """Listed pod db-0 is replaced (same name, new UID) before our request: the UID precondition makes
    the server refuse (409) and the drain counts the old one as gone."""
    node = await world.node("node")
    sts = await world.owner("StatefulSet", "db")
    old = await world.pod("db-0", node=node, owner=sts)
    await world.delete_pod_now("db-0")
    await world.pod("db-0", node=node, owner=sts)
    stale = await raw_request(
        kube,
        "POST",
        f"/api/v1/namespaces/{world.namespace}/pods/db-0/eviction",
        body={
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "db-0", "namespace": world.namespace},
            "deleteOptions": {"preconditions": {"uid": old["metadata"]["uid"]}, "gracePeriodSeconds": 0},
        },
    )
    assert stale.status == 409  # the server enforces the precondition on evictions too
    drainer = _Drainer(kube, node, DrainOptions(**FAST), on_event=None, record_events=False, method=method)
    run = _PodRun(old, f"{world.namespace}/db-0", old["metadata"]["uid"])
    await drainer.evict(run)
    assert run.done
    assert await world.get_pod("db-0") is not None


# -- PodDisruptionBudgets ------------------------------------------------------------------------------
async def _web(
    world: World,
    node: str,
    other: str,
    *,
    replicas_here: int = 1,
    replicas_there: int = 1,
    min_available: int = 2,
) -> str:
    rs = await world.owner("ReplicaSet", "web")
    for index in range(replicas_here):
        await world.pod(f"web-{index}", node=node, owner=rs, labels={"app": "web"})
    for index in range(replicas_there):
        await world.pod(f"web-there-{index}", node=other, owner=rs, labels={"app": "web"})
    pdb = await world.pdb("web", labels={"app": "web"}, min_available=min_available)
    await world.wait_pdb(pdb, allowed=replicas_here + replicas_there - min_available)
    return pdb


async def test_a_pdb_that_blocks_retries_then_times_out_cleanly(world: World, kube: Any) -> None:
    node, other = await world.node("node"), await world.node("other")
    pdb = await _web(world, node, other)
    events: list[DrainEvent] = []
    result = await drain_node(kube, node, DrainOptions(**FAST, timeout=2.5), on_event=events.append)
    blocked = [e for e in events if e.kind is DrainEventKind.BLOCKED]
    assert len(blocked) >= 3  # retried every 0.3 s
    assert {e.pdb for e in blocked} == {f"{world.namespace}/{pdb}"}
    assert "disruption budget" in blocked[0].message
    assert not result.drained
    assert result.to_json()["blocked"] == [
        {"pod": f"{world.namespace}/web-0", "pdb": f"{world.namespace}/{pdb}"}
    ]
    assert result.evict == [] and result.pending == [f"{world.namespace}/web-0"]
    assert await world.get_pod("web-0") is not None
    assert (await world.get_node(node))["spec"]["unschedulable"] is True


async def test_budgets_would_refuse_answers_for_many_pods_at_once(world: World, kube: Any) -> None:
    """The fleet's check before a start: dry-run evictions, several in flight; True as soon as one PDB
    refuses, and nothing evicted either way."""
    node, other = await world.node("node"), await world.node("other")
    await _web(world, node, other)  # web-0 here: its PDB allows nothing
    free = await world.owner("ReplicaSet", "free")
    for index in range(12):
        await world.pod(f"free-{index}", node=node, owner=free, labels={"app": f"free-{index}"})
    ns = world.namespace
    free_pods = [(ns, f"free-{index}") for index in range(12)]
    assert await budgets_would_refuse(kube, [*free_pods, (ns, "web-0")], method="policy/v1") is True
    assert await budgets_would_refuse(kube, free_pods, method="policy/v1") is False
    assert await budgets_would_refuse(kube, [(ns, "web-0")], method="delete") is False
    for _, name in [*free_pods, (ns, "web-0")]:
        assert await world.get_pod(name) is not None


async def test_429_then_success(world: World, kube: Any) -> None:
    node, other = await world.node("node"), await world.node("other")
    await _web(world, node, other)
    events: list[DrainEvent] = []
    drain = asyncio.create_task(
        drain_node(kube, node, DrainOptions(**FAST, timeout=30), on_event=events.append)
    )

    async def blocked_once() -> bool:
        return any(e.kind is DrainEventKind.BLOCKED for e in events)

    await _until(blocked_once)
    # A replacement becomes Ready elsewhere: the budget now allows one disruption.
    await world.pod(
        "web-new", node=other, owner=await world.owner("ReplicaSet", "web2"), labels={"app": "web"}
    )
    result = await asyncio.wait_for(drain, 30)
    assert result.drained and result.evict == [f"{world.namespace}/web-0"] and result.blocked == []


async def test_statefulset_pod_recreated_under_the_same_name_while_blocked(world: World, kube: Any) -> None:
    """kubernetes/kubernetes#138229: kubectl 1.23 would retry the eviction of the new db-0 for ever."""
    node, other = await world.node("node"), await world.node("other")
    sts = await world.owner("StatefulSet", "db")
    await world.pod("db-0", node=node, owner=sts, labels={"app": "db"})
    await world.pod("db-1", node=other, owner=sts, labels={"app": "db"})
    pdb = await world.pdb("db", labels={"app": "db"}, min_available=2)
    await world.wait_pdb(pdb, allowed=0)
    events: list[DrainEvent] = []
    drain = asyncio.create_task(
        drain_node(kube, node, DrainOptions(**FAST, timeout=30), on_event=events.append)
    )

    async def blocked_once() -> bool:
        return any(e.kind is DrainEventKind.BLOCKED for e in events)

    await _until(blocked_once)
    await world.delete_pod_now("db-0")
    await world.pod("db-0", node=other, owner=sts, labels={"app": "db"})
    result = await asyncio.wait_for(drain, 30)
    assert result.drained and result.evict == [f"{world.namespace}/db-0"]
    assert (await world.get_pod("db-0") or {})["spec"]["nodeName"] == other  # the new one is untouched


async def test_two_pdbs_on_one_pod_is_a_500_reported_not_retried(world: World, kube: Any) -> None:
    node, other = await world.node("node"), await world.node("other")
    await _web(world, node, other, replicas_there=2, min_available=1)
    second = await world.pdb("web-second", labels={"app": "web"}, min_available=1)
    await world.wait_pdb(second, allowed=2)
    events: list[DrainEvent] = []
    result = await drain_node(kube, node, DrainOptions(**FAST, timeout=10), on_event=events.append)
    assert not result.drained
    assert [r.pod for r in result.refused] == [f"{world.namespace}/web-0"]
    assert "HTTP 500" in result.refused[0].reason
    assert sum(1 for e in events if e.kind is DrainEventKind.FAILED) == 1
    assert not any(e.kind is DrainEventKind.BLOCKED for e in events)


async def test_server_dry_run_predicts_exactly_what_the_drain_does(world: World, kube: Any) -> None:
    node, other = await world.node("node"), await world.node("other")
    pdb = await _web(world, node, other)  # web-0 here is blocked
    await world.pod("free", node=node, owner=await world.owner("ReplicaSet", "free"))
    await _make_pod(world, node, "agent", {"owner": "DaemonSet"})
    await _make_pod(world, node, "static", {"annotations": {"kubernetes.io/config.mirror": "h"}})
    await world.pod("done", node=node, owner=await world.owner("Job", "once"), phase="Succeeded")
    options = DrainOptions(**FAST, ignore_daemonsets=True, timeout=3)

    plan = await plan_drain(kube, node, options)
    assert not (await world.get_node(node))["spec"].get("unschedulable")
    assert await world.get_pod("free") is not None
    assert plan.to_json()["blocked"] == [
        {"pod": f"{world.namespace}/web-0", "pdb": f"{world.namespace}/{pdb}"}
    ]

    real = await drain_node(kube, node, options)
    predicted, happened = plan.to_json(), real.to_json()
    for key in ("evict", "ignored", "refused", "blocked", "drained"):
        assert (
            sorted(map(str, predicted[key])) == sorted(map(str, happened[key]))
            if isinstance(predicted[key], list)
            else predicted[key] == happened[key]
        ), key
    assert sorted(happened["evict"]) == [f"{world.namespace}/done", f"{world.namespace}/free"]
    assert sorted(happened["ignored"]) == [f"{world.namespace}/agent", f"{world.namespace}/static"]


async def test_server_dry_run_reports_pdb_blocks_even_when_a_filter_refuses(world: World, kube: Any) -> None:
    node, other = await world.node("node"), await world.node("other")
    await _web(world, node, other)
    await world.pod("naked", node=node)
    plan = await plan_drain(kube, node, DrainOptions(**FAST))
    assert [r.pod for r in plan.refused] == [f"{world.namespace}/naked"]
    assert [b.pod for b in plan.blocked] == [f"{world.namespace}/web-0"]
    assert plan.evict == [] and not plan.drained
