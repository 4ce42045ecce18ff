"""One currency for decisions: a :class:`Finding` says how bad, which rule, what, about whom, and what to do.

Readiness checks, the hardened-pod detection, the migrate guard, the plan's warnings, refusals
(:attr:`Refusal.finding <shimshift.core.errors.Refusal.finding>`), the health gate and every step's failure
produce Findings; the journal keeps them as :meth:`Finding.to_json` and reads them back with
:meth:`Finding.from_json`. The CLI turns them into text or JSON (``cli/findings.py``), the HTML report into
markup (``cli/report_html.py``). Every code is listed in docs/findings.md. Pure data.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# The code of a problem a journal of an older build kept as words only: it still resumes and reports.
RECORDED_MESSAGE = "recorded-message"


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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Subject:
        line = data.get("line")
        node = data.get("node")
        return cls(
            SubjectKind(str(data["kind"])),
            str(data["name"]),
            int(line) if line is not None else None,
            str(node) if node is not None else None,
        )


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

    @property
    def text(self) -> str:
        """The message and its hint, without the subject: for a context that already names it."""
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def about(self, subject: Subject | None) -> Finding:
        """This finding placed on ``subject`` when it has no subject of its own (a pure check does not know
        the node it runs for; the procedure does)."""
        return self if self.subject is not None or subject is None else replace(self, subject=subject)

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "subject": None if self.subject is None else self.subject.to_json(),
            "hint": self.hint,
            "setting": self.setting,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> Finding:
        """The inverse of :meth:`to_json`; a bare string (a problem as a journal of an older build kept it)
        becomes a blocking finding with the code ``recorded-message``."""
        if isinstance(data, str):
            return cls(Severity.ERROR, RECORDED_MESSAGE, data)
        subject = data.get("subject")
        setting = data.get("setting")
        return cls(
            Severity(str(data["severity"])),
            str(data["code"]),
            str(data["message"]),
            Subject.from_json(subject) if subject is not None else None,
            str(data.get("hint") or ""),
            str(setting) if setting is not None else None,
        )


def recorded_failure(detail: Mapping[str, Any]) -> list[Finding]:
    """The findings a step's "failed" journal record keeps; a record of an older build has its message only."""
    if isinstance(detail.get("findings"), list):
        return [Finding.from_json(item) for item in detail["findings"]]
    return [Finding.from_json(str(detail["message"]))] if detail.get("message") else []


def error(
    code: str, message: str, *, hint: str = "", subject: Subject | None = None, setting: str | None = None
) -> Finding:
    return Finding(Severity.ERROR, code, message, subject, hint, setting)


def warning(
    code: str, message: str, *, hint: str = "", subject: Subject | None = None, setting: str | None = None
) -> Finding:
    return Finding(Severity.WARNING, code, message, subject, hint, setting)


def messages(findings: Iterable[Finding]) -> str:
    """Findings as one line of their messages, the form a step failure has always had on screen."""
    return "; ".join(finding.message for finding in findings)


def count_blocking(findings: Iterable[Finding]) -> int:
    return sum(1 for finding in findings if finding.blocking)
