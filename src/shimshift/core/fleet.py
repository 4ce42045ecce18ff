"""Which nodes to migrate, in which order, and how many at once: pure decisions for the fleet.

The rules follow what operators already trust (kubeadm's upgrade order,
https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/, and Cluster API's maxUnavailable): the
control
plane goes one node at a time in a phase of its own, workers go in batches bounded by
``--max-unavailable``, and a node whose drain a PodDisruptionBudget would block right now is passed over
while another node could go instead.

Whether a PDB would block a node is plain arithmetic over cached objects (what the disruption controller
publishes as ``status.disruptionsAllowed``, minus what the nodes already started still have to evict), so
a pass over thousands of waiting nodes costs no API request; the orchestrator asks the API server (a dry
run) only about the one node it is about to start.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from shimshift.core.drain import selector_matches
from shimshift.core.errors import OPTION_INVALID, Refusal
from shimshift.core.run_copy import RUN_RECORD_INVALID

# Finding codes of the node selection (docs/findings.md), raised here and by the commands that select nodes.
NO_NODE_GIVEN = "no-node-given"
NO_NODE_MATCHES = "no-node-matches"
NODE_NOT_FOUND = "node-not-found"


class ControlPlaneOrder(StrEnum):
    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True)
class FleetNode:
    name: str
    control_plane: bool


@dataclass(frozen=True)
class FleetPhase:
    """Nodes that may be migrated concurrently, at most ``concurrency`` at a time."""

    name: str
    nodes: tuple[str, ...]
    concurrency: int


# The run's options in the journal carry the nodes it selected when it began
# (docs/runtime-facts.md#resuming-a-fleet-run): a resumed
# `--all` or `-l` run must finish those, whatever runtime they show now.
SELECTION_KEY = "selected_nodes"


def selection_record(nodes: Iterable[FleetNode]) -> dict[str, list[dict[str, object]]]:
    """The selection as the journal keeps it, merged into the run's options."""
    return {SELECTION_KEY: [{"name": node.name, "control_plane": node.control_plane} for node in nodes]}


def recorded_selection(options: Mapping[str, object]) -> list[FleetNode] | None:
    """The nodes a run selected when it began; None for a run recorded before the selection was kept.

    Raises Refusal for a selection the journal holds in a shape no shimshift wrote.
    """
    items = options.get(SELECTION_KEY)
    if items is None:
        return None
    if not isinstance(items, list):
        raise Refusal(
            f"the journal's {SELECTION_KEY} is not a list", hint="abandon the run and start a new one",
            code=RUN_RECORD_INVALID,
        )
    nodes = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise Refusal(
                f"the journal's {SELECTION_KEY} has an entry without a node name: {item!r}",
                hint="abandon the run and start a new one",
                code=RUN_RECORD_INVALID,
            )
        nodes.append(FleetNode(name, bool(item.get("control_plane"))))
    return nodes


_PERCENT = re.compile(r"^(\d{1,3})%$")


def parse_max_unavailable(value: str, *, total: int) -> int:
    """``"2"``, or ``"25%"`` of ``total`` rounded down like a Deployment's maxUnavailable (at least 1)."""
    text = value.strip()
    if text.isdigit():
        count = int(text)
    elif (match := _PERCENT.match(text)) is not None:
        percent = int(match.group(1))
        if percent > 100:
            raise Refusal(
                f"--max-unavailable {value!r} is over 100%", hint="give a percentage from 1% to 100%",
                code=OPTION_INVALID,
            )
        count = math.floor(total * percent / 100)
    else:
        raise Refusal(
            f"--max-unavailable {value!r} is neither a whole number nor a percentage",
            hint="give e.g. --max-unavailable 2 or --max-unavailable 25%",
            code=OPTION_INVALID,
        )
    if count < 1 and text != "0":
        return 1
    if count < 1:
        raise Refusal("--max-unavailable 0 would never migrate a node", hint="give at least 1", code=OPTION_INVALID)
    return count


