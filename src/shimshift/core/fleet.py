"""Which nodes to migrate, in which order, and how many at once: pure decisions for the fleet.

The rules follow what operators already trust (../shared/reference/peer-tools.md §7, §9a): the control
plane goes one node at a time in a phase of its own, workers go in batches bounded by
``--max-unavailable``, and a node whose drain a PodDisruptionBudget would block right now is passed over
while another node could go instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shimshift.core.errors import Refusal


class ControlPlaneOrder(StrEnum):
    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True)
class FleetNode:
    name: str
    control_plane: bool


@dataclass(frozen=True)
class Phase:
    """Nodes that may be migrated concurrently, at most ``concurrency`` at a time."""

    name: str
    nodes: tuple[str, ...]
    concurrency: int


# The run's options in the journal carry the nodes it selected when it began (reference §7.3): a resumed
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
        raise Refusal(f"the journal's {SELECTION_KEY} is not a list", hint="abandon the run and start a new one")
    nodes = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise Refusal(
                f"the journal's {SELECTION_KEY} has an entry without a node name: {item!r}",
                hint="abandon the run and start a new one",
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
            raise Refusal(f"--max-unavailable {value!r} is over 100%", hint="give a percentage from 1% to 100%")
        count = math.floor(total * percent / 100)
    else:
        raise Refusal(
            f"--max-unavailable {value!r} is neither a whole number nor a percentage",
            hint="give e.g. --max-unavailable 2 or --max-unavailable 25%",
        )
    if count < 1 and text != "0":
        return 1
    if count < 1:
        raise Refusal("--max-unavailable 0 would never migrate a node", hint="give at least 1")
    return count


def plan_phases(nodes: Iterable[FleetNode], *, control_plane: ControlPlaneOrder, max_unavailable: int) -> list[Phase]:
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
        Phase("control-plane", control, 1) if control else None,
        Phase("workers", workers, max(1, max_unavailable)) if workers else None,
    ]
    present = [phase for phase in phases if phase is not None]
    if control_plane is ControlPlaneOrder.LAST:
        present.reverse()
    return present


def choose_next(waiting: Sequence[str], *, blocked: frozenset[str], in_flight: int, limit: int) -> str | None:
    """The next node to start, or None to wait for a running one to finish.

    ``blocked`` holds the waiting nodes whose drain a PodDisruptionBudget would refuse right now. Such
    a node is started only when nothing else runs, because then waiting would never unblock it: its
    drain retries until its own timeout, exactly as `kubectl drain` would.
    """
    if in_flight >= limit or not waiting:
        return None
    for name in waiting:
        if name not in blocked:
            return name
    return waiting[0] if in_flight == 0 else None
