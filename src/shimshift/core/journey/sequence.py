"""The journey's run, as data: every change ``upgrade --to`` makes, in order, made from the schedule alone.

schedule.py says *when* each node drains and where the control plane stands; this module turns that into
the operations an executor performs one after the other, each with a stable journal key, and decides what
a failure of each one leads to. Pure: a :class:`Journey` and the operator's options in, operations out.

The operations:

- :class:`KubeadmUpgrade` - ``kubeadm upgrade apply vX`` on the first control-plane node, then
  ``kubeadm upgrade node`` with kubeadm X on every other node, control plane and workers alike, at every
  control-plane step; no drain. kubeadm's guide upgrades a worker the same way: upgrade kubeadm, run
  ``kubeadm upgrade node`` (it "upgrades the local kubelet configuration"), and only then drain it and
  swap the kubelet (kubernetes/website content/en/docs/tasks/administer-cluster/kubeadm/
  upgrading-linux-nodes.md). kubeadm writes /var/lib/kubelet/config.yaml and kubeadm-flags.env and
  restarts nothing on a worker, so the running kubelet reads them only when its drain restarts it.
- :class:`ClusterEdit` - ``failCgroupV1: false`` in the kube-system/kubelet-config ConfigMap before the
  first 1.35 apply, only with ``--allow-cgroup-v1`` (kubeadm writes every node's config.yaml from that
  ConfigMap and never sets the field: CHANGELOG/CHANGELOG-1.35.md, "cgroup v1").
- :class:`NodeDrain` - one node's drain: cordon, drain, the node's files for the drain's kubelet, the
  kubelet and kubectl of the control plane's release, restart, verify, uncordon; the migration to
  cri-dockerd in a dockershim node's first one, which also holds the node's kubeadm step of the same
  release when there is one (the one-minor upgrade's drain: the annotation is cri-dockerd's before kubeadm
  1.24 runs, kubernetes/kubeadm#2597).

Decisions where the issue was silent:

- A worker whose kubelet trails (it jumps minors in its drains) still runs ``kubeadm upgrade node`` of
  every minor, at the control-plane step, not in its drain. kubeadm of one minor reads the cluster's
  configuration as the apply of that minor left it (kubeadm 1.31 stores v1beta4, which an older kubeadm
  cannot read: cmd/kubeadm/app/util/config/cluster.go at v1.31.14), so a skipped minor's kubeadm cannot be
  run later, in the drain; and each minor's kubeadm makes a change a later one does not (1.26 strips
  ``--container-runtime``, 1.34-1.36 move the endpoint into instance-config.yaml, 1.35 strips
  ``--pod-infra-container-image``: cmd/kubeadm/app/phases/upgrade/postupgrade.go at each tag). A kubelet
  older than the config.yaml kubeadm writes reads it leniently if it restarts unplanned
  (pkg/kubelet/kubeletconfig/util/codec/codec.go at v1.23.17 and v1.28.15).
- ``--ignore-preflight-errors=SystemVerification`` goes to kubeadm 1.35 and later only with
  ``--allow-cgroup-v1``: from 1.35 kubeadm's cgroup check is an error on a cgroup v1 host
  (k8s.io/system-validators v1.12.1, cgroup_validator_linux.go), and that flag is the only way past it.
- ``--kubelet-websockets-off`` writes ``--feature-gates=ExtendWebSocketsToKubelet=false`` into the node's
  KUBELET_EXTRA_ARGS in the drain whose kubelet first reaches 1.36, as part of that drain's files (its
  rollback restores them), never before: kubelets before 1.36 exit on a gate they do not know
  (pkg/features/kube_features.go at v1.36.5). The API server keeps its gate: it proxies WebSocket
  streams to a kubelet only when the node declares the feature in its status, which a kubelet with the
  gate off does not (pkg/registry/core/pod/rest/subresources.go at v1.37.2).
- A failed drain rolls that node back to the releases it had when that drain began (its kubelet and
  kubectl, its files, dockershim when the drain was migrating it), then the run stops (after the drains of
  its stage already in flight end: stages.py). A failed kubeadm
  step or cluster edit stops the run without undoing anything: kubeadm restores a control-plane node's
  static pods itself when its upgrade fails (cmd/kubeadm/app/phases/upgrade/staticpods.go
  rollbackOldManifests), and a finished ``kubeadm upgrade apply`` is never undone. Either way the run is
  resumable at the operation that failed. Which operations may run together, and where a resumed run goes
  on, is stages.py's.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from shimshift.core.errors import Refusal
from shimshift.core.journey.node_edits import KUBELET_WEBSOCKETS_FROM, NODE_LOCAL_CRI_SOCKET_FROM
from shimshift.core.journey.schedule import ControlPlaneStep, Drain, Journey
from shimshift.core.run_copy import RUN_RECORD_INVALID
from shimshift.core.versions import FLAG_RULES_BY_NAME, KubernetesVersion, parse_kubelet_version

__all__ = [
    "FAIL_CGROUP_V1_FROM",
    "ClusterEdit",
    "FailureDecision",
    "JourneyOptions",
    "KubeadmMode",
    "KubeadmUpgrade",
    "NodeDrain",
    "NodeEdit",
    "Operation",
    "journey_sequence",
    "on_failure",
    "replaces_cri_dockerd",
    "sequence_from_record",
    "sequence_record",
]

#: The first kubelet whose failCgroupV1 defaults to true (pkg/kubelet/apis/config/v1beta1/defaults.go at v1.35.8).
FAIL_CGROUP_V1_FROM = 35
#: kubeadm's preflight check that holds the cgroup check (k8s.io/system-validators).
_SYSTEM_VERIFICATION = "--ignore-preflight-errors=SystemVerification"


@dataclass(frozen=True)
class JourneyOptions:
    """What the operator asked for, beyond the schedule."""

    allow_cgroup_v1: bool = False  # --allow-cgroup-v1
    kubelet_websockets_off: bool = False  # --kubelet-websockets-off
    kubeadm_flags: tuple[str, ...] = ()  # given to every kubeadm upgrade, after shimshift's own


class KubeadmMode(enum.StrEnum):
    APPLY = "apply"  # the first control-plane node: `kubeadm upgrade apply vX --yes`
    NODE = "node"  # every other node: `kubeadm upgrade node`


class NodeEdit(enum.StrEnum):
    """What the engine changes in a node's files inside a drain, for the kubelet that drain starts."""

    MIGRATE = "migrate-to-cri-dockerd"  # the migration's own plan (node_planner.py)
    DROP_CONTAINER_RUNTIME = "drop---container-runtime"  # kubelet 1.27 exits on it
    DROP_POD_INFRA_CONTAINER_IMAGE = "drop---pod-infra-container-image"  # kubelet 1.35 exits on it
    FAIL_CGROUP_V1_FALSE = "failCgroupV1-false"  # kubelet 1.35 on a cgroup v1 host, --allow-cgroup-v1 only
    # kubelet 1.36+ through cri-dockerd, --kubelet-websockets-off only: the gate in KUBELET_EXTRA_ARGS, in the
    # drain's own plan (node_edits.py), so the drain's rollback restores the file.
    KUBELET_WEBSOCKETS_OFF = "ExtendWebSocketsToKubelet-false"


