"""Findings as words: one line each for text output, a list of objects for JSON, and the migrate guard's screen.

Pure (data in, text out) so tests compare strings; the commands print.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shimshift.core.hardened_pods import ACCEPT_FLAG

if TYPE_CHECKING:
    from collections.abc import Iterable

    from shimshift.core.findings import Finding
    from shimshift.core.hardened_pods import GuardDecision, HardenedWorkload

LIST_CAP = 10
WIDTH = 110


def findings_json(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    return [finding.to_json() for finding in findings]


def findings_text(findings: Iterable[Finding]) -> list[str]:
    return [str(finding) for finding in findings]


def plan_warnings_text(findings: Iterable[Finding]) -> list[str]:
    """A node plan's warnings under the plan that names the node: severity and words, one line each."""
    return [f"{finding.severity.value}: {finding.text}" for finding in findings]


def workload_line(workload: HardenedWorkload) -> str:
    pods = f"{workload.pods} pod(s) now" if workload.pods else "no pod now"
    source = "template" if workload.template else "existing pods only"
    return f"{workload.label()}: {pods} ({source}); {workload.settings()}"


def capped(lines: list[str], *, more: str) -> list[str]:
    if len(lines) <= LIST_CAP:
        return lines
    return [*lines[:LIST_CAP], f"... and {len(lines) - LIST_CAP} more ({more})"]


def _wrapped(prefix: str, items: list[str]) -> list[str]:
    """``prefix`` then the items comma-separated, wrapped between items (never inside one)."""
    lines, current = [], prefix
    for index, item in enumerate(items):
        text = item + ("," if index < len(items) - 1 else "")
        if len(current) + len(text) > WIDTH and current.strip():
            lines.append(current.rstrip())
            current = "  "
        current += text + " "
    lines.append(current.rstrip())
    return lines


def guard_screen(decision: GuardDecision) -> str:
    """Why migrate refused, which nodes and workloads, and the ways on; fits one screen at any cluster size."""
    nodes = [f"{name} ({version or 'unknown version'})" for name, version in decision.refused_nodes]
    node_items = nodes[:LIST_CAP] + ([f"and {len(nodes) - LIST_CAP} more"] if len(nodes) > LIST_CAP else [])
    workloads = capped(
        [f"  {workload_line(w)}" for w in decision.workloads], more="shimshift audit -o json lists them all"
    )
    lines = [
        f"shimshift: refused, nothing changed: {len(decision.refused_nodes)} node(s) with a kubelet before 1.24",
        f"would refuse the pods of {len(decision.workloads)} hardened workload(s) once on cri-dockerd.",
        "",
        "What would break: a kubelet before 1.24 on cri-dockerd refuses every new pod whose containers set",
        "securityContext.allowPrivilegeEscalation: false (or a procMount other than Default): the pod stays",
        'Pending, reason NoNewPrivs, "Cannot enforce NoNewPrivs: illegal version string "v1"" (the kubelet',
        "asks a docker runtime for its API version; cri-dockerd answers the CRI version). Running pods are not",
        "checked again, but the drain of each node recreates them, and a PodDisruptionBudget over pods that",
        "cannot start can then block the drains of the nodes after it.",
        "",
        *_wrapped("Nodes refused (kubelet < 1.24): ", node_items),
        f"Hardened workloads ({len(decision.workloads)}):",
        *workloads,
        "",
        "Ways on:",
        "  1. upgrade these kubelets to 1.24 or later in the same maintenance window as the migration",
        "     (kubelet 1.24 has no such check; a later `shimshift upgrade` command does it), or",
        "  2. accept that those pods cannot start on migrated nodes until then: run the same command with",
        f"     {ACCEPT_FLAG} (recorded in the journal and the report).",
    ]
    return "\n".join(lines)
