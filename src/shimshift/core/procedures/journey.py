"""The journey's operations (core/journey/sequence.py), each as a sans-I/O procedure of the node it runs on.

- :class:`KubeadmStepProcedure`: the kubeadm of the release in place, instance-config.yaml before a
  kubeadm 1.34+ when the node lacks it (core/journey/node_edits.py), then ``kubeadm upgrade apply`` or
  ``kubeadm upgrade node``; a control-plane node then waits for its static pods.
- :func:`cluster_edit`: ``failCgroupV1: false`` in kube-system/kubelet-config (``--allow-cgroup-v1``).
- :func:`drain_planner`: the node's plan for one drain: the migration's (node_planner.py) with the drain's
  own edit of the kubelet's files (``--kubelet-websockets-off``: node_edits.py), so write-config writes
  it and the drain's rollback restores it.
- :func:`journey_drain`: one drain, which is the one-minor upgrade's procedure (core/procedures/upgrade.py)
  planned without kubeadm and for the drain's kubelet, its journal steps named under the drain
  (:func:`in_scope`), so each of a node's drains resumes and rolls back on its own.

Each operation records itself (its key, started and finished) and its steps (``<key>/<step>``), so a run
killed anywhere resumes at the operation and the step it was in. A failed kubeadm step or cluster edit
is not undone (sequence.py :func:`on_failure`): the outcome is resumable and says where things stand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from shimshift.core import actions as act
from shimshift.core.actions import Procedure, Upload
from shimshift.core.journey.node_edits import (
    allow_cgroup_v1,
    allow_cgroup_v1_on_node,
    instance_config_before_kubeadm,
    plan_with_websockets_off,
)
from shimshift.core.journey.sequence import (
    ClusterEdit,
    KubeadmMode,
    KubeadmUpgrade,
    NodeDrain,
    NodeEdit,
    on_failure,
    replaces_cri_dockerd,
)
from shimshift.core.node_files import KUBELET_CONFIG, NODE_FILES, NodeView
from shimshift.core.node_plan import NodePlan
from shimshift.core.procedures.migration import (
    NodeOutcome,
    OutcomeStatus,
    Planner,
    PreflightFacts,
    StepFailed,
    describe,
    plan_from_facts,
)
from shimshift.core.procedures.upgrade import UpgradeProcedure, UpgradeSettings, perform_planned, tail
from shimshift.core.steps import Step
from shimshift.core.upgrade.binaries import (
    DEFAULT_NODE_PATHS,
    Binary,
    PackageInstall,
    TargetBinary,
    command,
    git_version,
    version_argv,
)
from shimshift.core.upgrade.cluster import Role
from shimshift.core.upgrade.cri_dockerd_swap import ReplacementCriDockerd

T = TypeVar("T")

__all__ = [
    "KubeadmStepProcedure",
    "cluster_edit",
    "drain_planner",
    "drain_settings",
    "in_scope",
    "journey_drain",
    "newest_plan_scope",
]

#: The journal's name of a drain's failCgroupV1 step (before the drain's own steps).
ALLOW_CGROUP_V1 = "allow-cgroup-v1"
#: The journal's mark of a drain attempt that ended rolled back.
ROLLED_BACK = "rolled-back"
#: `kubeadm upgrade apply` waits for each static pod in turn (5 minutes each at most).
KUBEADM_TIMEOUT = 1800.0


# --------------------------------------------------------------------------------------------------
# A procedure's journal, named under one operation


def in_scope(prefix: str, procedure: Procedure[T]) -> Procedure[T]:
    """Run ``procedure`` with every journal step it records or asks about named ``prefix + step``, and with
    only the steps under ``prefix`` visible to it: the one-minor procedure then runs once per drain, each
    drain's steps apart from the node's other drains. Every other action and every failure passes through."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            action = procedure.throw(error) if error is not None else procedure.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        scoped: act.Action = action
        match action:
            case act.Record(step, phase, detail):
                scoped = act.Record(prefix + step, phase, detail)
            case act.StepDetail(step):
                scoped = act.StepDetail(prefix + step)
            case act.Progress(step, message):
                scoped = act.Progress(prefix + step, message)
        try:
            answer = yield scoped
        except Exception as failure:  # the procedure decides what a failed action means
            result, error = None, failure
            continue
        if isinstance(action, act.FinishedSteps | act.RecordedSteps):
            answer = [step.removeprefix(prefix) for step in answer if step.startswith(prefix)]
        result, error = answer, None