# The flag each edit removes: the kubelet release that rejects it is the flag rule's (versions.py).
_FLAG_EDITS: Mapping[NodeEdit, str] = {
    NodeEdit.DROP_CONTAINER_RUNTIME: "--container-runtime",
    NodeEdit.DROP_POD_INFRA_CONTAINER_IMAGE: "--pod-infra-container-image",
}


@dataclass(frozen=True)
class KubeadmUpgrade:
    """kubeadm ``release`` upgrades ``node``: ``apply`` (first control-plane node) or ``node``. Its kubeadm
    binary is put in place first (the old one kept); ``instance_config``: kubeadm 1.34 or later, so
    node_edits.py's instance-config.yaml is written first when the node lacks it."""

    node: str
    control_plane: bool
    release: KubernetesVersion
    mode: KubeadmMode
    flags: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"kubeadm-{self.mode}:v{self.release}:{self.node}"

    @property
    def instance_config(self) -> bool:
        return self.release.minor >= NODE_LOCAL_CRI_SOCKET_FROM

    def argv(self, kubeadm: str) -> tuple[str, ...]:
        if self.mode is KubeadmMode.APPLY:
            return (kubeadm, "upgrade", "apply", f"v{self.release}", *self.flags)
        return (kubeadm, "upgrade", "node", *self.flags)


