"""What happens to one node, top to bottom, as a sans-I/O procedure.

preflight → cordon → drain → write kubelet and cri-dockerd config → annotate → restart cri-dockerd
(when its config changed) → restart kubelet → verify → uncordon.

Every step is written to the journal before and after it runs, and every step is idempotent, so a run
killed anywhere resumes at the step that did not finish. A failure before the configuration changes
only uncordons (if we cordoned); a failure after it rolls the node back to dockershim and proves the
old state, unless the operator asked for ``--no-rollback``.

Nothing here performs I/O: each step is a generator of core.actions that orchestrator/executor.py
performs. :class:`MigrationProcedure` drives a sequence of steps with the journal and the failure
rules; the upgrade procedure (core/procedures/upgrade.py) reuses its steps and its machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from shimshift.core import actions as act
from shimshift.core import cri_dockerd_units
from shimshift.core.actions import Procedure, run
from shimshift.core.canary import (
    CanaryResult,
    CanarySettings,
    CanarySpec,
    canary_image,
    default_pause_image,
    omits_no_new_privs,
)
from shimshift.core.errors import Refusal, Unavailable
from shimshift.core.findings import Finding, Subject, error, messages
from shimshift.core.listeners import STREAMING_FLAG, owned_by, parse_ss, streaming_problems
from shimshift.core.node_hygiene import MAX_NODE_FILE_BYTES
from shimshift.core.node_plan import FileChange, NodePlan, RuntimeState
from shimshift.core.node_plan_record import plan_from_change_set_record, plan_from_record, plan_record
from shimshift.core.node_planner import plan_node
from shimshift.core.procedures.canary import remove_canary, run_canary
from shimshift.core.steps import (
    MIGRATION_ROLLBACK,
    MIGRATION_STEPS,
    Step,
    changes_configuration,
    cmdline_problems,
    config_problems,
    kubelet_args,
    missing_sandboxes,
    remaining_steps,
    split_cmdline,
)
from shimshift.core.versions import cri_dockerd_version_word
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT, CRI_DOCKERD_SOCKET

# The codes of the procedure's findings (docs/findings.md).
STEP_FAILED = "step-failed"
UNAVAILABLE = "unavailable"
STEP_ERROR = "step-error"  # an exception no rule named: a command that failed, a lost connection
DOCKER_INACTIVE = "docker-inactive"
DOCKER_NOT_ANSWERING = "docker-not-answering"
CRI_DOCKERD_MISSING = "cri-dockerd-not-installed"
CRI_DOCKERD_UNIT_DISABLED = "cri-dockerd-unit-disabled"
CRI_DOCKERD_SOCKET_INACTIVE = "cri-dockerd-socket-inactive"
CRI_UNREACHABLE = "cri-unreachable"
CRI_CONDITION_FALSE = "cri-condition-false"
CRI_RUNTIME_NOT_READY = "cri-runtime-not-ready"
NO_CNI_CONFIG = "no-cni-config"
DRAIN_UNFINISHED = "drain-unfinished"
CRI_SOCKET_ANNOTATION = "cri-socket-annotation-wrong"
SANDBOXES_MISSING = "sandboxes-missing"
UNIT_NOT_RUNNING = "unit-not-running"
UNIT_EXITED = "unit-exited"
STILL_ON_CRI_DOCKERD = "kubelet-still-on-cri-dockerd"
NO_PLAN_RECORDED = "no-plan-recorded"
FILE_CHANGED = "file-changed-since-plan"


class OutcomeStatus(StrEnum):
    MIGRATED = "migrated"
    ALREADY_MIGRATED = "already-migrated"
    REFUSED = "refused"  # preflight said no; nothing was touched
    ROLLED_BACK = "rolled-back"  # failed after a change, back on dockershim and proven healthy
    FAILED = "failed"  # failed and left as it is (rollback off, or rollback failed): needs a person


@dataclass
class NodeOutcome:
    node: str
    status: OutcomeStatus
    message: str = ""
    failed_step: str | None = None
    # Stopped where it stands for a person, to go on with `--resume` (an upgraded control plane): the
    # run stays unfinished.
    resumable: bool = False


@dataclass
class PreflightFacts:
    """What preflight read from the node; the planner turns it into a NodePlan."""

    kubelet_version: str
    cri_dockerd_version: str | None
    docker_cgroup_driver: str | None
    files: Mapping[str, bytes | None]
    cri_socket: str | None = None


Planner = Callable[[PreflightFacts, str], NodePlan]


@dataclass(frozen=True)
class MigrationSettings:
    rollback_on_failure: bool = True
    health_timeout: float = 300.0
    verify_timeout: float = 120.0
    node_files: tuple[str, ...] = ()
    # --install-cri-dockerd: the binary to install before preflight (never downloaded).
    cri_dockerd_binary: bytes | None = None
    canary: CanarySettings = field(default_factory=CanarySettings)
    run_id: str = ""  # labels the canary pod; empty for `shimshift verify`, which is no run


class StepFailed(Exception):
    """A step found the node not as it must be: ``findings`` say what, each from the rule that saw it.

    A plain string is one finding with the code ``step-failed``. ``message`` is the findings' words on
    one line after ``context`` (what the operator has always read); ``detail`` is journalled with them.
    """

    def __init__(
        self,
        step: Step | str,
        problems: str | Finding | Sequence[Finding],
        detail: Mapping[str, Any] | None = None,
        *,
        context: str = "",
    ) -> None:
        if isinstance(problems, str):
            found: tuple[Finding, ...] = (error(STEP_FAILED, problems),)
        elif isinstance(problems, Finding):
            found = (problems,)
        else:
            found = tuple(problems)
        self.step = str(step)
        self.findings = found
        self.message = context + messages(found)
        super().__init__(self.message)
        self.detail = dict(detail or {})  # journalled with the failure (e.g. the canary's timings)


StepBody = Callable[[], Procedure[dict[str, Any]]]


@dataclass
class MigrationProcedure:
    """One node's migration: the steps, their order, the journal records and the failure rules."""

    node: str
    planner: Planner
    settings: MigrationSettings = field(default_factory=MigrationSettings)

    #: The forward steps in order (the upgrade's procedure has more).
    sequence: ClassVar[tuple[Step, ...]] = MIGRATION_STEPS

    # -- the procedure ---------------------------------------------------------------------------

    def run(self) -> Procedure[NodeOutcome]:
        recorded: list[str] = yield act.RecordedSteps()
        if any(Step(name).is_rollback for name in recorded if name in _STEP_VALUES):
            # Killed while rolling back: finish the rollback. Going forward again could find the
            # files restored but the kubelet not yet restarted, and call that node migrated.
            yield from self.remove_leftover_canary()
            return (yield from self.finish_rollback("resumed an interrupted rollback"))
        finished: list[str] = yield act.FinishedSteps()
        for step in remaining_steps(finished):
            if step not in {Step.INSTALL, Step.PREFLIGHT} and (yield from self.plan()).is_noop:
                break
            failure = yield from self.run_step(step, self.body(step))
            if failure is not None:
                return (yield from self.after_failure(step, failure))
        plan = yield from self.plan()
        if plan.is_noop:
            return NodeOutcome(self.node, OutcomeStatus.ALREADY_MIGRATED, plan.noop_reason or "")
        yield act.Event("ShimshiftMigrated", f"kubelet now uses {CRI_DOCKERD_ENDPOINT}")
        return NodeOutcome(self.node, OutcomeStatus.MIGRATED, f"kubelet uses {CRI_DOCKERD_ENDPOINT}")

    def body(self, step: Step) -> StepBody:
        bodies: dict[Step, StepBody] = {
            Step.INSTALL: self.install,
            Step.PREFLIGHT: self.preflight,
            Step.CORDON: self.cordon,
            Step.DRAIN: self.drain,
            Step.WRITE_CONFIG: self.write_config,
            Step.ANNOTATE: self.annotate,
            Step.RESTART_CRI_DOCKERD: self.restart_cri_dockerd,
            Step.RESTART_KUBELET: self.restart_kubelet,
            Step.VERIFY: self.verify,
            Step.UNCORDON: self.uncordon,
            Step.RESTORE_CONFIG: self.restore_config,
            Step.RESTORE_ANNOTATION: self.restore_annotation,
            Step.ROLLBACK_RESTART_CRI_DOCKERD: self.rollback_restart_cri_dockerd,
            Step.ROLLBACK_RESTART_KUBELET: self.restart_kubelet,
            Step.ROLLBACK_VERIFY: self.rollback_verify,
            Step.ROLLBACK_UNCORDON: self.uncordon,
        }
        return bodies[step]

    def run_step(self, step: Step, body: StepBody) -> Procedure[str | None]:
        """Record, run and record one step; the failure's message, or None when it finished."""
        yield act.Record(step, "started")
        try:
            detail = yield from body()
        except Exception as failure:  # any failure of a step must end in the node's recovery
            message = describe(failure)
            extra = failure.detail if isinstance(failure, StepFailed) else {}
            found = [finding.about(Subject.of_node(self.node)).to_json() for finding in findings_of(failure)]
            yield act.Record(step, "failed", {**extra, "message": message, "findings": found})
            return message
        yield act.Record(step, "finished", detail)
        return None

    def after_failure(self, step: Step, message: str) -> Procedure[NodeOutcome]:
        yield act.Event("ShimshiftFailed", f"{step}: {message}", warning=True)
        if step in {Step.INSTALL, Step.PREFLIGHT}:
            return NodeOutcome(self.node, OutcomeStatus.REFUSED, message, str(step))
        if not changes_configuration(step, self.sequence):
            # Nothing on the node changed: give the node back to the scheduler if we took it.
            yield act.UncordonIfOurs()
            return NodeOutcome(self.node, OutcomeStatus.FAILED, message, str(step))
        if not self.settings.rollback_on_failure:
            return NodeOutcome(self.node, OutcomeStatus.FAILED, f"{message} (left as is: --no-rollback)", str(step))
        return (yield from self.finish_rollback(message, str(step)))

    def finish_rollback(self, message: str, failed_step: str | None = None) -> Procedure[NodeOutcome]:
        try:
            yield from self.rollback()
        except StepFailed as error:
            return NodeOutcome(
                self.node, OutcomeStatus.FAILED, f"{message}; rollback failed: {error.message}", failed_step
            )
        return NodeOutcome(self.node, OutcomeStatus.ROLLED_BACK, message, failed_step)

    def rollback(self) -> Procedure[None]:
        """Restore files and annotation, restart, prove the dockershim state, uncordon if we cordoned."""
        if (yield from self.plan()).is_noop:
            return
        yield from self.rollback_steps()
        yield act.Event("ShimshiftRolledBack", "back on dockershim", warning=True)

    def rollback_steps(self) -> Procedure[None]:
        """The rollback's steps that have not finished, in order; StepFailed names the one that failed.

        A resumed run finishes an interrupted rollback from where it stopped: restarting the kubelet of
        a node already proven back on dockershim again would only disturb its pods.
        """
        done = set((yield act.FinishedSteps()))
        for step in MIGRATION_ROLLBACK:
            if step in done:
                continue
            failure = yield from self.run_step(step, self.body(step))
            if failure is not None:
                raise StepFailed(step, failure)

    def preflight_only(self) -> Procedure[NodePlan]:
        """Preflight alone (for `shimshift plan`): the checks and the plan as the journal would keep it,
        nothing changed."""
        detail = yield from self.preflight()
        return plan_from_record(detail[PLAN_KEY])

    def verify_now(self) -> Procedure[list[Finding]]:
        """What is wrong with the node as a migrated node, now (for `shimshift verify`); empty when right.

        Uses the plan of the newest run that planned this node, so it checks what that plan
        promised: the kubelet's runtime flags on its running command line, a recent heartbeat,
        cri-dockerd listing every running pod of the node, its streaming server on loopback only, and
        a hardened canary pod that runs on the pod network.
        """
        plan = yield from self.plan()
        problems: list[Finding] = []
        # The heartbeat must postdate the migration's kubelet restart; with node leases an unchanged
        # status is re-posted only every 5 minutes, so "recent" would be the wrong test.
        restarted = ((yield act.StepDetail(Step.RESTART_KUBELET)) or {}).get("restarted_at")
        since = datetime.fromisoformat(restarted) if restarted else datetime.min.replace(tzinfo=UTC)
        health = yield act.WaitHealthy(since, 0)
        problems += list(health.problems)
        argv = yield from self.main_process_cmdline("kubelet.service", Step.VERIFY)
        problems += cmdline_problems(argv, expected=plan.expected_kubelet_args, forbidden=plan.forbidden_kubelet_args)
        socket = yield act.GetCriSocket()
        if socket != plan.cri_socket_after:
            text = f"annotation kubeadm.alpha.kubernetes.io/cri-socket is {socket!r}"
            problems.append(error(CRI_SOCKET_ANNOTATION, text))
        missing = yield from self.missing_sandboxes()
        if missing:
            problems.append(error(SANDBOXES_MISSING, "cri-dockerd does not list running pod(s): " + ", ".join(missing)))
        problems += (yield from self.streaming_check(plan))[0]
        canary = yield from self.canary()
        if not canary.ok:
            problems.append(error(canary.verdict.code, "canary: " + canary.verdict.message))
        return [problem.about(Subject.of_node(self.node)) for problem in problems]

    # -- the steps -------------------------------------------------------------------------------

    def install(self) -> Procedure[dict[str, Any]]:
        binary = self.settings.cri_dockerd_binary
        if binary is None:
            return {"installed": False}
        written = []
        if (yield act.ReadFile(cri_dockerd_units.BINARY_PATH)) != binary:
            yield act.WriteFile(cri_dockerd_units.BINARY_PATH, binary)
            yield run("chmod", "0755", cri_dockerd_units.BINARY_PATH)
            written.append(cri_dockerd_units.BINARY_PATH)
        packaged = yield run("systemctl", "cat", "cri-docker.service", check=False)
        if packaged.returncode != 0:
            # Units from a package stay authoritative; ours only fill the gap on a bare node.
            for path, text in cri_dockerd_units.UNIT_FILES.items():
                yield act.WriteFile(path, text.encode())
                written.append(path)
        yield run("systemctl", "daemon-reload")
        yield run("systemctl", "enable", "--now", "cri-docker.socket", "cri-docker.service")
        return {"installed": True, "written": written}

    def preflight(self) -> Procedure[dict[str, Any]]:
        problems: list[Finding] = []
        docker = yield run("systemctl", "is-active", "docker", check=False)
        if docker.returncode != 0:
            problems.append(error(DOCKER_INACTIVE, "Docker Engine is not active (systemctl is-active docker)"))
        driver = yield run("docker", "info", "--format", "{{.CgroupDriver}}", check=False)
        if driver.returncode != 0:
            text = "Docker Engine does not answer (docker info failed): " + _tail(driver.stderr)
            problems.append(error(DOCKER_NOT_ANSWERING, text))
        binary = yield from self.cri_dockerd_binary()
        version: str | None = None
        if binary is None:
            text = "cri-dockerd is not installed: no cri-docker.service with an ExecStart binary"
            problems.append(error(CRI_DOCKERD_MISSING, text))
        else:
            result = yield act.Run((binary, "--version"), check=False)
            version = cri_dockerd_version_word((result.stdout + result.stderr).decode("utf-8", "replace"))
            for unit in ("cri-docker.socket", "cri-docker.service"):
                enabled = yield run("systemctl", "is-enabled", unit, check=False)
                if enabled.returncode != 0:
                    text = f"{unit} is not enabled (systemctl enable --now {unit})"
                    problems.append(error(CRI_DOCKERD_UNIT_DISABLED, text))
            active = yield run("systemctl", "is-active", "cri-docker.socket", check=False)
            if active.returncode != 0:
                text = "cri-docker.socket is not active (systemctl start cri-docker.socket)"
                problems.append(error(CRI_DOCKERD_SOCKET_INACTIVE, text))
        if not problems:
            problems.extend((yield from self.cri_problems()))
        kubelet_version = yield act.GetKubeletVersion()
        files: dict[str, bytes | None] = {}
        for path in self.settings.node_files:
            files[path] = yield act.ReadFile(path, max_bytes=MAX_NODE_FILE_BYTES)
        facts = PreflightFacts(
            kubelet_version=kubelet_version,
            cri_dockerd_version=version,
            docker_cgroup_driver=driver.stdout.decode().strip() or None if driver.returncode == 0 else None,
            files=files,
            cri_socket=(yield act.GetCriSocket()),
        )
        plan = self.planner(self.plan_facts(facts), self.node)
        if not plan.is_noop:
            cni = yield run("ls", "-1", plan.cni_conf_dir, check=False)
            configs = [name for name in cni.stdout.decode().split() if name.endswith((".conf", ".conflist", ".json"))]
            if not configs:
                text = (
                    f"no CNI network configuration in {plan.cni_conf_dir}: pods would get no network"
                    " through cri-dockerd (install the cluster's network plugin first)"
                )
                problems.append(error(NO_CNI_CONFIG, text))
        if problems:
            raise StepFailed(Step.PREFLIGHT, problems)
        return {
            PLAN_KEY: plan_record(plan),
            "kubelet_version": kubelet_version,
            "cri_dockerd_version": version,
        }

    def plan_facts(self, facts: PreflightFacts) -> PreflightFacts:
        """The facts the planner plans from: as read (the upgrade plans for its target kubelet)."""
        return facts

    def cordon(self) -> Procedure[dict[str, Any]]:
        return {"cordoned_by_us": (yield act.Cordon())}

    def drain(self) -> Procedure[dict[str, Any]]:
        outcome = yield act.Drain()
        if not outcome.drained:
            raise StepFailed(Step.DRAIN, outcome.problems or error(DRAIN_UNFINISHED, "drain did not finish"))
        # No Event here: the drain records ShimshiftDrained itself, with the pods' names.
        return {"evicted": list(outcome.evicted)}

    def write_config(self) -> Procedure[dict[str, Any]]:
        written = yield from self.apply_edits((yield from self.plan()).changes, reverse=False)
        yield act.Event("ShimshiftConfigured", f"rewrote {', '.join(written) or 'nothing'}")
        return {"written": written}

    def annotate(self) -> Procedure[dict[str, Any]]:
        plan = yield from self.plan()
        return {"previous": (yield act.SetCriSocket(plan.cri_socket_after))}

    def restart_cri_dockerd(self) -> Procedure[dict[str, Any]]:
        plan = yield from self.plan()
        if not plan.cri_dockerd_config_changed:
            return {"restarted": False}
        yield run("systemctl", "daemon-reload")
        yield run("systemctl", "restart", "cri-docker.service")
        argv = yield from self.main_process_cmdline("cri-docker.service", Step.RESTART_CRI_DOCKERD)
        # The moved dockershim settings must be on the running cri-dockerd, not only in a file: a
        # missing pause image or CNI directory otherwise shows only when the first pod starts.
        problems = cmdline_problems(argv, expected=plan.cri_dockerd_settings, forbidden=(), process="cri-dockerd")
        problems += yield from self.cri_problems()
        if problems:
            raise StepFailed(Step.RESTART_CRI_DOCKERD, problems)
        return {"restarted": True, "cri_dockerd_args": kubelet_args(argv)}

    def restart_kubelet(self) -> Procedure[dict[str, Any]]:
        yield act.Snapshot()
        yield run("systemctl", "daemon-reload")
        yield run("systemctl", "restart", "kubelet")
        # Taken once `systemctl restart` returned, i.e. the old kubelet is gone: a heartbeat newer than
        # this can only come from the new one.
        started: datetime = yield act.Now()
        return {"restarted_at": started.isoformat()}

    def verify(self) -> Procedure[dict[str, Any]]:
        since = yield from self.restarted_at(Step.RESTART_KUBELET)
        health = yield act.WaitHealthy(since, self.settings.health_timeout)
        if not health.healthy:
            raise StepFailed(Step.VERIFY, health.problems, context="node not healthy after the kubelet restart: ")
        plan = yield from self.plan()
        argv = yield from self.main_process_cmdline("kubelet.service", Step.VERIFY)
        problems = cmdline_problems(argv, expected=plan.expected_kubelet_args, forbidden=plan.forbidden_kubelet_args)
        if plan.expected_kubelet_config:
            live = yield act.GetKubeletConfig()
            problems += config_problems(live, expected=plan.expected_kubelet_config)
        if problems:
            raise StepFailed(Step.VERIFY, problems)
        problems, streaming = yield from self.streaming_check(plan)
        if problems:
            raise StepFailed(Step.VERIFY, problems, {"streaming": streaming})
        # A hardened pod is admitted, runs, and is on the pod network. Before the sandbox check: when
        # cri-dockerd lost its network plugin the kubelet keeps replacing address-less sandboxes, and
        # the canary names that cause where the sandbox check would only name the pods.
        canary = yield from self.canary()
        if not canary.ok:
            failed = error(canary.verdict.code, "canary: " + canary.verdict.message)
            raise StepFailed(Step.VERIFY, failed, {"canary": canary.detail})
        missing = yield from self.missing_sandboxes()
        if missing:
            gone = error(SANDBOXES_MISSING, "cri-dockerd does not list running pod(s): " + ", ".join(missing))
            raise StepFailed(Step.VERIFY, gone, {"canary": canary.detail})
        return {"kubelet_args": kubelet_args(argv), "streaming": streaming, "canary": canary.detail}

    def uncordon(self) -> Procedure[dict[str, Any]]:
        return {"uncordoned": (yield act.UncordonIfOurs())}

    # -- the rollback's steps --------------------------------------------------------------------

    def restore_config(self) -> Procedure[dict[str, Any]]:
        return {"restored": (yield from self.apply_edits((yield from self.plan()).changes, reverse=True))}

    def restore_annotation(self) -> Procedure[dict[str, Any]]:
        plan = yield from self.plan()
        yield act.SetCriSocket(plan.cri_socket_before)
        return {"value": plan.cri_socket_before}

    def rollback_restart_cri_dockerd(self) -> Procedure[dict[str, Any]]:
        if not (yield from self.plan()).cri_dockerd_config_changed:
            return {"restarted": False}
        yield run("systemctl", "daemon-reload")
        # cri-dockerd stays installed and running on its old settings; only the kubelet leaves it.
        yield run("systemctl", "try-restart", "cri-docker.service", check=False)
        return {"restarted": True}

    def rollback_verify(self) -> Procedure[dict[str, Any]]:
        since = yield from self.restarted_at(Step.ROLLBACK_RESTART_KUBELET)
        health = yield act.WaitHealthy(since, self.settings.health_timeout)
        if not health.healthy:
            raise StepFailed(Step.ROLLBACK_VERIFY, health.problems, context="node not healthy on dockershim: ")
        args = kubelet_args((yield from self.main_process_cmdline("kubelet.service", Step.ROLLBACK_VERIFY)))
        plan = yield from self.plan()
        if plan.is_noop or plan.state is RuntimeState.CRI_DOCKERD:
            # It was on cri-dockerd before: an upgrade's rollback (a journey drain's too) keeps it there.
            return {"kubelet_args": args}
        if (
            args.get("--container-runtime") == "remote"
            or args.get("--container-runtime-endpoint") == CRI_DOCKERD_ENDPOINT
        ):
            still = error(STILL_ON_CRI_DOCKERD, "the kubelet still points at cri-dockerd after the rollback")
            raise StepFailed(Step.ROLLBACK_VERIFY, still)
        return {"kubelet_args": args}

    # -- parts the steps share -------------------------------------------------------------------

    def plan(self) -> Procedure[NodePlan]:
        """The plan preflight recorded: this run's, or the one `rollback` undoes or `verify` checks."""
        plan = recorded_plan((yield act.StepDetail(Step.PREFLIGHT)), node=self.node)
        if plan is None:
            raise Refusal(
                "no migration plan is recorded for this node",
                hint="run `shimshift migrate` for it first; rollback works from the recorded plan",
                node=self.node,
                code=NO_PLAN_RECORDED,
            )
        return plan

    def restarted_at(self, step: Step) -> Procedure[datetime]:
        detail = (yield act.StepDetail(step)) or {}
        if "restarted_at" in detail:
            return datetime.fromisoformat(detail["restarted_at"])
        now: datetime = yield act.Now()
        return now

    def apply_edits(self, edits: tuple[FileChange, ...], *, reverse: bool) -> Procedure[list[str]]:
        """Bring each file from one side of its edit to the other; refuse files someone else changed.

        Idempotent: a file already on the target side is left alone, so a resumed run that died
        between two renames finishes the job without rewriting what is done.
        """
        changed = []
        for edit in edits:
            source, target = (edit.after, edit.before) if reverse else (edit.before, edit.after)
            current = yield act.ReadFile(edit.path)
            if current == target:
                continue
            if current != source:
                raise Refusal(
                    "the file changed since shimshift planned this node",
                    hint="compare it with the newest .shimshift-*.bak beside it and re-run the plan",
                    file=edit.path,
                    node=self.node,
                    code=FILE_CHANGED,
                )
            # A new drop-in's directory (cri-docker.service.d) is created by the atomic write.
            yield act.RemoveFile(edit.path) if target is None else act.WriteFile(edit.path, target)
            changed.append(edit.path)
        return changed

    def main_pid(self, unit: str, step: Step) -> Procedure[int]:
        result = yield run("systemctl", "show", "--property", "MainPID", "--value", unit)
        pid = result.stdout.decode().strip()
        if not pid.isdigit() or pid == "0":
            text = f"{unit} is not running (systemctl show -p MainPID {unit} is 0)"
            raise StepFailed(step, error(UNIT_NOT_RUNNING, text))
        return int(pid)

    def main_process_cmdline(self, unit: str, step: Step) -> Procedure[list[str]]:
        pid = yield from self.main_pid(unit, step)
        raw = yield act.ReadFile(f"/proc/{pid}/cmdline")
        if raw is None:
            raise StepFailed(step, error(UNIT_EXITED, f"{unit} (pid {pid}) exited while being checked"))
        return split_cmdline(raw)

    def streaming_check(self, plan: NodePlan) -> Procedure[tuple[list[Finding], dict[str, Any]]]:
        """cri-dockerd's TCP listeners (its streaming server), and what is wrong with them.

        Only a plan that bound the streaming server to loopback is held to it: an address the operator
        gave cri-dockerd before the migration is theirs to keep
        (docs/runtime-facts.md#the-streaming-server-moves-from-localhost-to-every-address).
        """
        pid = yield from self.main_pid("cri-docker.service", Step.VERIFY)
        listening = yield run("ss", "-Hltnp")
        listeners = parse_ss(listening.stdout.decode("utf-8", "replace"))
        ours = [item.endpoint for item in owned_by(listeners, pid=pid)]
        problems = streaming_problems(listeners, pid=pid)
        if problems and STREAMING_FLAG not in plan.cri_dockerd_settings:
            note = f"{STREAMING_FLAG} is the operator's: " + problems[0].message
            return [], {"cri_dockerd_listeners": ours, "note": note}
        return problems, {"cri_dockerd_listeners": ours}

    def canary(self) -> Procedure[CanaryResult]:
        settings = self.settings.canary
        kubelet_version = yield act.GetKubeletVersion()
        preflight = (yield act.StepDetail(Step.PREFLIGHT)) or {}
        running = kubelet_args((yield from self.main_process_cmdline("cri-docker.service", Step.VERIFY)))
        image = canary_image(
            override=settings.image,
            cri_dockerd_args=running,
            default=default_pause_image(preflight.get("cri_dockerd_version")),
        )
        accepted = settings.accept_refused_hardened_pods or settings.no_hardened_workloads
        omit = omits_no_new_privs(kubelet_version, accepted=accepted)
        spec = CanarySpec(self.node, settings.namespace, image, self.settings.run_id or "verify", omit)
        result = yield from run_canary(spec, settings.timeout, own_image=settings.image is None)
        if omit:
            result.detail["note"] = (
                f"allowPrivilegeEscalation: false left out of the canary: kubelet {kubelet_version} on cri-dockerd "
                + (
                    "refuses it, accepted with --accept-refused-hardened-pods"
                    if settings.accept_refused_hardened_pods
                    else "refuses it, and no workload of the cluster set it when the run began (new ones will "
                    "be refused until the kubelet is 1.24+)"
                )
            )
        return result

    def remove_leftover_canary(self) -> Procedure[None]:
        """A run killed inside verify may have left its canary; the verify that reruns deletes it, a
        resumed rollback does it here."""
        recorded = yield act.RecordedSteps()
        finished = set((yield act.FinishedSteps()))
        if Step.VERIFY not in recorded or Step.VERIFY in finished:
            return
        try:
            yield from remove_canary(self.node, self.settings.canary.namespace)
        except Exception as error:  # the rollback matters more than a leftover pod; say so and go on
            yield act.Progress(Step.VERIFY, f"could not delete a leftover canary pod: {describe(error)}")

    def cri_problems(self) -> Procedure[list[Finding]]:
        report = yield act.CriCheck()
        problems: list[Finding] = list(report.problems)
        if not report.runtime_ready:
            text = f"cri-dockerd on {CRI_DOCKERD_SOCKET} reports RuntimeReady=false"
            problems.append(error(CRI_RUNTIME_NOT_READY, text))
        return problems

    def missing_sandboxes(self) -> Procedure[list[str]]:
        pods = yield act.RunningPods()
        sandboxes = yield act.CriSandboxes()
        missing = missing_sandboxes(pods, sandboxes)
        if missing:
            # Two reads at two moments: a pod deleted between them (verify's own canary, just removed
            # while the watch cache the pods came from had not heard of it) is in the first only. A pod is
            # missing when the API server still has it running after cri-dockerd answered (seen on the
            # 1,000-node kwok rig: 2 nodes of 104 rolled back for their own canary).
            still_running = {(pod.namespace, pod.name, pod.uid) for pod in (yield act.RunningPods())}
            missing = [pod for pod in missing if (pod.namespace, pod.name, pod.uid) in still_running]
        return [f"{pod.namespace}/{pod.name}" for pod in missing]

    def cri_dockerd_binary(self) -> Procedure[str | None]:
        shown = yield run("systemctl", "show", "--property", "ExecStart", "--value", "cri-docker.service", check=False)
        text: str = shown.stdout.decode()
        for part in text.split(";"):
            key, _, value = part.strip(" {}\n").partition("=")
            if key.strip() == "path" and value.strip():
                return value.strip()
        return None