def newest_plan_scope(finished: Sequence[str]) -> str | None:
    """Under which name the newest plan of a node was recorded, from its finished journal steps in the order
    they were recorded: ``""`` for a `migrate` or one-minor `upgrade` (their ``preflight``), a journey drain's
    prefix (``drain-4:v1.27.16:node#1/``) for the journey, whose drains record the one-minor procedure's
    steps under it (:func:`in_scope`); None: no plan. A drain attempt that was rolled back left the node as
    the drain before it had made it, so its plan is passed over (`verify` then checks the node against the
    drain that stands)."""
    rolled_back = {step.removesuffix(ROLLED_BACK) for step in finished if step.endswith("/" + ROLLED_BACK)}
    scope: str | None = None
    for step in finished:
        prefix = step.removesuffix(str(Step.PREFLIGHT))
        if prefix == step or (prefix and not (prefix.startswith("drain-") and prefix.endswith("/"))):
            continue  # not a preflight, or the preflight of something other than a drain
        if prefix not in rolled_back:
            scope = prefix
    return scope


# --------------------------------------------------------------------------------------------------
# One drain


def drain_settings(
    op: NodeDrain,
    *,
    binaries: tuple[TargetBinary, ...] | None,
    packages: PackageInstall | None,
    cri_dockerd: ReplacementCriDockerd | None = None,
) -> UpgradeSettings:
    """What the one-minor procedure gets for ``op``: the drain's kubelet release and its binaries; kubeadm
    only when the drain holds the node's kubeadm step (a migrating drain: sequence.py), as the one-minor
    upgrade runs it (apply on the first control-plane node, after `kubeadm upgrade plan`); ``cri_dockerd``
    (``--cri-dockerd PATH``) only in the drain that replaces the node's (sequence.py replaces_cri_dockerd)."""
    flags: tuple[str, ...] = ()
    if op.kubeadm is None:
        role = Role.CONTROL_PLANE if op.control_plane else Role.WORKER
    else:
        apply = op.kubeadm.mode is KubeadmMode.APPLY
        role = Role.FIRST_CONTROL_PLANE if apply else Role.CONTROL_PLANE if op.control_plane else Role.WORKER
        flags = tuple(flag for flag in op.kubeadm.flags if flag != "--yes")  # the plan adds it to apply
    return UpgradeSettings(
        to=str(op.to_release),
        binaries=binaries,
        packages=packages,
        kubeadm_flags=flags,
        role=role,
        with_kubeadm=op.kubeadm is not None,
        cri_dockerd=cri_dockerd if replaces_cri_dockerd(op) else None,
    )


def drain_planner(op: NodeDrain, planner: Planner = plan_from_facts) -> Planner:
    """The planner of ``op``'s preflight: ``planner`` (the migration's, for the drain's kubelet), plus the
    kubelet gate ``--kubelet-websockets-off`` turns off in the drain where the kubelet first reaches 1.36."""
    if NodeEdit.KUBELET_WEBSOCKETS_OFF not in op.edits:
        return planner

    def plan(facts: PreflightFacts, node: str) -> NodePlan:
        return plan_with_websockets_off(planner(facts, node), facts.files)

    return plan