@dataclass(frozen=True)
class ClusterEdit:
    """``failCgroupV1: false`` in kube-system/kubelet-config, before kubeadm ``before`` first writes it out."""

    before: KubernetesVersion
    setting: str = "failCgroupV1"
    value: bool = False

    @property
    def key(self) -> str:
        return f"kubelet-config:{self.setting}={str(self.value).lower()}"


@dataclass(frozen=True)
class NodeDrain:
    """One drain of one node (schedule.py's :class:`Drain`) and the edits it makes for its kubelet."""

    node: str
    control_plane: bool
    number: int
    from_release: KubernetesVersion
    to_release: KubernetesVersion
    migrate: bool
    edits: tuple[NodeEdit, ...]
    # The node's kubeadm of this release, run inside the drain after the migration (see journey_sequence).
    kubeadm: KubeadmUpgrade | None = None

    @property
    def key(self) -> str:
        return f"drain-{self.number}:v{self.to_release}:{self.node}"

    def step_key(self, step: str, attempt: int = 1) -> str:
        """The journal's name of one of the drain's steps: unique across the node's drains, and across the
        attempts at this drain (a drain rolled back is tried afresh by `--resume`)."""
        return f"{self.key}#{attempt}/{step}"


Operation = KubeadmUpgrade | ClusterEdit | NodeDrain

#: The key of a journey run's options in the journal (its request and sequence are kept under it; a run
#: that has it is a journey, which rollback must not undo: core/rollback_source.py).
JOURNEY_RUN_KEY = "journey"


def journey_sequence(journey: Journey, options: JourneyOptions | None = None) -> tuple[Operation, ...]:
    """Every operation of the journey, in order. Per control-plane step: the cluster edit it needs, the apply,
    then ``kubeadm upgrade node`` on the other control-plane nodes and then on the workers (by name; those
    whose migration drain holds theirs after the others, :func:`_workers_kubeadm_first`); each drain where
    the schedule puts it."""
    options = options or JourneyOptions()
    workers = tuple(node.name for node in journey.nodes if not node.control_plane)
    out: list[Operation] = []
    cgroup_edit_done = False
    for step in journey.steps:
        if isinstance(step, ControlPlaneStep):
            if options.allow_cgroup_v1 and not cgroup_edit_done and step.release.minor >= FAIL_CGROUP_V1_FROM:
                out.append(ClusterEdit(step.release))
                cgroup_edit_done = True
            out += _kubeadm_steps(step, workers, options)
        else:
            out.append(_node_drain(step, options))
    return _migrations_before_kubeadm(out)


def _migrations_before_kubeadm(ops: list[Operation]) -> tuple[Operation, ...]:
    """A dockershim node whose first drain goes to the release of a kubeadm step of its own runs that kubeadm
    inside the drain, after the migration, as the one-minor upgrade does: the cri-socket annotation must be
    cri-dockerd's before kubeadm 1.24 runs on the node (kubernetes/kubeadm#2597, kubernetes/kubeadm#2870).
    The drain moves to the kubeadm step's place (a worker's, then behind the step's bare worker steps), so on
    each node kubeadm still runs after the apply and in the same order; the drain count is unchanged. Not
    with ``--force``: `kubeadm upgrade plan`, which the one-minor upgrade runs first, has no such flag."""
    out = list(ops)
    for drain in [op for op in ops if isinstance(op, NodeDrain) and op.migrate]:
        found = [
            op
            for op in out
            if isinstance(op, KubeadmUpgrade) and op.node == drain.node and op.release == drain.to_release
        ]
        if not found or "--force" in found[0].flags:
            continue
        out[out.index(found[0])] = replace(drain, kubeadm=found[0])
        out.remove(drain)
    return _workers_kubeadm_first(out)