def plan_phases(
    nodes: Iterable[FleetNode], *, control_plane: ControlPlaneOrder, max_unavailable: int
) -> list[FleetPhase]:
    """Split the nodes into the control-plane phase (one at a time) and the worker phase.

    Names are sorted so that two runs over the same cluster take the same order, which keeps a resumed
    run's report readable.
    """
    ordered = sorted(nodes, key=lambda node: node.name)
    control = tuple(node.name for node in ordered if node.control_plane)
    workers = tuple(node.name for node in ordered if not node.control_plane)
    # A control-plane node's drain and kubelet restart take its static pods' node out of rotation;
    # doing two at once could lose etcd quorum, so that phase never runs more than one node.
    phases = [
        FleetPhase("control-plane", control, 1) if control else None,
        FleetPhase("workers", workers, max(1, max_unavailable)) if workers else None,
    ]
    present = [phase for phase in phases if phase is not None]
    if control_plane is ControlPlaneOrder.LAST:
        present.reverse()
    return present


@dataclass(frozen=True)
class PodView:
    """What the PDB arithmetic needs of a pod. ``evictable``: a drain would evict it (not a DaemonSet or
    mirror pod, not finished, not already being deleted)."""

    namespace: str
    name: str
    node: str
    labels: Mapping[str, str] = field(default_factory=dict)
    evictable: bool = True


@dataclass(frozen=True)
class BudgetView:
    """A PodDisruptionBudget as the cache holds it; ``disruptions_allowed`` is its status field."""

    namespace: str
    name: str
    selector: Mapping[str, object] | None
    disruptions_allowed: int

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


# node -> {PDB "namespace/name": how many of the node's evictable pods that PDB covers}
Demands = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class BudgetSnapshot:
    """One consistent read of the cache: what each node's drain draws on, and what each PDB allows now."""

    demands: Demands
    allowed: Mapping[str, int]