def journey_drain(op: NodeDrain, procedure: UpgradeProcedure) -> Procedure[NodeOutcome]:
    """``op`` done by ``procedure`` (made with :func:`drain_settings`), its steps under the drain's key. A failed
    drain is rolled back by the procedure itself to the releases the drain began with (sequence.py)."""
    yield act.Record(
        op.key,
        "started",
        {"from": str(op.from_release), "to": str(op.to_release), "edits": [str(edit) for edit in op.edits]},
    )
    if NodeEdit.FAIL_CGROUP_V1_FALSE in op.edits:
        failure = yield from _allow_cgroup_v1(op)
        if failure is not None:
            return failure
    # A drain that was rolled back is tried afresh by `--resume`, its steps named apart; one cut short (or
    # stopped for a person) goes on where it was.
    recorded = set((yield act.RecordedSteps()))
    attempt = 1
    while op.step_key(ROLLED_BACK, attempt) in recorded:
        attempt += 1
    outcome: NodeOutcome = yield from in_scope(op.step_key("", attempt), procedure.run())
    if outcome.status is OutcomeStatus.MIGRATED:
        yield act.Record(op.key, "finished", {"kubelet": str(op.to_release), "attempt": attempt})
        return outcome
    decision = on_failure(op)
    if outcome.status is OutcomeStatus.ROLLED_BACK:
        yield act.Record(op.step_key(ROLLED_BACK, attempt), "finished", {"message": outcome.message})
    yield act.Record(op.key, "failed", {"message": outcome.message, "status": str(outcome.status)})
    stopped = f"drain {op.number} ({op.from_release} -> {op.to_release}): {outcome.message}"
    if outcome.status is OutcomeStatus.ROLLED_BACK:
        stopped += f". {decision.message}"
    return NodeOutcome(op.node, outcome.status, stopped, outcome.failed_step, resumable=True)


def _allow_cgroup_v1(op: NodeDrain) -> Procedure[NodeOutcome | None]:
    """``failCgroupV1: false`` in the node's config.yaml before the drain's 1.35+ kubelet starts
    (``--allow-cgroup-v1``), recorded; before the drain cordons, so a refusal leaves the node as it was."""
    step = op.step_key(ALLOW_CGROUP_V1, 0)
    if step in set((yield act.FinishedSteps())):
        return None
    yield act.Record(step, "started")
    try:
        change = allow_cgroup_v1_on_node((yield act.ReadFile(KUBELET_CONFIG)))
        if change is not None and change.after is not None:
            yield act.WriteFile(change.path, change.after)
    except Exception as failure:  # a config.yaml shimshift cannot edit line by line: nothing was changed
        message = describe(failure)
        yield act.Record(step, "failed", {"message": message})
        yield act.Record(op.key, "failed", {"message": message})
        return NodeOutcome(op.node, OutcomeStatus.FAILED, message, step, resumable=True)
    detail = {"failCgroupV1": False, "by": "--allow-cgroup-v1", "changed": change is not None}
    yield act.Record(step, "finished", detail)
    return None


# --------------------------------------------------------------------------------------------------
# kubeadm at a control-plane step


