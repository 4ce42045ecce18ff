"""The one place a node's procedure touches the world: performs each core.actions action on the ports.

The procedure (core/procedures/) decides; this loop only performs and reports. An action that raises
is thrown back into the procedure at its ``yield``, where the step's failure handling decides what
follows, exactly as if the procedure had made the call itself. A cancelled run (Ctrl-C, SIGTERM, a lost
Lease) is thrown in too: no step's failure handling catches it (it is no ``Exception``), but a procedure's
``finally`` runs and the actions it yields are performed (the canary deletes its pod), then the
cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from shimshift.core import actions as act
from shimshift.core.actions import Action, Procedure
from shimshift.core.errors import Refusal
from shimshift.core.upgrade.binaries import BINARY_CHANGED
from shimshift.core.wellknown import CRI_DOCKERD_SOCKET
from shimshift.orchestrator.ports import ClusterPort, CriPort, JournalPort, NodePort, StepEvent
from shimshift.orchestrator.waits import announced

T = TypeVar("T")

@dataclass
class NodeExecutor:
    """Performs the actions of one node's procedures on its ports, and tells the operator."""

    node: str
    cluster: ClusterPort
    access: NodePort
    cri: CriPort
    journal: JournalPort
    on_event: Callable[[StepEvent], None] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # The run's copy on the cluster (orchestrator/cluster_run.py): written after each record, before the
    # step it opens runs, so a second machine that resumes knows at least what this one did.
    copy: Callable[[str], Awaitable[None]] | None = None
    _step: str = ""  # the running step, for the drain's progress lines

    async def drive(self, procedure: Procedure[T]) -> T:
        result: Any = None
        error: BaseException | None = None
        cancelled: asyncio.CancelledError | None = None
        while True:
            try:
                action = procedure.throw(error) if error is not None else procedure.send(result)
            except StopIteration as done:
                if cancelled is not None:  # the procedure cleaned up and returned: the run still stops
                    raise cancelled from None
                return done.value  # type: ignore[no-any-return]
            result, error = None, None
            try:
                result = await self.perform(action)
            except Exception as failure:  # the procedure decides what a failed action means
                error = failure
            except asyncio.CancelledError as stop:  # only its finally clauses see it (see the module's doc)
                error = cancelled = stop

    async def perform(self, action: Action) -> Any:
        node = self.node
        match action:
            case act.Run(argv, check, timeout):
                # `kubeadm upgrade apply`, `systemctl restart` of a slow unit: minutes, not seconds.
                async with self._announced(f"`{' '.join(argv[:3])}` on node {node}"):
                    return await self.access.run(list(argv), check=check, timeout=timeout)
            case act.ReadFile(path, max_bytes):
                return await self.access.read_file(path, max_bytes=max_bytes)
            case act.WriteFile(path, data):
                return await self.access.write_file_atomic(path, data)
            case act.RemoveFile(path):
                return await self.access.remove_file(path)
            case act.Upload(source, target, sha256, mode):
                return await self._upload(Path(source), target, sha256, mode)
            case act.CriCheck():
                async with self.access.open_unix_socket_forward(CRI_DOCKERD_SOCKET) as local:
                    return await self.cri.check(local)
            case act.CriSandboxes():
                async with self.access.open_unix_socket_forward(CRI_DOCKERD_SOCKET) as local:
                    return await self.cri.ready_sandboxes(local)
            case act.GetKubeletVersion():
                return await self.cluster.kubelet_version(node)
            case act.Cordon():
                return await self.cluster.cordon(node)
            case act.UncordonIfOurs():
                return await self.cluster.uncordon_if_ours(node)
            case act.Drain():
                step = self._step
                return await self.cluster.drain(node, on_progress=lambda text: self._emit(step, "progress", text))
            case act.GetCriSocket():
                return await self.cluster.get_cri_socket(node)
            case act.SetCriSocket(value):
                return await self.cluster.set_cri_socket(node, value)
            case act.Snapshot():
                return await self.cluster.snapshot(node)
            case act.WaitHealthy(since, timeout):
                what = f"node {node} to be healthy after the kubelet restart (up to {timeout:g} s)"
                async with self._announced(what):
                    return await self.cluster.wait_healthy(node, since=since, timeout=timeout)
            case act.WaitControlPlane(timeout):
                what = f"node {node}'s control-plane pods to be Ready and settled (up to {timeout:g} s)"
                async with self._announced(what):
                    return await self.cluster.wait_control_plane(node, timeout=timeout)
            case act.RunningPods():
                return await self.cluster.running_pods(node)
            case act.GetKubeletConfig():
                return await self.cluster.kubelet_config(node)
            case act.Event(reason, message, warning):
                return await self.cluster.event(node, reason=reason, message=message, warning=warning)
            case act.ApiserverVersions():
                return await self.cluster.apiserver_versions()
            case act.PodCidrs():
                return await self.cluster.pod_cidrs(node)
            case act.CreatePod(namespace, manifest):
                return await self.cluster.create_pod(namespace, manifest)
            case act.WaitPod(namespace, name, until, timeout, waiting_for):
                async with self._announced(waiting_for or f"pod {namespace}/{name} (up to {timeout:g} s)"):
                    return await self.cluster.wait_pod(namespace, name, until=until, timeout=timeout)
            case act.DeletePod(namespace, name, timeout):
                return await self.cluster.delete_pod(namespace, name, timeout=timeout)
            case act.ExecInPod(namespace, name, container, command, timeout):
                what = f"`{' '.join(command)}` in pod {namespace}/{name} to answer (up to {timeout:g} s)"
                async with self._announced(what):
                    return await self.cluster.exec_in_pod(namespace, name, container, command, timeout=timeout)
            case act.ReadClusterKubeletConfig():
                return await self.cluster.cluster_kubelet_config()
            case act.WriteClusterKubeletConfig(text):
                return await self.cluster.set_cluster_kubelet_config(text)
            case act.Record(step, phase, detail):
                self.journal.record(node=node, step=step, phase=phase, detail=detail)
                if self.copy is not None:
                    await self.copy(node)
                self._step = step if phase == "started" else ""
                self._emit(step, phase, str(detail.get("message", "")) if detail else "")
                return None
            case act.FinishedSteps():
                return self.journal.finished_steps(node)
            case act.RecordedSteps():
                return self.journal.recorded_steps(node)
            case act.StepDetail(step):
                return self.journal.step_detail(node, step)
            case act.Now():
                return self.clock()
            case act.Progress(step, message):
                self._emit(step, "progress", message)
                return None
        raise TypeError(f"no executor for {action!r}")  # a new action type without an arm here

    async def _upload(self, source: Path, target: str, sha256: str, mode: int) -> str:
        data = await asyncio.to_thread(source.read_bytes)
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise Refusal(
                f"{source} changed since it was checked (sha256 {digest[:12]}…, expected {sha256[:12]}…)",
                hint="check the directory given with --binaries and start again",
                file=str(source),
                node=self.node,
                code=BINARY_CHANGED,
            )
        await self.access.write_file_atomic(target, data, backup=False)
        await self.access.run(["chmod", f"{mode:o}", target])
        return digest

    def _announced(self, what: str) -> contextlib.AbstractAsyncContextManager[None]:
        step = self._step
        return announced(what, lambda text: self._emit(step, "progress", text))

    def _emit(self, step: str, phase: str, message: str) -> None:
        if self.on_event is not None:
            self.on_event(StepEvent(self.node, step, phase, message, self.clock()))


__all__ = ["NodeExecutor"]
