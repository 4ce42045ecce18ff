"""PDB arithmetic for the fleet: matching, reservations, and a whole fleet run on a simulated clock.

Matrix: pod/PDB matching (namespaces, selectors, DaemonSet and finished pods, two PDBs on one pod);
the index kept up to date by pod and PDB events (eviction, PDB status change, selector change,
deletion); remaining budgets with nodes in flight; and a discrete-event simulation of thousands of
nodes whose decisions come only from :mod:`shimshift.core.fleet`, checked against the critical-path bound.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace

import pytest

from shimshift.core.fleet import (
    BudgetIndex,
    BudgetSnapshot,
    BudgetView,
    PodView,
    budget_snapshot,
    next_start,
    remaining_budgets,
    reserve,
)

WEB = BudgetView("shop", "web", {"matchLabels": {"app": "web"}}, 1)
DB = BudgetView("shop", "db", {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}, 0)


def pod(name: str, node: str, app: str, *, namespace: str = "shop", evictable: bool = True) -> PodView:
    return PodView(namespace, name, node, {"app": app}, evictable)


def test_demands_count_only_evictable_pods_of_the_budgets_namespace() -> None:
    pods = [
        pod("web-1", "n1", "web"),
        pod("web-2", "n1", "web"),
        pod("db-0", "n1", "db"),
        pod("web-3", "n2", "web", namespace="other"),  # same labels, other namespace
        pod("agent", "n2", "web", evictable=False),  # a DaemonSet pod stays
        pod("cache", "n3", "cache"),  # no PDB at all
    ]
    snapshot = budget_snapshot(pods, [WEB, DB])
    assert snapshot.demands == {"n1": {"shop/web": 2, "shop/db": 1}}
    assert snapshot.allowed == {"shop/web": 1, "shop/db": 0}


def test_a_pod_under_two_budgets_counts_against_both() -> None:
    both = BudgetView("shop", "all", {}, 3)  # policy/v1: an empty selector selects every pod
    snapshot = budget_snapshot([pod("web-1", "n1", "web")], [WEB, both])
    assert snapshot.demands == {"n1": {"shop/web": 1, "shop/all": 1}}


def test_index_follows_evictions_status_and_selector_changes() -> None:
    index = BudgetIndex.of([pod("web-1", "n1", "web"), pod("db-0", "n2", "db")], [WEB, DB])
    # An eviction: the pod gets a deletionTimestamp, so it is no longer evictable.
    index.put_pod(pod("web-1", "n1", "web", evictable=False))
    assert index.snapshot().demands == {"n2": {"shop/db": 1}}
    # The disruption controller frees the db budget.
    index.put_budget(replace(DB, disruptions_allowed=1))
    assert index.snapshot().allowed["shop/db"] == 1
    # The web PDB now selects the db pods too.
    index.put_budget(replace(WEB, selector={"matchExpressions": [{"key": "app", "operator": "Exists"}]}))
    assert index.snapshot().demands == {"n2": {"shop/db": 1, "shop/web": 1}}
    index.remove_budget("shop", "db")
    assert index.snapshot() == BudgetSnapshot({"n2": {"shop/web": 1}}, {"shop/web": 1})
    index.remove_pod("shop", "db-0")
    assert index.snapshot().demands == {}


def test_a_pod_moving_nodes_moves_its_demand() -> None:
    index = BudgetIndex.of([pod("web-1", "", "web")], [WEB])  # pending: not on a node yet
    assert index.snapshot().demands == {}
    index.put_pod(pod("web-1", "n4", "web"))
    assert index.snapshot().demands == {"n4": {"shop/web": 1}}


def test_nodes_in_flight_hold_their_pods_disruptions() -> None:
    snapshot = BudgetSnapshot({"n1": {"shop/web": 1}, "n2": {"shop/web": 1}}, {"shop/web": 1})
    remaining = remaining_budgets(snapshot, in_flight=["n1"])
    assert remaining == {"shop/web": 0}
    assert next_start(["n2"], demands=snapshot.demands, remaining=remaining, in_flight=1, limit=5) is None
    free = remaining_budgets(snapshot, in_flight=[])
    start = next_start(["n1", "n2"], demands=snapshot.demands, remaining=free, in_flight=0, limit=5)
    assert start is not None and start.node == "n1"
    reserve(free, snapshot.demands[start.node])
    # n2 shares the budget n1 has just taken: within the same pass it must wait.
    assert next_start(["n2"], demands=snapshot.demands, remaining=free, in_flight=1, limit=5) is None


# --- a whole fleet on a simulated clock ----------------------------------------------------------

PODS_PER_NODE = 30
DAEMONSET_PODS = 2
RESTART_SECONDS = 10.0  # kubelet restart until Ready, after the drain
READY_SECONDS = 3.0  # an evicted pod's replacement becomes Ready (and gives its budget back)


@dataclass
class Fleet:
    """A cluster of ``nodes`` nodes whose pods belong to Deployments with a PDB of maxUnavailable 1.

    Replacement pods land on nodes already migrated, so they never add to a waiting node's demand.
    """

    nodes: int
    deployments: int
    limit: int
    clock: float = 0.0
    index: BudgetIndex = field(default_factory=BudgetIndex)
    allowed: dict[str, int] = field(default_factory=dict)
    pods_of: dict[str, list[PodView]] = field(default_factory=lambda: defaultdict(list))
    queued: dict[str, list[tuple[str, PodView]]] = field(default_factory=lambda: defaultdict(list))
    left: dict[str, int] = field(default_factory=dict)
    events: list[tuple[float, int, str, str]] = field(default_factory=list)
    sequence: int = 0
    peak_in_flight: int = 0
    blocked_unforced: int = 0

    def build(self) -> None:
        for number in range(self.deployments):
            budget = BudgetView("apps", f"d{number}", {"matchLabels": {"app": f"d{number}"}}, 1)
            self.allowed[budget.key] = 1
            self.index.put_budget(budget)
        for node_number in range(self.nodes):
            node = f"node-{node_number:05d}"
            for slot in range(PODS_PER_NODE):
                evictable = slot >= DAEMONSET_PODS
                app = f"d{(node_number * 7 + slot * 131) % self.deployments}" if evictable else "agent"
                item = PodView("apps", f"{node}-{slot}", node, {"app": app}, evictable)
                self.index.put_pod(item)
                self.pods_of[node].append(item)

    def at(self, delay: float, kind: str, subject: str) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (self.clock + delay, self.sequence, kind, subject))

    def disrupt(self, budget: str, count: int) -> None:
        """The PDB's status after ``count`` more pods are disrupted (negative: Ready again)."""
        self.allowed[budget] -= count
        name = budget.split("/")[1]
        self.index.put_budget(BudgetView("apps", name, {"matchLabels": {"app": name}}, self.allowed[budget]))

    def evict(self, node: str, item: PodView, budget: str) -> None:
        self.disrupt(budget, 1)
        self.index.put_pod(replace(item, evictable=False))
        self.at(READY_SECONDS, "ready", budget)
        self.left[node] -= 1
        if self.left[node] == 0:
            self.at(RESTART_SECONDS, "done", node)

    def start(self, node: str, *, forced: bool) -> None:
        covered = [item for item in self.pods_of[node] if item.evictable]
        self.left[node] = len(covered)
        for item in covered:
            budget = f"apps/{item.labels['app']}"
            if self.allowed[budget] >= 1:
                self.evict(node, item, budget)
            else:
                self.blocked_unforced += 0 if forced else 1
                self.queued[budget].append((node, item))

    def run(self) -> float:
        self.build()
        waiting = sorted(self.pods_of)
        running: set[str] = set()
        while waiting or running:
            if len(running) >= self.limit:  # the fleet loop decides only when a slot is free
                self.step(running)
                continue
            snapshot = self.index.snapshot()
            remaining = remaining_budgets(snapshot, in_flight=running)
            starts = []
            while item := next_start(
                waiting, demands=snapshot.demands, remaining=remaining, in_flight=len(running), limit=self.limit
            ):
                waiting.remove(item.node)
                running.add(item.node)
                reserve(remaining, snapshot.demands.get(item.node, {}))
                starts.append(item)
            for item in starts:
                self.start(item.node, forced=item.forced)
            self.peak_in_flight = max(self.peak_in_flight, len(running))
            self.step(running)
        return self.clock

    def step(self, running: set[str]) -> None:
        """Advance the clock to the next event and apply it."""
        self.clock, _, kind, subject = heapq.heappop(self.events)
        if kind == "done":
            running.discard(subject)
            return
        # A replacement is Ready: the disruption controller gives the budget back.
        self.disrupt(subject, -1)
        if self.queued[subject]:
            node, item = self.queued[subject].pop(0)
            self.evict(node, item, subject)


