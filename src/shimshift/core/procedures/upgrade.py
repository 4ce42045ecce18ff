"""`shimshift upgrade` for one node, as a sans-I/O procedure: the migration and the next minor in one drain.

preflight (the migration's, crictl, the upgrade plan) → cordon → drain → write-config (planned for the
target kubelet) → annotate → restart cri-dockerd → install kubeadm (the old one kept) → kubeadm upgrade
plan (first control-plane node) → kubeadm upgrade apply | node → install kubelet and kubectl → restart
kubelet → verify (the kubelet's version too, and the canary *with* allowPrivilegeEscalation: false) →
uncordon.

The migration's steps are the migration's own (core/procedures/migration.py); this module adds the
binaries and kubeadm, the version checks and a wider rollback. What each added step runs is decided by
core/upgrade/plan.py's NodeUpgradePlan, made at preflight and stored in the journal with the migration's
plan, so a resumed run and its rollback work from the plan that was made, never a new one.

Rollback: a worker that fails after it changed anything goes back to its old binaries, the kubelet
files as they were before kubeadm rewrote them, then the migration's rollback (dockershim, proven,
uncordoned). A control-plane node whose ``kubeadm upgrade`` has started is never rolled back
(kubeadm rolls its own static pods back when it fails): the run stops and says where the node stands.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from shimshift.core import actions as act
from shimshift.core.actions import Procedure, Upload
from shimshift.core.procedures.migration import (
    CRI_DOCKERD_ENDPOINT,
    MigrationProcedure,
    NodeOutcome,
    OutcomeStatus,
    PreflightFacts,
    StepBody,
    StepFailed,
)
from shimshift.core.steps import MIGRATION_ROLLBACK, Step, changing_steps, remaining_steps
from shimshift.core.upgrade.binaries import PackageInstall, TargetBinary, parse_target
from shimshift.core.upgrade.cluster import NodeVersion, Role, kubelet_swap_problem
from shimshift.core.upgrade.cri_dockerd_swap import CRI_DOCKERD_UNIT, ReplacementCriDockerd, plan_cri_dockerd_swap
from shimshift.core.upgrade.plan import (
    FINISH,
    KUBEADM_REWRITES,
    MIGRATION_PART,
    NodeUpgradePlan,
    plan_agrees,
    plan_node_upgrade,
)
from shimshift.core.versions import parse_kubelet_version

#: The whole sequence; KUBEADM_UPGRADE_PLAN is a no-op on every node but the first control-plane one.
UPGRADE_STEPS: tuple[Step, ...] = (
    Step.INSTALL,
    *MIGRATION_PART,
    Step.INSTALL_KUBEADM,
    Step.KUBEADM_UPGRADE_PLAN,
    Step.KUBEADM_UPGRADE,
    Step.INSTALL_KUBELET,
    *FINISH,
)
UPGRADE_ROLLBACK: tuple[Step, ...] = (Step.RESTORE_BINARIES, Step.RESTORE_KUBEADM_FILES, *MIGRATION_ROLLBACK)

_CHANGING = changing_steps(UPGRADE_STEPS)


@dataclass(frozen=True)
class UpgradeSettings:
    """What the operator asked for, the same for every node of the run."""

    to: str  # "1.24.17"
    binaries: tuple[TargetBinary, ...] | None = None  # checked --binaries DIR
    packages: PackageInstall | None = None  # or the operator's package commands
    kubeadm_flags: tuple[str, ...] = ()
    # The role the run gave this node when it began (recomputed on resume only for nodes without a plan).
    role: Role = Role.WORKER
    # False in a journey's drain: kubeadm ran at the control-plane step (core/journey/sequence.py).
    with_kubeadm: bool = True
    # `--cri-dockerd PATH` in the journey drain that replaces the node's (core/journey/sequence.py).
    cri_dockerd: ReplacementCriDockerd | None = None


@dataclass
class UpgradeProcedure(MigrationProcedure):
    upgrade: UpgradeSettings = field(default_factory=lambda: UpgradeSettings(to="0.0.0"))

    sequence: ClassVar[tuple[Step, ...]] = UPGRADE_STEPS

    # -- the procedure ---------------------------------------------------------------------------

    def run(self) -> Procedure[NodeOutcome]:
        recorded: list[str] = yield act.RecordedSteps()
        if any(name.startswith("rollback:") for name in recorded):
            yield from self.remove_leftover_canary()
            return (yield from self.finish_rollback("resumed an interrupted rollback"))
        finished: list[str] = yield act.FinishedSteps()
        for step in remaining_steps(finished, self.sequence):
            failure = yield from self.run_step(step, self.body(step))
            if failure is not None:
                return (yield from self.after_failure(step, failure))
        plan = yield from self.upgrade_plan()
        message = f"kubelet {plan.to_version} on {CRI_DOCKERD_ENDPOINT}"
        yield act.Event("ShimshiftUpgraded", message)
        return NodeOutcome(self.node, OutcomeStatus.MIGRATED, message)

    def body(self, step: Step) -> StepBody:
        bodies: dict[Step, StepBody] = {
            Step.PREFLIGHT: self.preflight,
            Step.INSTALL_KUBEADM: self.install_kubeadm,
            Step.KUBEADM_UPGRADE_PLAN: self.kubeadm_upgrade_plan,
            Step.KUBEADM_UPGRADE: self.kubeadm_upgrade,
            Step.INSTALL_KUBELET: self.install_kubelet,
            Step.VERIFY: self.verify,
            Step.RESTORE_BINARIES: self.restore_binaries,
            Step.RESTORE_KUBEADM_FILES: self.restore_kubeadm_files,
        }
        return bodies.get(step) or super().body(step)

    def after_failure(self, step: Step, message: str) -> Procedure[NodeOutcome]:
        if step in _CHANGING:
            plan = yield from self.upgrade_plan()
            recorded = set((yield act.RecordedSteps()))
            if not plan.may_roll_back(recorded):
                # A control-plane node once kubeadm upgrade started: never undone (kubeadm restores its own static
                # pods).
                yield act.Event("ShimshiftFailed", f"{step}: {message}", warning=True)
                stopped = stop_message(plan, step, message)
                return NodeOutcome(self.node, OutcomeStatus.FAILED, stopped, str(step), resumable=True)
        return (yield from super().after_failure(step, message))

    def rollback(self) -> Procedure[None]:
        """Binaries, the kubelet files kubeadm rewrote, then the migration's rollback (even when the
        migration itself had nothing to change: the binaries did)."""
        plan = yield from self.upgrade_plan()
        recorded = set((yield act.RecordedSteps()))
        if not plan.may_roll_back(recorded):
            raise StepFailed(
                Step.RESTORE_BINARIES,
                f"{self.node} is a control-plane node whose `kubeadm upgrade` ran: shimshift does not undo it",
            )
        yield from self.rollback_steps()
        yield act.Event("ShimshiftRolledBack", f"back on kubelet {plan.from_version} and dockershim", warning=True)

    def rollback_steps(self) -> Procedure[None]:
        plan = yield from self.upgrade_plan()
        recorded = set((yield act.RecordedSteps()))
        done = set((yield act.FinishedSteps()))
        wanted = {str(actions.step) for actions in plan.rollback_steps(recorded)}
        for step in UPGRADE_ROLLBACK:
            if step in done or (step in {Step.RESTORE_BINARIES, Step.RESTORE_KUBEADM_FILES} and step not in wanted):
                continue
            failure = yield from self.run_step(step, self.body(step))
            if failure is not None:
                raise StepFailed(step, failure)

    # -- the steps -------------------------------------------------------------------------------

    def preflight(self) -> Procedure[dict[str, Any]]:
        detail = yield from super().preflight()
        # kubeadm 1.24 reaches the runtime through crictl on a control-plane node (its image pre-pull in
        # `upgrade apply` and `upgrade node`) and fails there without it; a worker's `upgrade node` does
        # not call it (seen in the lab).
        crictl = yield act.run("crictl", "--version", check=False)
        if self.upgrade.with_kubeadm and self.upgrade.role is not Role.WORKER and crictl.returncode != 0:
            raise StepFailed(
                Step.PREFLIGHT,
                "crictl is not on the node's PATH: kubeadm 1.24 refuses to run without it "
                "(install the cri-tools package or the crictl binary first)",
            )
        kubelet = parse_kubelet_version(detail["kubelet_version"], what=f"node {self.node} kubelet version")
        plan = plan_node_upgrade(
            NodeVersion(self.node, self.upgrade.role is not Role.WORKER, kubelet),
            role=self.upgrade.role,
            to=parse_target(self.upgrade.to),
            binaries=self.upgrade.binaries,
            packages=self.upgrade.packages,
            kubeadm_flags=self.upgrade.kubeadm_flags,
            with_kubeadm=self.upgrade.with_kubeadm,
            cri_dockerd=plan_cri_dockerd_swap(
                self.upgrade.cri_dockerd,
                target=(yield from self.cri_dockerd_binary()) if self.upgrade.cri_dockerd is not None else None,
                node_version=detail["cri_dockerd_version"],
                node=self.node,
            ),
        )
        return {**detail, "upgrade_plan": plan.to_record()}

    def plan_facts(self, facts: PreflightFacts) -> PreflightFacts:
        # The files are written for the kubelet that will read them: the target's, on the cri-dockerd the
        # drain puts in place (a 0.2 one would refuse a 1.26 kubelet the replacement serves).
        replacement = self.upgrade.cri_dockerd
        version = facts.cri_dockerd_version if replacement is None else str(replacement.version)
        return replace(facts, kubelet_version=f"v{self.upgrade.to.lstrip('v')}", cri_dockerd_version=version)

    def install_kubeadm(self) -> Procedure[dict[str, Any]]:
        detail = yield from self.perform(Step.INSTALL_KUBEADM)
        # The kubelet's files as kubeadm will find them: the rollback writes these back, because a 1.23
        # kubelet must not start on what kubeadm 1.24 writes. Kept here, in the step before kubeadm's,
        # so a resumed kubeadm-upgrade never keeps a copy kubeadm already rewrote.
        kept: dict[str, str | None] = {}
        for path in KUBEADM_REWRITES:
            data = yield act.ReadFile(path)
            kept[path] = None if data is None else base64.b64encode(data).decode("ascii")
        return {**detail, "kubeadm_rewrites": kept}

    def kubeadm_upgrade_plan(self) -> Procedure[dict[str, Any]]:
        plan = yield from self.upgrade_plan()
        actions = _actions_of(plan, Step.KUBEADM_UPGRADE_PLAN)
        if not actions:
            return {"skipped": f"only the first control-plane node plans; this one is a {plan.role}"}
        command = actions[0]
        assert isinstance(command, act.Run)
        result = yield replace(command, timeout=300)
        stdout = result.stdout.decode("utf-8", "replace")
        problem = plan_agrees(stdout, plan.to_version)
        if result.returncode != 0:
            said = f"exited {result.returncode}: {tail(result.stderr or result.stdout)}"
            raise StepFailed(Step.KUBEADM_UPGRADE_PLAN, f"`{command.shown()}` {said}")
        if problem is not None:
            raise StepFailed(Step.KUBEADM_UPGRADE_PLAN, f"`{command.shown()}` does not agree: {problem}")
        return {"agrees": plan.to_version}

    def kubeadm_upgrade(self) -> Procedure[dict[str, Any]]:
        plan = yield from self.upgrade_plan()
        if not plan.runs_kubeadm:
            return {"skipped": "kubeadm ran at the control-plane step, before this drain"}
        [command] = [action for action in _actions_of(plan, Step.KUBEADM_UPGRADE) if isinstance(action, act.Run)]
        if plan.role is not Role.WORKER:
            # kubeadm talks to the runtime at the node's cri-socket annotation. One it cannot reach (a
            # stale dockershim one: CRI v1alpha2 only) shows in kubeadm only as an ignorable ImagePull
            # warning, and the upgraded kubelet then fails on what was left behind (seen in the lab).
            socket = yield act.GetCriSocket()
            runtime = yield act.Run(("crictl", "-r", str(socket), "info"), check=False)
            if runtime.returncode != 0:
                said = tail(runtime.stderr or runtime.stdout)
                raise StepFailed(Step.KUBEADM_UPGRADE, f"crictl cannot reach the runtime at {socket}: {said}")
        # kubeadm upgrade apply waits for each static pod in turn (5 minutes each at most).
        result = yield replace(command, timeout=1800)
        if result.returncode != 0:
            raise StepFailed(
                Step.KUBEADM_UPGRADE,
                f"`{command.shown()}` exited {result.returncode}: {tail(result.stderr or result.stdout)}",
            )
        return {"ran": command.shown(), "output": tail(result.stdout, 600)}

    def install_kubelet(self) -> Procedure[dict[str, Any]]:
        plan = yield from self.upgrade_plan()
        apiservers = yield act.ApiserverVersions()
        node = NodeVersion(self.node, plan.role is not Role.WORKER, parse_kubelet_version(plan.from_version))
        problem = kubelet_swap_problem(node, to=parse_target(plan.to_version), apiservers=apiservers)
        if problem is not None:
            raise StepFailed(Step.INSTALL_KUBELET, f"version skew: {problem}")
        return (yield from self.perform(Step.INSTALL_KUBELET))

    def verify(self) -> Procedure[dict[str, Any]]:
        plan = yield from self.upgrade_plan()
        if plan.role is not Role.WORKER:
            # The new kubelet restarts the static pods of the node one by one (their container hash
            # changed): the API server comes and goes until they are all back (seen in the lab).
            problems = yield act.WaitControlPlane(self.settings.health_timeout)
            if problems:
                raise StepFailed(Step.VERIFY, "the control plane did not settle: " + "; ".join(problems))
        detail = yield from super().verify()
        version = yield act.GetKubeletVersion()
        if version != plan.to_version:
            raise StepFailed(Step.VERIFY, f"the node reports kubelet {version}, not {plan.to_version}", detail)
        if plan.cri_dockerd is not None:
            detail = {**detail, "cri_dockerd": (yield from self.verify_cri_dockerd(plan))}
        return {**detail, "kubelet_version": version}

    def verify_cri_dockerd(self, plan: NodeUpgradePlan) -> Procedure[str]:
        """The replaced cri-dockerd is the one running: the file reports the new version and the unit's main
        process runs that file, not the one it replaced (``<path> (deleted)``)."""
        swap = plan.cri_dockerd
        assert swap is not None
        yield from perform_planned(Step.VERIFY, _actions_of(plan, Step.VERIFY))
        pid = yield from self.main_pid(CRI_DOCKERD_UNIT, Step.VERIFY)
        running = yield swap.running_command(pid)
        exe = running.stdout.decode("utf-8", "replace").strip()
        if running.returncode != 0 or not exe or exe.endswith("(deleted)"):
            said = exe or "no process"
            raise StepFailed(Step.VERIFY, f"cri-docker.service does not run the replaced {swap.target}: {said}")
        return swap.to_version

    # -- the rollback's steps --------------------------------------------------------------------

    def restore_binaries(self) -> Procedure[dict[str, Any]]:
        """Each binary whose install step started goes back to its kept copy, newest first. A binary
        without a kept copy was never replaced (the copy is made before the replacement): left alone."""
        plan = yield from self.upgrade_plan()
        recorded = set((yield act.RecordedSteps()))
        ran, untouched = [], []
        for swap in plan.swaps_to_restore(recorded):
            kept = yield act.run("test", "-e", swap.backup, check=False)
            if kept.returncode != 0:
                untouched.append(swap.target)
                continue
            ran += yield from perform_planned(Step.RESTORE_BINARIES, plan.restore_commands(swap))
        # cri-dockerd was swapped first in the kubelet's install step: it goes back last.
        if plan.cri_dockerd is not None and str(Step.INSTALL_KUBELET) in recorded:
            kept = yield act.run("test", "-e", plan.cri_dockerd.backup, check=False)
            if kept.returncode != 0:
                untouched.append(plan.cri_dockerd.target)
            else:
                ran += yield from perform_planned(Step.RESTORE_BINARIES, plan.cri_dockerd.restore_actions())
        return {"ran": ran, "never_replaced": untouched}

    def restore_kubeadm_files(self) -> Procedure[dict[str, Any]]:
        kept = ((yield act.StepDetail(Step.INSTALL_KUBEADM)) or {}).get("kubeadm_rewrites")
        if kept is None:
            raise StepFailed(Step.RESTORE_KUBEADM_FILES, "the kubelet files kept before kubeadm ran are not recorded")
        restored = []
        for path, text in kept.items():
            before = None if text is None else base64.b64decode(text)
            if (yield act.ReadFile(path)) == before:
                continue
            yield act.RemoveFile(path) if before is None else act.WriteFile(path, before)
            restored.append(path)
        return {"restored": restored}

    # -- parts the steps share -------------------------------------------------------------------

    def upgrade_plan(self) -> Procedure[NodeUpgradePlan]:
        detail = yield act.StepDetail(Step.PREFLIGHT)
        if detail is None or "upgrade_plan" not in detail:
            raise StepFailed(Step.PREFLIGHT, "no upgrade plan is recorded for this node (its preflight did not finish)")
        return NodeUpgradePlan.from_record(detail["upgrade_plan"])

    def perform(self, step: Step) -> Procedure[dict[str, Any]]:
        plan = yield from self.upgrade_plan()
        return {"ran": (yield from perform_planned(step, _actions_of(plan, step)))}


def perform_planned(step: Step | str, actions: Sequence[act.Run | Upload]) -> Procedure[list[str]]:
    """Run a step's planned commands and uploads in order; a command's ``expect`` must be in its output."""
    ran = []
    for action in actions:
        if isinstance(action, Upload):
            yield action
            ran.append(f"upload {action.target}")
            continue
        result = yield action
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        if result.returncode != 0:
            raise StepFailed(step, f"`{action.shown()}` exited {result.returncode}: {tail(result.stderr)}")
        if action.expect is not None and action.expect not in output:
            said = f"`{action.shown()}` did not show {action.expect} ({action.why}): {output[:200]!r}"
            raise StepFailed(step, said)
        ran.append(action.shown())
    return ran


def _actions_of(plan: NodeUpgradePlan, step: Step) -> tuple[act.Run | Upload, ...]:
    for actions in plan.steps:
        if actions.step == step:
            return actions.actions
    return ()


def stop_message(plan: NodeUpgradePlan, step: Step, message: str) -> str:
    """Where a control-plane node stands when it is not rolled back, and what the operator does next."""
    return (
        f"{message}. Not rolled back: `kubeadm upgrade` has run on this control-plane node (kubeadm restores"
        f" its own static pods when it fails). The node is cordoned, on {CRI_DOCKERD_ENDPOINT}, its kubeadm"
        f" is {plan.to_version}; the old binaries are kept beside them as *.shimshift-{plan.from_version}.bak."
        " Fix the cause and run `shimshift upgrade --resume`, which starts again at the step that failed"
    )


def tail(data: bytes, limit: int = 300) -> str:
    """The end of a command's output, for a one-line failure message."""
    return data.decode("utf-8", "replace").strip()[-limit:]


__all__ = [
    "UPGRADE_ROLLBACK",
    "UPGRADE_STEPS",
    "UpgradeProcedure",
    "UpgradeSettings",
    "perform_planned",
    "stop_message",
    "tail",
]
