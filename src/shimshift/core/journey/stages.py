"""The journey's sequence in stages: barriers that run alone, and sets of operations that may run together.

sequence.py orders every operation; this module decides which of them may overlap. Pure: a sequence in,
stages out; a journal's finished keys in, where a run goes on out.

- A **barrier** runs alone, after everything before it and before everything after it: ``kubeadm upgrade
  apply``, every control-plane node's ``kubeadm upgrade node``, and every cluster edit. kubeadm of one minor
  must see the apply of that minor done and the cluster's configuration as that apply left it (sequence.py),
  and a control-plane node's kubeadm upgrades its static pods: two at once could lose etcd quorum or every
  API server. A control-plane node's drain that holds its kubeadm step (a dockershim node's first drain,
  sequence.py ``_migrations_before_kubeadm``) is a barrier too, for the same reason.
- A **kubeadm stage** is the workers' ``kubeadm upgrade node`` of one control-plane step, after its apply and
  the control-plane nodes' (sequence.py puts them there, one per worker). They run together, at most
  ``--kubeadm-parallel`` at once (:data:`KUBEADM_PARALLEL`). On a worker that step changes no workload: it
  reads the cluster's kubelet-config and kubeadm-config ConfigMaps, writes the node's own
  /var/lib/kubelet/config.yaml (and kubeadm-flags.env; instance-config.yaml from 1.34) and restarts nothing
  (kubernetes/website content/en/docs/tasks/administer-cluster/kubeadm/upgrading-linux-nodes.md;
  cmd/kubeadm/app/cmd/phases/upgrade/node/kubeletconfig.go), so the workers' runs do not depend on one
  another. A worker whose kubeadm step its migration drain holds is not in it (that step runs inside the
  drain, with the drains).
- A **drain stage** is the drains between two barriers. They go to the same control-plane release, each on
  its own node, so they may run together: control-plane nodes first, one at a time, then the workers within
  ``--max-unavailable``, with the PDB-aware order of core/fleet.py (:func:`drain_phases`; the rules are
  fleet.py's, not repeated here). Control-plane nodes first and alone, as the one-minor upgrade does
  (core/upgrade/cluster.py ``upgrade_phases``): two control-plane nodes drained at once could lose etcd
  quorum, and a worker's kubelet should not restart while a control-plane node of its release is down.

No stage holds two operations of one node (a second one starts a new stage: a node's operations stay in
order), nor operations of two kinds.

Decision where the issue was silent: a *worker's* drain that holds its ``kubeadm upgrade node`` (its migration
drain) runs with the other drains of its stage, not alone. On a worker that step only writes the node's own
kubelet files from the cluster's ConfigMaps, after the apply of its release; kubeadm's guide upgrades workers
"one node at a time or few nodes at a time" with exactly that step inside the drain (kubernetes/website
content/en/docs/tasks/administer-cluster/kubeadm/upgrading-linux-nodes.md). Kept alone, every dockershim
worker's first drain would run one after the other: 300 of a 300-node fleet's drains.

Where a run goes on (:func:`stage_resume`): the first stage not finished, and of a drain or kubeadm stage the
operations not finished, in any subset: they finish in any order. A drain started and not finished goes on
from its own journal (resumed or rolled back, as before); a kubeadm step not finished runs again, as it
did when every step ran alone. Old journals, written when every operation ran
one after the other, hold a prefix of the sequence: a special case of the same rule.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from shimshift.core.errors import Refusal
from shimshift.core.fleet import ControlPlaneOrder, FleetNode, FleetPhase, plan_phases
from shimshift.core.journey.sequence import ClusterEdit, KubeadmMode, KubeadmUpgrade, NodeDrain, Operation
from shimshift.core.run_copy import RUN_RECORD_INVALID

__all__ = [
    "KUBEADM_PARALLEL",
    "Stage",
    "StageKind",
    "StageResume",
    "concurrent",
    "drain_phases",
    "journey_stages",
    "stage_kind",
    "stage_resume",
]


#: ``--kubeadm-parallel``'s default: workers' ``kubeadm upgrade node`` at once. Each run costs the API server a
#: few reads (the kubeadm-config and kubelet-config ConfigMaps, its Node; from 1.34 a patch of its Node, the
#: cri-socket annotation removed) and the machine running shimshift an SSH session; bounded, because the API
#: server has just restarted at that step. 10 at about 2 s a run takes 300 workers through a step in about a
#: minute, where one after the other took ten.
KUBEADM_PARALLEL = 10


class StageKind(enum.StrEnum):
    ALONE = "alone"  # one barrier
    KUBEADM = "kubeadm"  # workers' `kubeadm upgrade node` of one step, within --kubeadm-parallel
    DRAINS = "drains"  # drains, control plane first one at a time, workers within --max-unavailable


@dataclass(frozen=True)
class Stage:
    """Operations of the sequence, in its order: one barrier, or operations of one kind on distinct nodes."""

    operations: tuple[Operation, ...]
    kind: StageKind

    @property
    def drains(self) -> bool:
        return self.kind is StageKind.DRAINS

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(op.key for op in self.operations)


def concurrent(op: Operation) -> bool:
    """Whether ``op`` may run beside the drains of its stage: a drain that holds no kubeadm step, or only its
    worker's ``kubeadm upgrade node`` (see the module's decision)."""
    return isinstance(op, NodeDrain) and (op.kubeadm is None or not op.control_plane)


def stage_kind(op: Operation) -> StageKind:
    """Which kind of stage ``op`` belongs to (see the module): a worker's bare ``kubeadm upgrade node`` goes
    with the other workers' of its step, a concurrent drain with the drains, anything else alone."""
    if isinstance(op, KubeadmUpgrade) and op.mode is KubeadmMode.NODE and not op.control_plane:
        return StageKind.KUBEADM
    if concurrent(op):
        return StageKind.DRAINS
    return StageKind.ALONE


