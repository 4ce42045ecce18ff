"""What happens to one node, top to bottom.

preflight → cordon → drain → write kubelet and cri-dockerd config → annotate → restart cri-dockerd
(when its config changed) → restart kubelet → verify → uncordon.

Every step is written to the journal before and after it runs, and every step is idempotent, so a run
killed anywhere resumes at the step that did not finish. A failure before the configuration changes
only uncordons (if we cordoned); a failure after it rolls the node back to dockershim and proves the
old state, unless the operator asked for ``--no-rollback``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shimshift.core import cri_dockerd_units
from shimshift.core.canary import CanarySpec, canary_image, default_pause_image, omits_no_new_privs
from shimshift.core.change_set import ChangeSet, FileEdit
from shimshift.core.errors import Refusal, Unavailable
from shimshift.core.listeners import STREAMING_FLAG, owned_by, parse_ss, streaming_problems
from shimshift.core.node_hygiene import MAX_NODE_FILE_BYTES
from shimshift.core.steps import (
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
from shimshift.orchestrator.canary import CanaryResult, CanarySettings, remove_canary, run_canary
from shimshift.orchestrator.ports import ClusterPort, CriPort, JournalPort, NodePort, StepEvent

CRI_DOCKERD_SOCKET = "/var/run/cri-dockerd.sock"
CRI_DOCKERD_ENDPOINT = f"unix://{CRI_DOCKERD_SOCKET}"
ROLLBACK_PREFIX = "rollback:"


class NodeStatus(StrEnum):
    MIGRATED = "migrated"
    ALREADY_MIGRATED = "already-migrated"
    REFUSED = "refused"  # preflight said no; nothing was touched
    ROLLED_BACK = "rolled-back"  # failed after a change, back on dockershim and proven healthy
    FAILED = "failed"  # failed and left as it is (rollback off, or rollback failed): needs a person


@dataclass
class NodeOutcome:
    node: str
    status: NodeStatus
    message: str = ""
    failed_step: str | None = None


@dataclass
class PreflightFacts:
    """What preflight read from the node; the planner turns it into a ChangeSet."""

    kubelet_version: str
    cri_dockerd_version: str | None
    docker_cgroup_driver: str | None
    files: Mapping[str, bytes | None]
    cri_socket: str | None = None


Planner = Callable[[PreflightFacts, str], ChangeSet]


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
    def __init__(self, step: Step | str, message: str, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.step = str(step)
        self.message = message
        self.detail = dict(detail or {})  # journalled with the failure (e.g. the canary's timings)


@dataclass
class NodeMigration:
    node: str
    cluster: ClusterPort
    access: NodePort
    cri: CriPort
    journal: JournalPort
    planner: Planner
    settings: MigrationSettings = field(default_factory=MigrationSettings)
    on_event: Callable[[StepEvent], None] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def run(self) -> NodeOutcome:
        if any(name.startswith(ROLLBACK_PREFIX) for name in self.journal.recorded_steps(self.node)):
            # Killed while rolling back: finish the rollback. Going forward again could find the
            # files restored but the kubelet not yet restarted, and call that node migrated.
            await self._remove_leftover_canary()
            return await self._finish_rollback("resumed an interrupted rollback")
        finished = [Step(name) for name in self.journal.finished_steps(self.node) if name in set(Step)]
        handlers: dict[Step, Callable[[], Awaitable[dict[str, Any]]]] = {
            Step.INSTALL: self._install,
            Step.PREFLIGHT: self._preflight,
            Step.CORDON: self._cordon,
            Step.DRAIN: self._drain,
            Step.WRITE_CONFIG: self._write_config,
            Step.ANNOTATE: self._annotate,
            Step.RESTART_CRI_DOCKERD: self._restart_cri_dockerd,
            Step.RESTART_KUBELET: self._restart_kubelet,
            Step.VERIFY: self._verify,
            Step.UNCORDON: self._uncordon,
        }
        for step in remaining_steps(finished):
            if step not in {Step.INSTALL, Step.PREFLIGHT} and self._change_set().is_noop:
                break
            self._record(step, "started")
            try:
                detail = await handlers[step]()
            except Exception as error:  # any failure of a step must end in the node's recovery
                message = _describe(error)
                extra = error.detail if isinstance(error, StepFailed) else {}
                self._record(step, "failed", {**extra, "message": message})
                return await self._after_failure(step, message)
            self._record(step, "finished", detail)
        change_set = self._change_set()
        if change_set.is_noop:
            return NodeOutcome(self.node, NodeStatus.ALREADY_MIGRATED, change_set.noop_reason or "")
        await self.cluster.event(
            self.node, reason="ShimshiftMigrated", message=f"kubelet now uses {CRI_DOCKERD_ENDPOINT}"
        )
        return NodeOutcome(self.node, NodeStatus.MIGRATED, f"kubelet uses {CRI_DOCKERD_ENDPOINT}")

    async def preflight(self) -> ChangeSet:
        """Preflight alone (for `shimshift plan`): the checks and the change set, nothing changed."""
        return ChangeSet.from_record((await self._preflight())["change_set"])

    async def verify_now(self) -> list[str]:
        """What is wrong with the node as a migrated node, now (for `shimshift verify`); empty when right.

        Uses the change set of the newest run that planned this node, so it checks what that plan
        promised: the kubelet's runtime flags on its running command line, a recent heartbeat,
        cri-dockerd listing every running pod of the node, its streaming server on loopback only, and
        a hardened canary pod that runs on the pod network.
        """
        change_set = self._change_set()
        problems = []
        # The heartbeat must postdate the migration's kubelet restart; with node leases an unchanged
        # status is re-posted only every 5 minutes, so "recent" would be the wrong test.
        restarted = (self.journal.step_detail(self.node, Step.RESTART_KUBELET) or {}).get("restarted_at")
        since = datetime.fromisoformat(restarted) if restarted else datetime.min.replace(tzinfo=UTC)
        health = await self.cluster.wait_healthy(self.node, since=since, timeout=0)
        problems += list(health.problems)
        argv = await self._kubelet_cmdline()
        problems += cmdline_problems(
            argv, expected=change_set.expected_kubelet_args, forbidden=change_set.forbidden_kubelet_args
        )
        socket = await self.cluster.get_cri_socket(self.node)
        if socket != change_set.cri_socket_after:
            problems.append(f"annotation kubeadm.alpha.kubernetes.io/cri-socket is {socket!r}")
        missing = await self._missing_sandboxes()
        if missing:
            problems.append("cri-dockerd does not list running pod(s): " + ", ".join(missing))
        problems += (await self._streaming_check(change_set))[0]
        canary = await self._canary()
        if not canary.ok:
            problems.append("canary: " + canary.verdict.message)
        return problems

    # -- the steps -------------------------------------------------------------------------------

    async def _install(self) -> dict[str, Any]:
        binary = self.settings.cri_dockerd_binary
        if binary is None:
            return {"installed": False}
        written = []
        if await self.access.read_file(cri_dockerd_units.BINARY_PATH) != binary:
            await self.access.write_file_atomic(cri_dockerd_units.BINARY_PATH, binary)
            await self.access.run(["chmod", "0755", cri_dockerd_units.BINARY_PATH])
            written.append(cri_dockerd_units.BINARY_PATH)
        packaged = await self.access.run(["systemctl", "cat", "cri-docker.service"], check=False)
        if packaged.returncode != 0:
            # Units from a package stay authoritative; ours only fill the gap on a bare node.
            for path, text in cri_dockerd_units.UNIT_FILES.items():
                await self.access.write_file_atomic(path, text.encode())
                written.append(path)
        await self.access.run(["systemctl", "daemon-reload"])
        await self.access.run(["systemctl", "enable", "--now", "cri-docker.socket", "cri-docker.service"])
        return {"installed": True, "written": written}

    async def _preflight(self) -> dict[str, Any]:
        problems: list[str] = []
        docker = await self.access.run(["systemctl", "is-active", "docker"], check=False)
        if docker.returncode != 0:
            problems.append("Docker Engine is not active (systemctl is-active docker)")
        driver = await self.access.run(["docker", "info", "--format", "{{.CgroupDriver}}"], check=False)
        if driver.returncode != 0:
            problems.append("Docker Engine does not answer (docker info failed): " + _tail(driver.stderr))
        binary = await self._cri_dockerd_binary()
        version: str | None = None
        if binary is None:
            problems.append("cri-dockerd is not installed: no cri-docker.service with an ExecStart binary")
        else:
            result = await self.access.run([binary, "--version"], check=False)
            version = _parse_cri_dockerd_version(result.stdout + result.stderr)
            for unit in ("cri-docker.socket", "cri-docker.service"):
                enabled = await self.access.run(["systemctl", "is-enabled", unit], check=False)
                if enabled.returncode != 0:
                    problems.append(f"{unit} is not enabled (systemctl enable --now {unit})")
            active = await self.access.run(["systemctl", "is-active", "cri-docker.socket"], check=False)
            if active.returncode != 0:
                problems.append("cri-docker.socket is not active (systemctl start cri-docker.socket)")
        if not problems:
            problems.extend(await self._cri_problems())
        kubelet_version = await self.cluster.kubelet_version(self.node)
        files = {
            path: await self.access.read_file(path, max_bytes=MAX_NODE_FILE_BYTES) for path in self.settings.node_files
        }
        facts = PreflightFacts(
            kubelet_version=kubelet_version,
            cri_dockerd_version=version,
            docker_cgroup_driver=driver.stdout.decode().strip() or None if driver.returncode == 0 else None,
            files=files,
            cri_socket=await self.cluster.get_cri_socket(self.node),
        )
        change_set = self.planner(facts, self.node)
        if not change_set.is_noop:
            cni = await self.access.run(["ls", "-1", change_set.cni_conf_dir], check=False)
            configs = [name for name in cni.stdout.decode().split() if name.endswith((".conf", ".conflist", ".json"))]
            if not configs:
                problems.append(
                    f"no CNI network configuration in {change_set.cni_conf_dir}: pods would get no network"
                    " through cri-dockerd (install the cluster's network plugin first)"
                )
        if problems:
            raise StepFailed(Step.PREFLIGHT, "; ".join(problems))
        return {
            "change_set": change_set.to_record(),
            "kubelet_version": kubelet_version,
            "cri_dockerd_version": version,
        }

    async def _cordon(self) -> dict[str, Any]:
        ours = await self.cluster.cordon(self.node)
        return {"cordoned_by_us": ours}

    async def _drain(self) -> dict[str, Any]:
        outcome = await self.cluster.drain(self.node, on_progress=lambda text: self._emit(Step.DRAIN, "progress", text))
        if not outcome.drained:
            raise StepFailed(Step.DRAIN, outcome.message or "drain did not finish")
        await self.cluster.event(self.node, reason="ShimshiftDrained", message=f"evicted {len(outcome.evicted)} pod(s)")
        return {"evicted": list(outcome.evicted)}

    async def _write_config(self) -> dict[str, Any]:
        written = await self._apply_edits(self._change_set().edits, reverse=False)
        await self.cluster.event(
            self.node, reason="ShimshiftConfigured", message=f"rewrote {', '.join(written) or 'nothing'}"
        )
        return {"written": written}

    async def _annotate(self) -> dict[str, Any]:
        change_set = self._change_set()
        previous = await self.cluster.set_cri_socket(self.node, change_set.cri_socket_after)
        return {"previous": previous}

    async def _restart_cri_dockerd(self) -> dict[str, Any]:
        if not self._change_set().cri_dockerd_config_changed:
            return {"restarted": False}
        await self.access.run(["systemctl", "daemon-reload"])
        await self.access.run(["systemctl", "restart", "cri-docker.service"])
        argv = await self._main_process_cmdline("cri-docker.service", Step.RESTART_CRI_DOCKERD)
        # The moved dockershim settings must be on the running cri-dockerd, not only in a file: a
        # missing pause image or CNI directory otherwise shows only when the first pod starts.
        problems = cmdline_problems(argv, expected=self._change_set().cri_dockerd_args, forbidden=())
        problems = [text.replace("kubelet", "cri-dockerd") for text in problems]
        problems += await self._cri_problems()
        if problems:
            raise StepFailed(Step.RESTART_CRI_DOCKERD, "; ".join(problems))
        return {"restarted": True, "cri_dockerd_args": kubelet_args(argv)}

    async def _restart_kubelet(self) -> dict[str, Any]:
        started = await self._restart_kubelet_now()
        return {"restarted_at": started.isoformat()}

    async def _verify(self) -> dict[str, Any]:
        detail = self.journal.step_detail(self.node, Step.RESTART_KUBELET) or {}
        since = datetime.fromisoformat(detail["restarted_at"]) if "restarted_at" in detail else self.clock()
        health = await self.cluster.wait_healthy(self.node, since=since, timeout=self.settings.health_timeout)
        if not health.healthy:
            raise StepFailed(Step.VERIFY, "node not healthy after the kubelet restart: " + "; ".join(health.problems))
        change_set = self._change_set()
        argv = await self._kubelet_cmdline()
        problems = cmdline_problems(
            argv, expected=change_set.expected_kubelet_args, forbidden=change_set.forbidden_kubelet_args
        )
        if change_set.expected_kubelet_config:
            live = await self.cluster.kubelet_config(self.node)
            problems += config_problems(live, expected=change_set.expected_kubelet_config)
        if problems:
            raise StepFailed(Step.VERIFY, "; ".join(problems))
        problems, streaming = await self._streaming_check(change_set)
        if problems:
            raise StepFailed(Step.VERIFY, "; ".join(problems), {"streaming": streaming})
        # A hardened pod is admitted, runs, and is on the pod network. Before the sandbox check: when
        # cri-dockerd lost its network plugin the kubelet keeps replacing address-less sandboxes, and
        # the canary names that cause where the sandbox check would only name the pods.
        canary = await self._canary()
        if not canary.ok:
            raise StepFailed(Step.VERIFY, "canary: " + canary.verdict.message, {"canary": canary.detail})
        missing = await self._missing_sandboxes()
        if missing:
            message = "cri-dockerd does not list running pod(s): " + ", ".join(missing)
            raise StepFailed(Step.VERIFY, message, {"canary": canary.detail})
        return {"kubelet_args": kubelet_args(argv), "streaming": streaming, "canary": canary.detail}

    async def _uncordon(self) -> dict[str, Any]:
        uncordoned = await self.cluster.uncordon_if_ours(self.node)
        return {"uncordoned": uncordoned}

    # -- failure and rollback --------------------------------------------------------------------

    async def _after_failure(self, step: Step, message: str) -> NodeOutcome:
        await self.cluster.event(self.node, reason="ShimshiftFailed", message=f"{step}: {message}", warning=True)
        if step in {Step.INSTALL, Step.PREFLIGHT}:
            return NodeOutcome(self.node, NodeStatus.REFUSED, message, str(step))
        if not changes_configuration(step):
            # Nothing on the node changed: give the node back to the scheduler if we took it.
            await self.cluster.uncordon_if_ours(self.node)
            return NodeOutcome(self.node, NodeStatus.FAILED, message, str(step))
        if not self.settings.rollback_on_failure:
            return NodeOutcome(self.node, NodeStatus.FAILED, f"{message} (left as is: --no-rollback)", str(step))
        return await self._finish_rollback(message, str(step))

    async def _finish_rollback(self, message: str, failed_step: str | None = None) -> NodeOutcome:
        try:
            await self.rollback()
        except StepFailed as error:
            return NodeOutcome(
                self.node, NodeStatus.FAILED, f"{message}; rollback failed: {error.message}", failed_step
            )
        return NodeOutcome(self.node, NodeStatus.ROLLED_BACK, message, failed_step)

    async def rollback(self) -> None:
        """Restore files and annotation, restart, prove the dockershim state, uncordon if we cordoned."""
        change_set = self._change_set()
        steps: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
            (f"{ROLLBACK_PREFIX}restore-config", self._restore_config),
            (f"{ROLLBACK_PREFIX}restore-annotation", self._restore_annotation),
            (f"{ROLLBACK_PREFIX}restart-cri-dockerd", self._rollback_restart_cri_dockerd),
            (f"{ROLLBACK_PREFIX}restart-kubelet", self._rollback_restart_kubelet),
            (f"{ROLLBACK_PREFIX}verify", self._rollback_verify),
            (f"{ROLLBACK_PREFIX}uncordon", self._uncordon),
        ]
        if change_set.is_noop:
            return
        # A resumed run finishes an interrupted rollback from where it stopped: restarting the kubelet of
        # a node already proven back on dockershim again would only disturb its pods.
        done = set(self.journal.finished_steps(self.node))
        for name, handler in steps:
            if name in done:
                continue
            self._record(name, "started")
            try:
                detail = await handler()
            except Exception as error:  # reported as the rollback step that failed
                text = _describe(error)
                self._record(name, "failed", {"message": text})
                raise StepFailed(name, text) from error
            self._record(name, "finished", detail)
        await self.cluster.event(self.node, reason="ShimshiftRolledBack", message="back on dockershim", warning=True)

    async def _restore_config(self) -> dict[str, Any]:
        return {"restored": await self._apply_edits(self._change_set().edits, reverse=True)}

    async def _restore_annotation(self) -> dict[str, Any]:
        change_set = self._change_set()
        await self.cluster.set_cri_socket(self.node, change_set.cri_socket_before)
        return {"value": change_set.cri_socket_before}

    async def _rollback_restart_cri_dockerd(self) -> dict[str, Any]:
        if not self._change_set().cri_dockerd_config_changed:
            return {"restarted": False}
        await self.access.run(["systemctl", "daemon-reload"])
        # cri-dockerd stays installed and running on its old settings; only the kubelet leaves it.
        await self.access.run(["systemctl", "try-restart", "cri-docker.service"], check=False)
        return {"restarted": True}

    async def _rollback_restart_kubelet(self) -> dict[str, Any]:
        started = await self._restart_kubelet_now()
        return {"restarted_at": started.isoformat()}

    async def _rollback_verify(self) -> dict[str, Any]:
        detail = self.journal.step_detail(self.node, f"{ROLLBACK_PREFIX}restart-kubelet") or {}
        since = datetime.fromisoformat(detail["restarted_at"]) if "restarted_at" in detail else self.clock()
        health = await self.cluster.wait_healthy(self.node, since=since, timeout=self.settings.health_timeout)
        if not health.healthy:
            raise StepFailed("rollback:verify", "node not healthy on dockershim: " + "; ".join(health.problems))
        args = kubelet_args(await self._kubelet_cmdline())
        if (
            args.get("--container-runtime") == "remote"
            or args.get("--container-runtime-endpoint") == CRI_DOCKERD_ENDPOINT
        ):
            raise StepFailed("rollback:verify", "the kubelet still points at cri-dockerd after the rollback")
        return {"kubelet_args": args}

    # -- helpers ---------------------------------------------------------------------------------

    def _change_set(self) -> ChangeSet:
        detail = self.journal.step_detail(self.node, Step.PREFLIGHT)
        if detail is None or "change_set" not in detail:
            raise Refusal(
                "no migration plan is recorded for this node",
                hint="run `shimshift migrate` for it first; rollback works from the recorded plan",
                node=self.node,
            )
        return ChangeSet.from_record(detail["change_set"])

    async def _apply_edits(self, edits: tuple[FileEdit, ...], *, reverse: bool) -> list[str]:
        """Bring each file from one side of its edit to the other; refuse files someone else changed.

        Idempotent: a file already on the target side is left alone, so a resumed run that died
        between two renames finishes the job without rewriting what is done.
        """
        changed = []
        for edit in edits:
            source, target = (edit.after, edit.before) if reverse else (edit.before, edit.after)
            current = await self.access.read_file(edit.path)
            if current == target:
                continue
            if current != source:
                raise Refusal(
                    "the file changed since shimshift planned this node",
                    hint="compare it with the newest .shimshift-*.bak beside it and re-run the plan",
                    file=edit.path,
                    node=self.node,
                )
            if target is None:
                await self.access.remove_file(edit.path)
            else:
                # A new drop-in's directory (cri-docker.service.d) is created by the atomic write.
                await self.access.write_file_atomic(edit.path, target)
            changed.append(edit.path)
        return changed

    async def _restart_kubelet_now(self) -> datetime:
        await self.cluster.snapshot(self.node)
        await self.access.run(["systemctl", "daemon-reload"])
        await self.access.run(["systemctl", "restart", "kubelet"])
        # Taken once `systemctl restart` returned, i.e. the old kubelet is gone: a heartbeat newer than
        # this can only come from the new one.
        return self.clock()

    async def _kubelet_cmdline(self) -> list[str]:
        return await self._main_process_cmdline("kubelet.service", Step.VERIFY)

    async def _main_pid(self, unit: str, step: Step) -> int:
        result = await self.access.run(["systemctl", "show", "--property", "MainPID", "--value", unit])
        pid = result.stdout.decode().strip()
        if not pid.isdigit() or pid == "0":
            raise StepFailed(step, f"{unit} is not running (systemctl show -p MainPID {unit} is 0)")
        return int(pid)

    async def _main_process_cmdline(self, unit: str, step: Step) -> list[str]:
        pid = await self._main_pid(unit, step)
        raw = await self.access.read_file(f"/proc/{pid}/cmdline")
        if raw is None:
            raise StepFailed(step, f"{unit} (pid {pid}) exited while being checked")
        return split_cmdline(raw)

    async def _streaming_check(self, change_set: ChangeSet) -> tuple[list[str], dict[str, Any]]:
        """cri-dockerd's TCP listeners (its streaming server), and what is wrong with them.

        Only a plan that bound the streaming server to loopback is held to it: an address the operator
        gave cri-dockerd before the migration is theirs to keep (reference §7.2).
        """
        pid = await self._main_pid("cri-docker.service", Step.VERIFY)
        listening = await self.access.run(["ss", "-Hltnp"])
        listeners = parse_ss(listening.stdout.decode("utf-8", "replace"))
        ours = [item.endpoint for item in owned_by(listeners, pid=pid)]
        problems = streaming_problems(listeners, pid=pid)
        if problems and STREAMING_FLAG not in change_set.cri_dockerd_args:
            return [], {"cri_dockerd_listeners": ours, "note": f"{STREAMING_FLAG} is the operator's: " + problems[0]}
        return problems, {"cri_dockerd_listeners": ours}

    async def _canary(self) -> CanaryResult:
        settings = self.settings.canary
        kubelet_version = await self.cluster.kubelet_version(self.node)
        preflight = self.journal.step_detail(self.node, Step.PREFLIGHT) or {}
        running = kubelet_args(await self._main_process_cmdline("cri-docker.service", Step.VERIFY))
        image = canary_image(
            override=settings.image,
            cri_dockerd_args=running,
            default=default_pause_image(preflight.get("cri_dockerd_version")),
        )
        accepted = settings.accept_refused_hardened_pods or settings.no_hardened_workloads
        omit = omits_no_new_privs(kubelet_version, accepted=accepted)
        spec = CanarySpec(self.node, settings.namespace, image, self.settings.run_id or "verify", omit)
        result = await run_canary(self.cluster, self.access, spec=spec, clock=self.clock, timeout=settings.timeout)
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

    async def _remove_leftover_canary(self) -> None:
        """A run killed inside verify may have left its canary; the verify that reruns deletes it, a
        resumed rollback does it here."""
        finished = set(self.journal.finished_steps(self.node))
        if Step.VERIFY not in self.journal.recorded_steps(self.node) or Step.VERIFY in finished:
            return
        try:
            await remove_canary(self.cluster, node=self.node, namespace=self.settings.canary.namespace)
        except Exception as error:  # the rollback matters more than a leftover pod; say so and go on
            self._emit(Step.VERIFY, "progress", f"could not delete a leftover canary pod: {_describe(error)}")

    async def _cri_problems(self) -> list[str]:
        async with self.access.open_unix_socket_forward(CRI_DOCKERD_SOCKET) as local:
            report = await self.cri.check(local)
        problems = list(report.problems)
        if not report.runtime_ready:
            problems.append(f"cri-dockerd on {CRI_DOCKERD_SOCKET} reports RuntimeReady=false")
        return problems

    async def _missing_sandboxes(self) -> list[str]:
        pods = await self.cluster.running_pods(self.node)
        async with self.access.open_unix_socket_forward(CRI_DOCKERD_SOCKET) as local:
            sandboxes = await self.cri.ready_sandboxes(local)
        return [f"{pod.namespace}/{pod.name}" for pod in missing_sandboxes(pods, sandboxes)]

    async def _cri_dockerd_binary(self) -> str | None:
        shown = await self.access.run(
            ["systemctl", "show", "--property", "ExecStart", "--value", "cri-docker.service"], check=False
        )
        for part in shown.stdout.decode().split(";"):
            key, _, value = part.strip(" {}\n").partition("=")
            if key.strip() == "path" and value.strip():
                return value.strip()
        return None

    def _record(self, step: Step | str, phase: str, detail: Mapping[str, Any] | None = None) -> None:
        self.journal.record(node=self.node, step=str(step), phase=phase, detail=detail)
        message = str(detail.get("message", "")) if detail else ""
        self._emit(step, phase, message)

    def _emit(self, step: Step | str, phase: str, message: str) -> None:
        if self.on_event is not None:
            self.on_event(StepEvent(self.node, str(step), phase, message, self.clock()))


def _describe(error: Exception) -> str:
    if isinstance(error, StepFailed):
        return error.message
    if isinstance(error, Refusal | Unavailable):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _tail(data: bytes, limit: int = 300) -> str:
    return data.decode("utf-8", "replace").strip()[-limit:]


def _parse_cri_dockerd_version(output: bytes) -> str | None:
    # `cri-dockerd --version` prints e.g. "cri-dockerd 0.3.21 (abc1234)".
    for word in output.decode("utf-8", "replace").split():
        candidate = word.lstrip("v")
        if candidate[:1].isdigit() and candidate.count(".") >= 2:
            return candidate
    return None


__all__ = [
    "CRI_DOCKERD_ENDPOINT",
    "CRI_DOCKERD_SOCKET",
    "MIGRATION_STEPS",
    "MigrationSettings",
    "NodeMigration",
    "NodeOutcome",
    "NodeStatus",
    "PreflightFacts",
]