@dataclass
class KubeadmStepProcedure:
    """``op`` on its node. ``binary``: the kubeadm of ``op.release`` from ``--binaries`` (checked); else
    ``packages`` installs it."""

    op: KubeadmUpgrade
    binary: TargetBinary | None = None
    packages: PackageInstall | None = None
    kubeadm: str = DEFAULT_NODE_PATHS[Binary.KUBEADM]
    health_timeout: float = 300.0

    def run(self) -> Procedure[NodeOutcome]:
        op = self.op
        yield act.Record(op.key, "started", {"argv": list(op.argv(self.kubeadm))})
        finished = set((yield act.FinishedSteps()))
        steps: Mapping[str, Callable[[], Procedure[dict[str, Any]]]] = {
            "install-kubeadm": self.install_kubeadm,
            "instance-config": self.instance_config,
            "kubeadm-upgrade": self.kubeadm_upgrade,
        }
        for name, body in steps.items():
            step = f"{op.key}/{name}"
            if step in finished:
                continue
            yield act.Record(step, "started")
            try:
                detail = yield from body()
            except Exception as failure:  # any failure stops the run where it stands (never undone)
                message = describe(failure)
                yield act.Record(step, "failed", {"message": message})
                yield act.Record(op.key, "failed", {"message": message})
                yield act.Event("ShimshiftFailed", f"{step}: {message}", warning=True)
                stopped = (
                    f"{message}. {on_failure(op).message}. Fix the cause and run `shimshift upgrade --resume`, "
                    "which starts again at this step"
                )
                return NodeOutcome(op.node, OutcomeStatus.FAILED, stopped, step, resumable=True)
            yield act.Record(step, "finished", detail)
        yield act.Record(op.key, "finished")
        return NodeOutcome(op.node, OutcomeStatus.MIGRATED, f"kubeadm {op.mode} {git_version(op.release)}")

    def install_kubeadm(self) -> Procedure[dict[str, Any]]:
        """The kubeadm of the release at its path, unless it is there already (a resumed step). The one it
        replaces is not kept: kubeadm steps are never undone (sequence.py)."""
        release = git_version(self.op.release)
        asked = yield command(version_argv(Binary.KUBEADM, self.kubeadm), "which kubeadm is in place")
        if asked.returncode == 0 and asked.stdout.decode("utf-8", "replace").strip() == release:
            return {"already": release}
        step = f"{self.op.key}/install-kubeadm"
        actions: list[act.Run | Upload] = []
        if self.packages is not None:
            actions += self.packages.commands(Binary.KUBEADM, self.op.release)
        elif self.binary is not None:
            actions += [
                Upload(self.binary.source, self.kubeadm, self.binary.sha256),
                command(
                    ("sha256sum", "--", self.kubeadm),
                    "the kubeadm in place is the one checked",
                    expect=self.binary.sha256,
                ),
            ]
        else:
            raise StepFailed(step, f"no kubeadm {release} was given (--binaries DIR/{release}/ or --install-command)")
        actions.append(
            command(version_argv(Binary.KUBEADM, self.kubeadm), f"kubeadm reports {release}", expect=release)
        )
        return {"ran": (yield from perform_planned(step, actions))}

    def instance_config(self) -> Procedure[dict[str, Any]]:
        if not self.op.instance_config:
            return {"skipped": f"kubeadm {self.op.release} reads the socket from kubeadm-flags.env"}
        files: dict[str, bytes | None] = {}
        for path in NODE_FILES:
            files[path] = yield act.ReadFile(path)
        change = instance_config_before_kubeadm(
            NodeView.load(files, node=self.op.node), kubeadm_minor=self.op.release.minor
        )
        if change is None or change.after is None:
            return {"unchanged": "kubeadm finds the node's socket itself"}
        yield act.WriteFile(change.path, change.after)
        return {"wrote": change.path}

    def kubeadm_upgrade(self) -> Procedure[dict[str, Any]]:
        step = f"{self.op.key}/kubeadm-upgrade"
        upgrade = command(self.op.argv(self.kubeadm), f"kubeadm {self.op.mode} {git_version(self.op.release)}")
        result = yield replace(upgrade, timeout=KUBEADM_TIMEOUT)
        if result.returncode != 0:
            raise StepFailed(
                step, f"`{upgrade.shown()}` exited {result.returncode}: {tail(result.stderr or result.stdout)}"
            )
        if self.op.control_plane:
            # kubeadm restarts the node's static pods; the next step needs them back (seen in the lab).
            problems = yield act.WaitControlPlane(self.health_timeout)
            if problems:
                raise StepFailed(step, "the control plane did not settle: " + "; ".join(problems))
        return {"ran": upgrade.shown(), "output": tail(result.stdout, 600)}


# --------------------------------------------------------------------------------------------------
# The cluster's kubelet configuration


def cluster_edit(op: ClusterEdit) -> Procedure[NodeOutcome]:
    """``failCgroupV1: false`` in kube-system/kubelet-config, recorded as the operator's choice."""
    yield act.Record(op.key, "started")
    try:
        text = yield act.ReadClusterKubeletConfig()
        if text is None:
            raise StepFailed(op.key, "kube-system/kubelet-config has no `kubelet` key: is this a kubeadm cluster?")
        edited = allow_cgroup_v1(text)
        if edited != text:
            yield act.WriteClusterKubeletConfig(edited)
    except Exception as failure:  # a refusal of the edit or an API error: nothing changed
        message = describe(failure)
        yield act.Record(op.key, "failed", {"message": message})
        return NodeOutcome(
            "kube-system/kubelet-config",
            OutcomeStatus.FAILED,
            f"{message}. {on_failure(op).message}",
            op.key,
            resumable=True,
        )
    detail = {"failCgroupV1": False, "by": "--allow-cgroup-v1", "changed": edited != text}
    yield act.Record(op.key, "finished", detail)
    return NodeOutcome("kube-system/kubelet-config", OutcomeStatus.MIGRATED, "failCgroupV1: false (--allow-cgroup-v1)")
