"""One currency for decisions: a :class:`Finding` says how bad, which rule, what, about whom, and what to do.

Readiness checks, the hardened-pod detection, the migrate guard and the plan's blocking reasons all produce
Findings; the CLI is the one place that turns them into text or JSON (``cli/findings.py``). Pure data.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable


class Severity(enum.Enum):
    ERROR = "error"  # blocks: the kubelet will not start, the workload will not run, the run is refused
    WARNING = "warning"  # works today, changes or breaks later, or was accepted by the operator


class SubjectKind(enum.StrEnum):
    NODE = "node"
    POD = "pod"
    WORKLOAD = "workload"
    FILE = "file"


@dataclass(frozen=True)
class Subject:
    """What a finding is about: a node, a pod (``ns/name``), a workload (``Kind ns/name``) or file:line."""

    kind: SubjectKind
    name: str
    line: int | None = None
    node: str | None = None  # the node a pod or a file is on, when known

    @classmethod
    def of_node(cls, name: str) -> Subject:
        return cls(SubjectKind.NODE, name)

    @classmethod
    def of_pod(cls, namespace: str, name: str, *, node: str | None = None) -> Subject:
        return cls(SubjectKind.POD, f"{namespace}/{name}", node=node or None)

    @classmethod
    def of_workload(cls, kind: str, namespace: str, name: str) -> Subject:
        return cls(SubjectKind.WORKLOAD, f"{kind} {namespace}/{name}")

    @classmethod
    def of_file(cls, path: str, line: int | None = None, *, node: str | None = None) -> Subject:
        return cls(SubjectKind.FILE, path, line, node)

    def __str__(self) -> str:
        if self.kind is SubjectKind.NODE:
            return f"node {self.name}"
        if self.kind is SubjectKind.FILE:
            where = self.name if self.line is None else f"{self.name}:{self.line}"
        elif self.kind is SubjectKind.POD:
            where = f"pod {self.name}"
        else:
            where = self.name
        return f"node {self.node}, {where}" if self.node else where

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": str(self.kind), "name": self.name}
        if self.line is not None:
            data["line"] = self.line
        if self.node is not None:
            data["node"] = self.node
        return data


@dataclass(frozen=True)
class Finding:
    """``code`` is a stable kebab-case rule name scripts can match; ``message`` and ``hint`` are for people.

    ``setting`` names the flag or field the finding is about (``--network-plugin``,
    ``allowPrivilegeEscalation``), when there is one.
    """

    severity: Severity
    code: str
    message: str
    subject: Subject | None = None
    hint: str = ""
    setting: str | None = None

    @property
    def blocking(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def file(self) -> str | None:
        return self.subject.name if self.subject is not None and self.subject.kind is SubjectKind.FILE else None

    @property
    def line(self) -> int | None:
        return self.subject.line if self.subject is not None else None

    def __str__(self) -> str:
        where = str(self.subject) if self.subject is not None else "-"
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}: {self.severity.value}: {self.message}{hint}"

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "subject": None if self.subject is None else self.subject.to_json(),
            "hint": self.hint,
            "setting": self.setting,
        }


def node_problems(node: str, problems: Iterable[str], *, code: str, hint: str = "") -> list[Finding]:
    """Problem strings about one node (preflight's and verify's in orchestrator/node_migration.py) as blocking
    findings, so every decision reaches the operator in the same shape."""
    return [Finding(Severity.ERROR, code, problem, Subject.of_node(node), hint) for problem in problems]


def count_blocking(findings: Iterable[Finding]) -> int:
    return sum(1 for finding in findings if finding.blocking)
