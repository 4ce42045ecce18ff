"""`plan --to`'s journey as words: the schedule step by step, the drains per node, the findings, the
binaries. Pure (data in, lines out) so tests compare text; the command prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shimshift.cli.findings import findings_text
from shimshift.core.journey.schedule import ControlPlaneStep, Journey
from shimshift.core.journey.sequence import KubeadmUpgrade, NodeDrain, journey_sequence
from shimshift.core.journey.stages import KUBEADM_PARALLEL, StageKind, concurrent, journey_stages
from shimshift.core.versions import KubernetesVersion

if TYPE_CHECKING:
    from shimshift.orchestrator.journey_plan import JourneyPlan


#: What the schedule's control-plane steps mean on every node (core/journey/sequence.py), said once.
KUBEADM_EVERYWHERE = (
    "kubeadm runs on every node at every step: after the apply, `kubeadm upgrade node` on the other "
    "control-plane nodes one at a time, then on the workers too, together and without a drain (it restarts "
    "nothing there); a dockershim node's first drain runs its kubeadm of that release after the migration"
)


#: What the drains' ``[together N]`` marks mean (core/journey/stages.py), said once.
TOGETHER = (
    "drains marked [together N] may run at once: control-plane nodes first, one at a time, then workers within "
    "--max-unavailable, a node whose drain a PDB would block passed over; the kubeadm steps run between them"
)


def _worker_kubeadm_stages(journey: Journey) -> dict[KubernetesVersion, list[str]]:
    """The workers whose bare ``kubeadm upgrade node`` of each release runs in that step's kubeadm stage
    (core/journey/stages.py); the others' runs inside their migration drain."""
    found: dict[KubernetesVersion, list[str]] = {}
    for stage in journey_stages(journey_sequence(journey)):
        if stage.kind is StageKind.KUBEADM:
            for op in stage.operations:
                if isinstance(op, KubeadmUpgrade):
                    found.setdefault(op.release, []).append(op.node)
    return found


def _kubeadm_nodes(step: ControlPlaneStep, workers: list[str], *, total: int, parallel: int) -> str:
    """Where the step's ``kubeadm upgrade node`` runs: the other control-plane nodes one at a time, then the
    workers of its kubeadm stage together (all of them named by count, to keep a 300-node plan readable)."""
    parts = [", ".join(step.upgrade_node_on)] if step.upgrade_node_on else []
    if len(workers) > 1:
        who = f"all {total} workers" if len(workers) == total else ", ".join(workers)
        parts.append(f"{'then ' if parts else ''}{who} [together, at most {parallel} at once]")
    elif workers:
        parts.append(f"{'then ' if parts else ''}{workers[0]}")
    return "; kubeadm upgrade node on " + ", ".join(parts) if parts else ""


def _together_marks(journey: Journey) -> dict[tuple[str, int], str]:
    """Each drain's mark in the schedule, by (node, drain number): ``[together N]`` for the drains of a stage
    that holds more than one, ``[alone: ...]`` for a control-plane node's drain that runs its kubeadm step."""
    marks: dict[tuple[str, int], str] = {}
    group = 0
    for stage in journey_stages(journey_sequence(journey)):
        drains = [op for op in stage.operations if isinstance(op, NodeDrain)]
        if stage.drains and len(drains) > 1:
            group += 1
        for op in drains:
            if op.kubeadm is not None and not concurrent(op):
                marks[(op.node, op.number)] = f" [alone: it runs kubeadm upgrade {op.kubeadm.mode} on the node]"
            elif len(drains) > 1:
                marks[(op.node, op.number)] = f" [together {group}]"
    return marks


def journey_lines(journey: Journey, *, kubeadm_parallel: int = KUBEADM_PARALLEL) -> list[str]:
    """The schedule: which node, which drain, which releases, in the order they run, and which drains and
    which workers' kubeadm steps may run at once."""
    counts = journey.drain_counts()
    marks = _together_marks(journey)
    kubeadm_workers = _worker_kubeadm_stages(journey)
    total = sum(1 for node in journey.nodes if not node.control_plane)
    lines = [
        f"journey: control plane v{journey.start.control_plane} -> v{journey.target}, "
        f"skew rules: {journey.rules} ({len(journey.control_plane_steps())} control-plane step(s), "
        f"{sum(counts.values())} drain(s))",
        "drains per node: " + (", ".join(f"{name} {count}" for name, count in counts.items()) or "-"),
    ]
    if not journey.steps:
        return [*lines, "nothing to do: every node and the control plane are at the target"]
    for number, step in enumerate(journey.steps, start=1):
        if isinstance(step, ControlPlaneStep):
            force = " --force" if step.force else ""
            workers = kubeadm_workers.get(step.release, [])
            others = _kubeadm_nodes(step, workers, total=total, parallel=kubeadm_parallel)
            why = " (kubeadm refuses the kubelets left behind; the skew policy allows them)" if step.force else ""
            lines.append(
                f"{number:3}. control plane -> v{step.release}: kubeadm upgrade apply v{step.release}{force} "
                f"on {step.apply_on}{others}{why}"
            )
        else:
            role = "control-plane node" if step.control_plane else "worker"
            migrate = ", and from dockershim to cri-dockerd" if step.migrate else ""
            lines.append(
                f"{number:3}. drain {step.node} ({role}), its drain {step.number} of {counts[step.node]}: "
                f"kubelet v{step.from_release} -> v{step.to_release}{migrate}{marks.get((step.node, step.number), '')}"
            )
    if any("[together" in mark for mark in marks.values()):
        lines.append(TOGETHER)
    return lines


def journey_plan_text(plan: JourneyPlan, *, binaries_given: bool, kubeadm_parallel: int = KUBEADM_PARALLEL) -> str:
    lines = journey_lines(plan.journey, kubeadm_parallel=kubeadm_parallel)
    if plan.journey.control_plane_steps():
        lines.append(KUBEADM_EVERYWHERE)
    blocking = sum(1 for finding in plan.findings if finding.blocking)
    lines.append(f"findings: {len(plan.findings)}, {blocking} blocking (the run stops before its first change)")
    texts = findings_text(plan.findings)
    lines += [
        ("  blocking: " if finding.blocking else "  note: ") + text
        for finding, text in zip(plan.findings, texts, strict=True)
    ]
    if plan.binaries:
        lines.append("binaries checked: " + ", ".join(sorted(plan.binaries)))
    elif not binaries_given:
        lines.append("binaries: not given; `plan --to` checks them with --binaries DIR (a folder per release)")
    if plan.cri_dockerd is not None:
        given = plan.cri_dockerd
        lines.append(
            f"cri-dockerd: {given.source} reports {given.version} (sha256 {given.sha256[:12]}...); each node's first "
            "drain puts it in place where the node runs another version"
        )
    return "\n".join(lines)