def journey_stages(sequence: Sequence[Operation]) -> tuple[Stage, ...]:
    """The sequence cut into stages, in order; concatenated, they are the sequence. A stage holds operations
    of one kind, never two of one node (a second one starts a new stage: its node's operations stay in
    order), and a kubeadm stage one release."""
    stages: list[Stage] = []
    current: list[NodeDrain | KubeadmUpgrade] = []
    for op in sequence:
        kind = stage_kind(op)
        if current and not _joins(current, kind, op):
            stages.append(Stage(tuple(current), stage_kind(current[0])))
            current = []
        if isinstance(op, ClusterEdit) or kind is StageKind.ALONE:
            stages.append(Stage((op,), StageKind.ALONE))
        else:
            current.append(op)
    if current:
        stages.append(Stage(tuple(current), stage_kind(current[0])))
    return tuple(stages)


def _joins(current: Sequence[NodeDrain | KubeadmUpgrade], kind: StageKind, op: Operation) -> bool:
    """Whether ``op`` may join the stage being gathered (see :func:`journey_stages`)."""
    if kind is StageKind.ALONE or isinstance(op, ClusterEdit) or stage_kind(current[0]) is not kind:
        return False
    if op.node in {o.node for o in current}:
        return False
    return not isinstance(op, KubeadmUpgrade) or all(
        isinstance(o, KubeadmUpgrade) and o.release == op.release for o in current
    )


def drain_phases(drains: Sequence[NodeDrain], *, max_unavailable: int) -> list[FleetPhase]:
    """The phases a drain stage runs in: the fleet's own (core/fleet.py ``plan_phases``), control plane first."""
    return plan_phases(
        (FleetNode(op.node, op.control_plane) for op in drains),
        control_plane=ControlPlaneOrder.FIRST,
        max_unavailable=max_unavailable,
    )


@dataclass(frozen=True)
class StageResume:
    """Where a run goes on: ``stage`` is the index of the first stage not finished (len(stages): all done);
    ``pending``: that stage's operations not finished, in order; ``done``: operations finished in all."""

    stage: int
    pending: tuple[Operation, ...]
    done: int


def stage_resume(stages: Sequence[Stage], *, finished: Collection[str]) -> StageResume:
    """From the journal's finished operation keys. Anything finished past the first unfinished stage, or a
    key of no operation, is a journal of another journey (another ``--to`` or ``--skew``): refused."""
    keys = {key for stage in stages for key in stage.keys}
    unknown = sorted(set(finished) - keys)
    if unknown:
        raise Refusal(
            f"the journal records {unknown[0]!r}, which is not in this journey",
            hint="resume with the --to and --skew of the run that wrote it (shimshift status shows them)",
            code=RUN_RECORD_INVALID,
        )
    index = 0
    while index < len(stages) and all(key in finished for key in stages[index].keys):
        index += 1
    if index == len(stages):
        return StageResume(index, (), len(keys))
    later = [key for stage in stages[index + 1 :] for key in stage.keys if key in finished]
    if later:
        first = next(key for key in stages[index].keys if key not in finished)
        raise Refusal(
            f"the journal records {later[0]!r} as finished but not {first!r}, which comes before it",
            hint="the journal does not match this journey's order; resume with the options of the run that wrote it",
            code=RUN_RECORD_INVALID,
        )
    pending = tuple(op for op in stages[index].operations if op.key not in finished)
    return StageResume(index, pending, len(set(finished)))
