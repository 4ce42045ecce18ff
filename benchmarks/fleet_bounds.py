"""P2's lower bounds on a fleet migration's wall time, from facts measured in the same run. Pure: no I/O.

Three bounds, each computed by ``fleet_bounds`` from the run's journal (per node, how long its steps took)
and the PodDisruptionBudgets' own record (the API server's audit log and a watch on the PDBs):

- *work*: each node's essential time is its drain (PDB waits included) plus restart-kubelet and verify;
  ``limit`` slots need at least max(sum of essentials / limit, the longest one). Blind to the PDBs except
  through the drains' waits, which it counts as work.
- *waves*: the goal's first wording: nodes in start order cut into waves of ``limit``, the slowest of
  each wave summed. The loop runs a sliding window, so it can beat this one; it is printed for history.
- *budgets* (PDB-aware): a PDB allows at most ``allowed`` disruptions at once, and each eviction holds one
  of them from the eviction until the replacement is Ready and the disruption controller has said so
  (``disruptionsAllowed`` back up). Per PDB, the run's evictions kept its allowance busy for
  ``busy_seconds`` in all (the integral of allowed - disruptionsAllowed(t), from the watch, up to the
  last moment the PDB was back at rest, so that only completed holds count), so one eviction holds a
  disruption for ``busy_seconds / evictions`` (the evictions before that moment) on average: the
  *recovery*. Every
  pod the PDB covered on a node to migrate has to be evicted at least once, which takes at least
  ceil(pods / allowed) rounds; all but the last round end with a recovery, and after the last eviction
  its node still has to restart its kubelet and verify (the fastest node's restart-kubelet + verify:
  ``tail``). So no schedule finishes sooner than
  ``(ceil(pods / allowed) - 1) * recovery + tail``
  for any PDB; the bound is the largest over the PDBs. It assumes only that a replacement becomes Ready
  no faster than the controllers, scheduler and kubelets made them in this run (the recovery is theirs,
  not the fleet loop's). Re-evictions of replacements that landed on nodes still to migrate are left out
  of the count (a better placement could avoid them), which keeps it a lower bound.

The P2 bound is max(work, budgets); ``ratio`` divides the run's wall time by it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BudgetFacts:
    """One PDB's record over a run."""

    name: str
    pods: int  # its pods on the nodes to migrate when the run started: each is evicted at least once
    allowed: int  # the most disruptions it allowed at once (disruptionsAllowed at rest)
    evictions: int  # evictions of its pods that the API server accepted during the run
    busy_seconds: float  # integral of (allowed - disruptionsAllowed) over the run

    @property
    def recovery(self) -> float:
        """Mean seconds one eviction held a disruption (0 when nothing was evicted)."""
        return self.busy_seconds / self.evictions if self.evictions else 0.0

    @property
    def rounds(self) -> int:
        return math.ceil(self.pods / self.allowed) if self.allowed > 0 and self.pods > 0 else 0


@dataclass(frozen=True)
class Bounds:
    work: float
    waves: float
    budgets: float  # the PDB-aware chain bound, 0 without PDB facts
    budget: str  # the PDB that sets it
    tail: float

    @property
    def bound(self) -> float:
        return max(self.work, self.budgets)


def busy_seconds(samples: Sequence[tuple[float, int]], *, allowed: int, start: float, end: float) -> float:
    """The integral over [start, end] of ``allowed - disruptionsAllowed(t)`` (never below 0), from the
    watch's (time, disruptionsAllowed) samples in time order; before the first sample the PDB is taken
    at rest."""
    total, level, since = 0.0, allowed, start
    for at, value in samples:
        if at <= start:
            level = value
            continue
        if at >= end:
            break
        total += max(0, allowed - level) * (at - since)
        level, since = value, at
    total += max(0, allowed - level) * max(0.0, end - since)
    return total


def measured_budget(
    name: str,
    *,
    pods: int,
    samples: Sequence[tuple[float, int]],
    evictions: Sequence[float],
    start: float,
    end: float,
) -> BudgetFacts:
    """One PDB's facts from the watch's (time, disruptionsAllowed) samples and the times its evictions
    were accepted. The recovery is measured over completed holds only: up to the last moment the PDB was
    back at rest (a hold still running when the run ended would pull the mean down); with none completed,
    over the whole run (which can only make it smaller)."""
    allowed = max((value for _, value in samples), default=0)
    rest = max((at for at, value in samples if start < at <= end and value == allowed), default=None)
    counted = [at for at in evictions if rest is not None and at < rest]
    if not counted:
        counted, rest = list(evictions), end
    assert rest is not None
    return BudgetFacts(name=name, pods=pods, allowed=allowed, evictions=len(counted),
                       busy_seconds=busy_seconds(samples, allowed=allowed, start=start, end=rest))


def budget_chain(facts: BudgetFacts, tail: float) -> float:
    """The least time any schedule needs to evict every pod ``facts`` covers and restart the last node."""
    if facts.rounds == 0:
        return 0.0
    return (facts.rounds - 1) * facts.recovery + tail


def fleet_bounds(
    steps: Mapping[str, Mapping[str, float]],
    order: Sequence[str],
    limit: int,
    budgets: Sequence[BudgetFacts] = (),
) -> Bounds:
    """``steps``: node -> step -> seconds (from the journal); ``order``: the nodes in the order they started."""

    def seconds(node: str, *names: str) -> float:
        return sum(steps[node].get(name, 0.0) for name in names)

    essential = {node: seconds(node, "drain", "restart-kubelet", "verify") for node in order}
    waves = [order[index : index + limit] for index in range(0, len(order), limit)]
    by_waves = sum(max(essential[node] for node in wave) for wave in waves)
    by_work = max(sum(essential.values()) / max(1, limit), max(essential.values(), default=0.0))
    tail = min((seconds(node, "restart-kubelet", "verify") for node in order), default=0.0)
    chains = [(budget_chain(facts, tail), facts.name) for facts in budgets]
    by_budgets, name = max(chains, default=(0.0, ""))
    return Bounds(work=by_work, waves=by_waves, budgets=by_budgets, budget=name, tail=tail)