def plan_from_facts(facts: PreflightFacts, node: str) -> NodePlan:
    """The planner the procedure calls at preflight: the core's plan from what preflight read."""
    return plan_node(
        kubelet_version=facts.kubelet_version,
        files=facts.files,
        cri_dockerd_version=facts.cri_dockerd_version,
        docker_cgroup_driver=facts.docker_cgroup_driver,
        node=node,
        cri_socket_annotation=facts.cri_socket,
    )


# Where preflight's journal detail keeps the plan. Journals of builds up to 41920b0 (before the plan
# model was one) hold a ChangeSet record under LEGACY_PLAN_KEY instead; a run they started still
# resumes, rolls back and verifies from it.
PLAN_KEY = "plan"
LEGACY_PLAN_KEY = "change_set"


def recorded_plan(detail: Mapping[str, Any] | None, *, node: str | None) -> NodePlan | None:
    """The plan in preflight's journal detail, in either record; None when none is recorded."""
    if detail is None:
        return None
    if PLAN_KEY in detail:
        return plan_from_record(detail[PLAN_KEY])
    if LEGACY_PLAN_KEY in detail:
        return plan_from_change_set_record(
            detail[LEGACY_PLAN_KEY], kubelet_version=str(detail.get("kubelet_version", "")), node=node
        )
    return None