def _workers_kubeadm_first(ops: list[Operation]) -> tuple[Operation, ...]:
    """Within a step's workers, the bare ``kubeadm upgrade node`` steps first, then the migration drains that
    hold theirs: the bare ones then form one stage that runs together (stages.py), the drains join the
    drains after them. Each node's operations keep their order (a worker has one of the two per step)."""
    out: list[Operation] = []
    block: list[Operation] = []
    for op in [*ops, None]:
        if op is not None and _worker_kubeadm_of_step(op):
            block.append(op)
            continue
        out += [o for o in block if isinstance(o, KubeadmUpgrade)] + [o for o in block if isinstance(o, NodeDrain)]
        block = []
        if op is not None:
            out.append(op)
    return tuple(out)


def _worker_kubeadm_of_step(op: Operation) -> bool:
    """A worker's kubeadm step at its control-plane step: bare, or held by its migration drain."""
    if isinstance(op, KubeadmUpgrade):
        return not op.control_plane
    return isinstance(op, NodeDrain) and op.kubeadm is not None and not op.control_plane


def _kubeadm_steps(step: ControlPlaneStep, workers: Sequence[str], options: JourneyOptions) -> list[KubeadmUpgrade]:
    common: tuple[str, ...] = ()
    if options.allow_cgroup_v1 and step.release.minor >= FAIL_CGROUP_V1_FROM:
        common = (_SYSTEM_VERIFICATION,)
    # --force only where kubeadm's kubelet check refuses the apply (`--skew kubernetes`; schedule.py).
    apply_flags = ("--yes", *(("--force",) if step.force else ()), *common, *options.kubeadm_flags)
    node_flags = (*common, *options.kubeadm_flags)
    return [
        KubeadmUpgrade(step.apply_on, True, step.release, KubeadmMode.APPLY, apply_flags),
        *(KubeadmUpgrade(name, True, step.release, KubeadmMode.NODE, node_flags) for name in step.upgrade_node_on),
        *(KubeadmUpgrade(name, False, step.release, KubeadmMode.NODE, node_flags) for name in workers),
    ]


def _node_drain(drain: Drain, options: JourneyOptions) -> NodeDrain:
    edits: list[NodeEdit] = [NodeEdit.MIGRATE] if drain.migrate else []
    for edit, flag in _FLAG_EDITS.items():
        removed = FLAG_RULES_BY_NAME[flag].removed
        if removed is not None and drain.from_release.minor < removed <= drain.to_release.minor:
            edits.append(edit)
    if options.allow_cgroup_v1 and drain.from_release.minor < FAIL_CGROUP_V1_FROM <= drain.to_release.minor:
        edits.append(NodeEdit.FAIL_CGROUP_V1_FALSE)
    # Only where the kubelet first reaches 1.36: an older one exits on the unknown gate.
    if options.kubelet_websockets_off and drain.from_release.minor < KUBELET_WEBSOCKETS_FROM <= drain.to_release.minor:
        edits.append(NodeEdit.KUBELET_WEBSOCKETS_OFF)
    return NodeDrain(
        drain.node,
        drain.control_plane,
        drain.number,
        drain.from_release,
        drain.to_release,
        drain.migrate,
        tuple(edits),
    )


# --------------------------------------------------------------------------------------------------
# Failure


@dataclass(frozen=True)
class FailureDecision:
    """What a failed operation leads to: ``roll_back`` (a drain only) names the releases the node goes back
    to; the run then stops, resumable at the failed operation."""

    roll_back: bool
    kubelet: KubernetesVersion | None  # the releases the node goes back to (a drain only)
    dockershim: bool  # back on dockershim: the drain was migrating it
    message: str


def replaces_cri_dockerd(op: NodeDrain) -> bool:
    """Whether ``op`` is the drain that puts ``--cri-dockerd PATH`` on its node: the node's first, the earliest
    point its kubelet restarts anyway (and a migrating drain restarts cri-dockerd too), so every later kubelet
    of the journey, the 1.26+ ones that speak CRI v1 only (kubernetes/kubernetes#110618), starts on it. The
    journey's CRI check (traps.py cri_versions) holds the replacement against every drain's kubelet."""
    return op.number == 1