def critical_path_bound(nodes: int, deployments: int, limit: int) -> float:
    """The least time any schedule needs: the waves --max-unavailable allows, each at least a restart
    (a drain with free budgets is instant here); and, for a PDB of maxUnavailable 1, its pods one
    READY_SECONDS cycle after another, plus the last node's restart."""
    waves = math.ceil(nodes / limit) * RESTART_SECONDS
    pods_per_budget = nodes * (PODS_PER_NODE - DAEMONSET_PODS) / deployments
    per_budget = (pods_per_budget - 1) * READY_SECONDS + RESTART_SECONDS
    return max(waves, per_budget)


@pytest.mark.parametrize(("nodes", "limit"), [(1000, 10), (1000, 50), (3000, 30)])
def test_simulated_fleet_never_starts_a_blocked_node_and_stays_near_the_bound(nodes: int, limit: int) -> None:
    fleet = Fleet(nodes=nodes, deployments=nodes * 2, limit=limit)
    total = fleet.run()
    bound = critical_path_bound(nodes, nodes * 2, limit)
    assert fleet.peak_in_flight <= limit
    assert fleet.blocked_unforced == 0, "the arithmetic started a node a PDB held back"
    assert not fleet.left or all(count == 0 for count in fleet.left.values())
    assert len(fleet.left) == nodes
    assert total <= 1.15 * bound, (total, bound)