_STEP_VALUES = frozenset(step.value for step in Step)


def describe(failure: BaseException) -> str:
    """A failure as the operator reads it on one line."""
    if isinstance(failure, StepFailed):
        return failure.message
    if isinstance(failure, Refusal | Unavailable):
        return str(failure)
    return f"{type(failure).__name__}: {failure}"


def findings_of(failure: BaseException) -> tuple[Finding, ...]:
    """A failure as the findings the journal and the reports keep: a step's own, a refusal's, or one
    naming what could not be reached or what broke."""
    if isinstance(failure, StepFailed):
        return failure.findings
    if isinstance(failure, Refusal):
        return (failure.finding,)
    if isinstance(failure, Unavailable):
        return (error(UNAVAILABLE, f"{failure.peer}: {failure.what}", hint=failure.hint),)
    return (error(STEP_ERROR, describe(failure)),)


def _tail(data: bytes, limit: int = 300) -> str:
    return data.decode("utf-8", "replace").strip()[-limit:]



__all__ = [
    "CRI_DOCKERD_ENDPOINT",
    "CRI_DOCKERD_SOCKET",
    "LEGACY_PLAN_KEY",
    "MIGRATION_STEPS",
    "PLAN_KEY",
    "MigrationProcedure",
    "MigrationSettings",
    "NodeOutcome",
    "OutcomeStatus",
    "PreflightFacts",
    "StepFailed",
    "findings_of",
    "plan_from_facts",
    "recorded_plan",
]
