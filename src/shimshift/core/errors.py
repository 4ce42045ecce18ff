"""The one error type the tool raises for bad input or a refused action.

Every refusal says where (file and line, or node) and what to do, so the operator can act on the
message alone. Callers never change anything after one is raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from shimshift.core.findings import Finding, Severity, Subject

# A command-line option (or a setting it stands for) out of its range or not of its form.
OPTION_INVALID = "option-invalid"

# The code of a refusal whose rule has not named itself (docs/findings.md).
REFUSED = "refused"

T = TypeVar("T")


# Not frozen: Python sets __traceback__ (and __context__) on an exception as it propagates, which a
# frozen dataclass forbids, and a Refusal raised inside a `with` block would become FrozenInstanceError.
@dataclass(eq=False)
class Refusal(Exception):
    """Input or state that the tool will not act on.

    ``what`` says what is wrong, ``hint`` what to do about it; ``file``, ``line`` and ``node`` place it;
    ``code`` names the rule that refused (docs/findings.md). :attr:`finding` is the same refusal as the
    Finding the journal and the reports keep.
    """

    what: str
    hint: str = ""
    file: str | None = None
    line: int | None = None
    node: str | None = None
    code: str = REFUSED

    @property
    def subject(self) -> Subject | None:
        if self.file:
            return Subject.of_file(self.file, self.line, node=self.node)
        return Subject.of_node(self.node) if self.node else None

    @property
    def finding(self) -> Finding:
        return Finding(Severity.ERROR, self.code, self.what, self.subject, self.hint)

    def __str__(self) -> str:
        where = []
        if self.node:
            where.append(f"node {self.node}")
        if self.file:
            where.append(f"{self.file}:{self.line}" if self.line is not None else self.file)
        text = f"{', '.join(where)}: {self.what}" if where else self.what
        return f"{text} ({self.hint})" if self.hint else text


def with_node(node: str | None, fn: Callable[[], T]) -> T:
    """Run ``fn``; a Refusal it raises without a node is raised again about ``node`` (code, file, line
    and hint kept)."""
    try:
        return fn()
    except Refusal as exc:
        if node is not None and exc.node is None:
            raise replace(exc, node=node) from exc
        raise


@dataclass(eq=False)
class Unavailable(Exception):
    """Something shimshift talks to could not be used: the API server (unreachable, TLS, credentials,
    permissions) or a node's sshd. The call that failed changed nothing.

    ``peer`` names it as the operator would look it up: ``the API server https://10.0.0.1:6443`` or
    ``node w1 (10.0.0.5:22)``; ``what`` says what went wrong, ``hint`` what to do about it.
    """

    peer: str
    what: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.peer}: {self.what}"
        return f"{text} ({self.hint})" if self.hint else text