class BudgetIndex:
    """Pods and PDBs kept matched as they change, so a snapshot costs a copy, not a rematch.

    The cache feeds it every pod and PDB event; matching a pod touches only the PDBs of its namespace,
    and a PDB whose selector changes rematches only its namespace's pods.
    """

    def __init__(self) -> None:
        self._pods: dict[tuple[str, str], PodView] = {}
        self._pods_by_namespace: dict[str, set[str]] = defaultdict(set)
        self._matched: dict[tuple[str, str], tuple[str, ...]] = {}
        self._budgets: dict[str, BudgetView] = {}
        # Candidates for a pod: the PDBs keyed by one of their matchLabels pairs, plus those without
        # matchLabels (expressions only, or empty). Scanning every PDB of a namespace for every pod would
        # cost pods × PDBs, minutes for a namespace with thousands of Deployments.
        self._by_label: dict[str, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
        self._unlabelled: dict[str, set[str]] = defaultdict(set)
        self._demands: dict[str, dict[str, int]] = defaultdict(dict)
        self._matched_on_node: dict[str, set[tuple[str, str]]] = defaultdict(set)

    def budget_keys(self) -> set[str]:
        """``namespace/name`` of every PDB indexed (a relist drops those no longer listed)."""
        return set(self._budgets)

    @classmethod
    def of(cls, pods: Iterable[PodView], budgets: Iterable[BudgetView]) -> BudgetIndex:
        index = cls()
        for budget in budgets:
            index.put_budget(budget)
        for pod in pods:
            index.put_pod(pod)
        return index

    def put_pod(self, pod: PodView) -> None:
        key = (pod.namespace, pod.name)
        self._unmatch(key)
        self._pods[key] = pod
        self._pods_by_namespace[pod.namespace].add(pod.name)
        self._match(key)

    def remove_pod(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        self._unmatch(key)
        if self._pods.pop(key, None) is not None:
            self._pods_by_namespace[namespace].discard(name)

    def put_budget(self, budget: BudgetView) -> None:
        before = self._budgets.get(budget.key)
        self._budgets[budget.key] = budget
        if before is None or before.selector != budget.selector:
            if before is not None:
                self._unindex(before)
            self._index(budget)
            self._rematch(budget.namespace)

    def remove_budget(self, namespace: str, name: str) -> None:
        before = self._budgets.pop(f"{namespace}/{name}", None)
        if before is not None:
            self._unindex(before)
            self._rematch(namespace)

    @staticmethod
    def _label_key(budget: BudgetView) -> tuple[str, str] | None:
        labels = (budget.selector or {}).get("matchLabels")
        if isinstance(labels, Mapping) and labels:
            key, value = min(labels.items())
            return str(key), str(value)
        return None

    def _index(self, budget: BudgetView) -> None:
        label = self._label_key(budget)
        if label is None:
            self._unlabelled[budget.namespace].add(budget.key)
        else:
            self._by_label[budget.namespace][label].add(budget.key)

    def _unindex(self, budget: BudgetView) -> None:
        label = self._label_key(budget)
        if label is None:
            self._unlabelled[budget.namespace].discard(budget.key)
        else:
            self._by_label[budget.namespace][label].discard(budget.key)

    def _candidates(self, pod: PodView) -> set[str]:
        found = set(self._unlabelled.get(pod.namespace, ()))
        by_label = self._by_label.get(pod.namespace)
        if by_label:
            for pair in pod.labels.items():
                found.update(by_label.get(pair, ()))
        return found

    def allowed(self, key: str) -> int | None:
        """The PDB's ``disruptionsAllowed``, or None when there is no such PDB."""
        budget = self._budgets.get(key)
        return None if budget is None else budget.disruptions_allowed

    def one_pod_per_budget(self, node: str) -> dict[str, tuple[str, str]]:
        """For each PDB covering an evictable pod of ``node``, one such pod (namespace, name): asking the
        API server about that one pod tells whether the PDB would block the node's drain now."""
        found: dict[str, tuple[str, str]] = {}
        for key in sorted(self._matched_on_node.get(node, ())):
            for budget_key in self._matched[key]:
                found.setdefault(budget_key, key)
        return found

    def snapshot(self) -> BudgetSnapshot:
        """The PDBs' allowed disruptions as of now, and a live read-only view of the demands: copying
        the demands of thousands of nodes on every pass of the fleet loop would cost more than deciding."""
        allowed = {key: budget.disruptions_allowed for key, budget in self._budgets.items()}
        return BudgetSnapshot(MappingProxyType(self._demands), allowed)

    def _match(self, key: tuple[str, str]) -> None:
        pod = self._pods[key]
        if not pod.evictable or not pod.node:
            return
        keys = tuple(
            sorted(key for key in self._candidates(pod) if selector_matches(self._budgets[key].selector, pod.labels))
        )
        if keys:
            self._matched[key] = keys
            self._matched_on_node[pod.node].add(key)
            counts = self._demands[pod.node]
            for budget_key in keys:
                counts[budget_key] = counts.get(budget_key, 0) + 1

    def _unmatch(self, key: tuple[str, str]) -> None:
        keys = self._matched.pop(key, ())
        if not keys:
            return
        node = self._pods[key].node
        self._matched_on_node[node].discard(key)
        counts = self._demands[node]
        for budget_key in keys:
            counts[budget_key] -= 1
            if counts[budget_key] <= 0:
                del counts[budget_key]
        if not counts:
            del self._demands[node]

    def _rematch(self, namespace: str) -> None:
        for name in self._pods_by_namespace.get(namespace, ()):
            self._unmatch((namespace, name))
            self._match((namespace, name))


def budget_snapshot(pods: Iterable[PodView], budgets: Iterable[BudgetView]) -> BudgetSnapshot:
    """Match every evictable pod against the PDBs of its namespace (policy/v1 selector rules)."""
    return BudgetIndex.of(pods, budgets).snapshot()


def remaining_budgets(snapshot: BudgetSnapshot, *, in_flight: Iterable[str]) -> dict[str, int]:
    """Disruptions still free for a new node: the PDBs' ``disruptionsAllowed`` minus the pods that the
    nodes already started have yet to evict (those pods are still in the snapshot, and the disruption
    controller counts them only once they are evicted)."""
    remaining = dict(snapshot.allowed)
    for node in in_flight:
        reserve(remaining, snapshot.demands.get(node, {}))
    return remaining


def reserve(remaining: dict[str, int], demand: Mapping[str, int]) -> None:
    """Take a started node's disruptions out of ``remaining`` (in place)."""
    for key, count in demand.items():
        if key in remaining:
            remaining[key] -= count


@dataclass(frozen=True)
class Start:
    """The next node to start. ``forced``: every waiting node is blocked and nothing runs, so waiting
    would never free a PDB; the node goes anyway and its drain waits for the budget (kubectl's way)."""

    node: str
    forced: bool = False


# The server refuses an eviction only when its PDB allows nothing; the cache runs behind it by the
# evictions whose pod deletion arrived before the PDB's new status (the two are separate watches), one
# per race, and the nodes in flight already hold their own pods' disruptions. So a PDB the cache leaves
# with at least this many to spare needs no dry run: only the last disruption is worth asking about.
PROBE_BELOW = 2

# How long a node the server's dry run refused is passed over while its PDBs' published status stays
# the same. Asked again sooner, the server would give the same answer (seen at 300 nodes: 64 dry runs
# per start, refused candidates asked again on every pass); never asked again, a refusal the cache
# cannot explain (a PDB status the controller has not caught up on yet) would hold the node until the end.
REFUSAL_MEMORY_SECONDS = 30.0


def budgets_to_probe(demand: Mapping[str, int], remaining: Mapping[str, int]) -> frozenset[str]:
    """The node's PDBs worth a server dry run before it starts: those the cache leaves with fewer than
    ``PROBE_BELOW`` disruptions (``remaining``: after the nodes in flight took theirs)."""
    return frozenset(key for key in demand if remaining.get(key, 0) < PROBE_BELOW)


@dataclass
class Refusals:
    """Nodes the server's dry run refused although the cache let them go, each with what its PDBs
    allowed at that moment: passed over until one of those PDBs publishes another figure, or
    ``REFUSAL_MEMORY_SECONDS`` pass."""

    memory_seconds: float = REFUSAL_MEMORY_SECONDS
    _seen: dict[str, tuple[float, tuple[tuple[str, int], ...]]] = field(default_factory=dict)

    def remember(self, node: str, snapshot: BudgetSnapshot, *, now: float) -> None:
        self._seen[node] = (now, _allowed_of(node, snapshot))

    def passed_over(self, snapshot: BudgetSnapshot, *, now: float) -> frozenset[str]:
        """The remembered nodes still to pass over; forgets the others."""
        for node, (when, allowed) in list(self._seen.items()):
            if now - when >= self.memory_seconds or _allowed_of(node, snapshot) != allowed:
                del self._seen[node]
        return frozenset(self._seen)


def _allowed_of(node: str, snapshot: BudgetSnapshot) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((key, snapshot.allowed.get(key, 0)) for key in snapshot.demands.get(node, {})))


def blocked_by(demand: Mapping[str, int], remaining: Mapping[str, int]) -> tuple[str, ...]:
    """The PDBs (``namespace/name``) that have no disruption left for a node's drain now (``remaining``:
    after the nodes in flight took theirs); empty: the node may start."""
    return tuple(sorted(key for key in demand if remaining.get(key, 1) < 1))


def next_start(
    waiting: Sequence[str],
    *,
    demands: Demands,
    remaining: Mapping[str, int],
    in_flight: int,
    limit: int,
    passed_over: frozenset[str] = frozenset(),
) -> Start | None:
    """The first waiting node whose PDBs all have a disruption left, or None to wait.

    ``passed_over`` holds nodes the API server's dry run found blocked although the arithmetic did not
    (a stale cache; see :class:`Refusals`): they are skipped too.
    """
    if in_flight >= limit or not waiting:
        return None
    for name in waiting:
        if name in passed_over:
            continue
        if not blocked_by(demands.get(name, {}), remaining):
            return Start(name)
    return Start(waiting[0], forced=True) if in_flight == 0 else None
