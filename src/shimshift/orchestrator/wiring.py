"""The concrete ports: the Kubernetes adapters, the CRI client, the journal and the planner, bound
to the shapes the step machine asks for. Nothing here decides anything."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shimshift.adapters.cri.client import CriClient, CriError
from shimshift.adapters.journal import Journal, StepPhase
from shimshift.adapters.kube import health, nodes, pods
from shimshift.adapters.kube.cache import ClusterCache
from shimshift.adapters.kube.client import ApiFailure, raw_request
from shimshift.adapters.kube.drain import drain_node, plan_drain
from shimshift.adapters.kube.drain_budgets import budgets_would_refuse
from shimshift.adapters.kube.drain_pods import list_node_pods
from shimshift.adapters.kube.events import emit_node_event
from shimshift.adapters.kube.evictions import DrainEvent, DrainEventKind, eviction_method
from shimshift.adapters.kube.exec import exec_in_pod
from shimshift.adapters.kube.kubelet_configmap import read_kubelet_configmap, write_kubelet_configmap
from shimshift.core import findings
from shimshift.core.actions import CriReport, DrainOutcome, ExecOutcome, HealthOutcome
from shimshift.core.drain import DrainOptions, drain_problems
from shimshift.core.findings import Subject, messages
from shimshift.core.health_gate import NodeBaseline
from shimshift.core.procedures.migration import CRI_CONDITION_FALSE, CRI_UNREACHABLE, plan_from_facts
from shimshift.core.steps import PodRef, SandboxRef
from shimshift.core.versions import KubernetesVersion
from shimshift.core.wellknown import MIRROR_POD_ANNOTATION

if TYPE_CHECKING:
    from lightkube import AsyncClient

@dataclass
class KubeCluster:
    """ClusterPort over the lightkube adapters of shimshift.adapters.kube."""

    client: AsyncClient
    drain_options: DrainOptions
    owner: str = "shimshift"
    baselines: dict[str, NodeBaseline] = field(default_factory=dict)
    cache: ClusterCache | None = None  # a fleet run's watch of pods and PDBs
    _method: str | None = None  # the eviction method, asked of discovery once per run

    async def kubelet_version(self, node: str) -> str:
        body = await nodes.get_node(self.client, node)
        return str(body.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""))

    async def cordon(self, node: str) -> bool:
        return await nodes.cordon(self.client, node, owner=self.owner)

    async def uncordon_if_ours(self, node: str) -> bool:
        return await nodes.uncordon_if_ours(self.client, node, owner=self.owner)

    async def drain(self, node: str, *, on_progress: Callable[[str], None] | None = None) -> DrainOutcome:
        def report(event: DrainEvent) -> None:
            if on_progress is not None and event.kind is not DrainEventKind.GONE:
                text = f"{event.kind} {event.pod or ''}".strip()
                if event.pdb:
                    text += f" (PodDisruptionBudget {event.pdb})"
                on_progress(text + (f": {event.message}" if event.message else ""))

        result = await drain_node(
            self.client,
            node,
            self.drain_options,
            on_event=report,
            cordon_first=False,
            owner=self.owner,
            method=await self._eviction_method(),
            cache=self.cache,
        )
        problems = drain_problems(
            node,
            refused=result.refused,
            blocked=result.blocked,
            errors=result.errors,
            pending=result.pending,
            drained=result.drained,
        )
        return DrainOutcome(
            drained=result.drained,
            evicted=tuple(result.evict),
            blocked=tuple(item.pod for item in result.blocked),
            refused=tuple(item.pod for item in result.refused),
            problems=tuple(problems),
            message=messages(problems),
        )

    async def drain_would_block(self, node: str, budgets: frozenset[str]) -> bool:
        if self.cache is None:
            result = await plan_drain(self.client, node, self.drain_options)
            return bool(result.blocked)
        probes = [pod for key, pod in self.cache.budgets.one_pod_per_budget(node).items() if key in budgets]
        return await budgets_would_refuse(self.client, probes, method=await self._eviction_method())

    async def _eviction_method(self) -> str:
        if self._method is None:
            self._method = await eviction_method(self.client, self.drain_options)
        return self._method

    async def get_cri_socket(self, node: str) -> str | None:
        return await nodes.get_cri_socket(self.client, node)

    async def set_cri_socket(self, node: str, value: str | None) -> str | None:
        if value is None:
            # Back to "no annotation": the value set_cri_socket recorded before our first change.
            previous = await nodes.get_cri_socket(self.client, node)
            await nodes.restore_cri_socket(self.client, node, None)
            return previous
        return await nodes.set_cri_socket(self.client, node, value)

    async def snapshot(self, node: str) -> None:
        self.baselines[node] = await health.snapshot_node(self.client, node)

    async def wait_healthy(self, node: str, *, since: datetime, timeout: float) -> HealthOutcome:
        report = await health.wait_node_healthy(
            self.client, node, since=since, timeout=timeout, baseline=self.baselines.get(node)
        )
        return HealthOutcome(report.healthy, tuple(report.missing))

    async def wait_control_plane(self, node: str, *, timeout: float) -> tuple[str, ...]:
        return await health.wait_control_plane(self.client, node, timeout=timeout)

    async def running_pods(self, node: str) -> list[PodRef]:
        pods = await list_node_pods(self.client, node, DrainOptions(), from_watch_cache=True)
        refs = []
        for pod in pods:
            if pod.get("status", {}).get("phase") != "Running":
                continue
            metadata = pod["metadata"]
            annotations = metadata.get("annotations") or {}
            refs.append(
                PodRef(
                    metadata["namespace"], metadata["name"], metadata["uid"], annotations.get(MIRROR_POD_ANNOTATION)
                )
            )
        return refs

    async def kubelet_config(self, node: str) -> Mapping[str, object]:
        response = await raw_request(self.client, "GET", f"/api/v1/nodes/{node}/proxy/configz")
        if response.status != 200:
            raise ApiFailure(f"GET /api/v1/nodes/{node}/proxy/configz", response)
        config = response.body.get("kubeletconfig", {}) if isinstance(response.body, dict) else {}
        return dict(config)

    async def pod_cidrs(self, node: str) -> tuple[str, ...]:
        spec = (await nodes.get_node(self.client, node)).get("spec") or {}
        cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
        return tuple(str(cidr) for cidr in cidrs)

    async def apiserver_versions(self) -> dict[str, KubernetesVersion]:
        return await pods.apiserver_versions(self.client)

    async def cluster_kubelet_config(self) -> str | None:
        return await read_kubelet_configmap(self.client)

    async def set_cluster_kubelet_config(self, text: str) -> None:
        await write_kubelet_configmap(self.client, text)

    async def create_pod(self, namespace: str, manifest: Mapping[str, Any]) -> None:
        await pods.create_pod(self.client, namespace, dict(manifest))

    async def wait_pod(
        self,
        namespace: str,
        name: str,
        *,
        until: Callable[[Mapping[str, Any] | None], bool],
        timeout: float,
    ) -> Mapping[str, Any] | None:
        return await pods.wait_pod(self.client, namespace, name, until=until, timeout=timeout)

    async def delete_pod(self, namespace: str, name: str, *, timeout: float) -> bool:
        return await pods.delete_pod(self.client, namespace, name, timeout=timeout)

    async def exec_in_pod(
        self, namespace: str, name: str, container: str, command: Sequence[str], *, timeout: float
    ) -> ExecOutcome:
        return await exec_in_pod(self.client, namespace, name, container, command, timeout=timeout)

    async def event(self, node: str, *, reason: str, message: str, warning: bool = False) -> None:
        # An Event is a record, not a step: losing one must not fail the migration.
        with contextlib.suppress(Exception):
            await emit_node_event(
                self.client, node, reason=reason, message=message, type="Warning" if warning else "Normal"
            )


class GrpcCri:
    """CriPort over the generated CRI v1 stubs."""

    def __init__(self, *, node: str, remote_socket: str, timeout: float = 10.0) -> None:
        self.node = node
        self.remote_socket = remote_socket
        self.timeout = timeout

    async def check(self, socket_path: str) -> CriReport:
        try:
            async with CriClient(
                socket_path, node=self.node, remote_socket=self.remote_socket, timeout=self.timeout
            ) as cri:
                version = await cri.version()
                status = await cri.status()
        except CriError as error:
            unreachable = findings.error(CRI_UNREACHABLE, str(error), subject=Subject.of_node(self.node))
            return CriReport("", "", "", runtime_ready=False, network_ready=False, problems=(unreachable,))
        problems = tuple(
            findings.error(
                CRI_CONDITION_FALSE,
                f"cri-dockerd reports {condition.type}=false ({condition.reason}: {condition.message})",
                subject=Subject.of_node(self.node),
            )
            for condition in status.conditions
            if not condition.status and condition.type in {"RuntimeReady", "NetworkReady"}
        )
        return CriReport(
            version.runtime_name,
            version.runtime_version,
            version.runtime_api_version,
            runtime_ready=status.runtime_ready,
            network_ready=status.network_ready,
            problems=problems,
        )

    async def ready_sandboxes(self, socket_path: str) -> list[SandboxRef]:
        async with CriClient(
            socket_path, node=self.node, remote_socket=self.remote_socket, timeout=self.timeout
        ) as cri:
            sandboxes = await cri.list_pod_sandboxes(ready_only=True)
        return [SandboxRef(item.namespace, item.name, item.uid) for item in sandboxes]


@dataclass
class RunJournal:
    """JournalPort: the shared Journal bound to one run id."""

    journal: Journal
    run_id: str

    def record(self, *, node: str, step: str, phase: str, detail: Mapping[str, Any] | None = None) -> None:
        self.journal.record(self.run_id, node, step, StepPhase(phase), dict(detail or {}))

    def finished_steps(self, node: str) -> list[str]:
        timeline = self.journal.timeline(self.run_id, node)
        return [record.step for record in timeline if record.phase is StepPhase.FINISHED]

    def recorded_steps(self, node: str) -> list[str]:
        return [record.step for record in self.journal.timeline(self.run_id, node)]

    def step_detail(self, node: str, step: str) -> Mapping[str, Any] | None:
        found = None
        for record in self.journal.timeline(self.run_id, node):
            if record.step == step and record.phase is StepPhase.FINISHED:
                found = record.detail
        return found


__all__ = ["GrpcCri", "KubeCluster", "RunJournal", "plan_from_facts"]