def on_failure(op: Operation) -> FailureDecision:
    """What follows when ``op`` fails (see the module's decisions)."""
    if isinstance(op, NodeDrain):
        runtime = "dockershim" if op.migrate else "cri-dockerd"
        unless = ""
        if op.kubeadm is not None and op.control_plane:
            unless = f" (unless its `kubeadm upgrade {op.kubeadm.mode}` had started: then it stays for a person)"
        return FailureDecision(
            True,
            op.from_release,
            op.migrate,
            f"{op.node} goes back to kubelet and kubectl {op.from_release} on {runtime}, as at the start of "
            f"drain {op.number}{unless}; the run stops there",
        )
    if isinstance(op, KubeadmUpgrade) and op.mode is KubeadmMode.APPLY:
        message = (
            f"`kubeadm upgrade apply v{op.release}` failed on {op.node}: kubeadm restores its static pods itself; "
            "the control plane stays at its last finished apply and is not rolled back"
        )
    elif isinstance(op, KubeadmUpgrade):
        message = f"`kubeadm upgrade node` {op.release} failed on {op.node}; nothing is undone"
    else:
        message = f"setting {op.setting} in kube-system/kubelet-config failed; nothing is undone"
    return FailureDecision(False, None, False, message)


# --------------------------------------------------------------------------------------------------
# The journal's copy: a resumed run works from the sequence that was made, never a new one


def sequence_record(sequence: Sequence[Operation]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for op in sequence:
        if isinstance(op, KubeadmUpgrade):
            out.append(
                {
                    "kind": "kubeadm",
                    "node": op.node,
                    "control_plane": op.control_plane,
                    "release": str(op.release),
                    "mode": str(op.mode),
                    "flags": list(op.flags),
                }
            )
        elif isinstance(op, ClusterEdit):
            out.append({"kind": "cluster", "before": str(op.before), "setting": op.setting, "value": op.value})
        else:
            out.append(
                {
                    "kind": "drain",
                    "node": op.node,
                    "control_plane": op.control_plane,
                    "number": op.number,
                    "from": str(op.from_release),
                    "to": str(op.to_release),
                    "migrate": op.migrate,
                    "edits": [str(edit) for edit in op.edits],
                    "kubeadm": None if op.kubeadm is None else sequence_record([op.kubeadm])[0],
                }
            )
    return out


def sequence_from_record(record: Sequence[Mapping[str, Any]]) -> tuple[Operation, ...]:
    """:func:`sequence_record` read back; a record it did not write is refused."""
    out: list[Operation] = []
    for index, item in enumerate(record):
        try:
            out.append(_operation(item))
        except (KeyError, TypeError, ValueError) as error:
            raise Refusal(
                f"journey record #{index + 1} is not an operation shimshift wrote ({error})",
                hint="the journal is damaged; start a new run (its schedule is made again from the cluster)",
                code=RUN_RECORD_INVALID,
            ) from error
    return tuple(out)


def _kubeadm_operation(item: Mapping[str, Any]) -> KubeadmUpgrade:
    return KubeadmUpgrade(
        item["node"],
        bool(item["control_plane"]),
        parse_kubelet_version(item["release"]),
        KubeadmMode(item["mode"]),
        tuple(str(flag) for flag in item["flags"]),
    )


def _operation(item: Mapping[str, Any]) -> Operation:
    kind = item["kind"]
    if kind == "kubeadm":
        return _kubeadm_operation(item)
    if kind == "cluster":
        return ClusterEdit(parse_kubelet_version(item["before"]), item["setting"], bool(item["value"]))
    if kind == "drain":
        return NodeDrain(
            item["node"],
            bool(item["control_plane"]),
            int(item["number"]),
            parse_kubelet_version(item["from"]),
            parse_kubelet_version(item["to"]),
            bool(item["migrate"]),
            tuple(NodeEdit(edit) for edit in item["edits"]),
            None if item.get("kubeadm") is None else _kubeadm_operation(item["kubeadm"]),
        )
    raise ValueError(f"unknown kind {kind!r}")
