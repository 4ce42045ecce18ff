"""The one error type the tool raises for bad input or a refused action.

Every refusal says where (file and line, or node) and what to do, so the operator can act on the
message alone. Callers never change anything after one is raised.
"""

from __future__ import annotations

from dataclasses import dataclass


# Not frozen: Python sets __traceback__ (and __context__) on an exception as it propagates, which a
# frozen dataclass forbids, and a Refusal raised inside a `with` block would become FrozenInstanceError.
@dataclass(eq=False)
class Refusal(Exception):
    """Input or state that the tool will not act on.

    ``what`` says what is wrong, ``hint`` what to do about it; ``file``, ``line`` and ``node`` place it.
    """

    what: str
    hint: str = ""
    file: str | None = None
    line: int | None = None
    node: str | None = None

    def __str__(self) -> str:
        where = []
        if self.node:
            where.append(f"node {self.node}")
        if self.file:
            where.append(f"{self.file}:{self.line}" if self.line is not None else self.file)
        text = f"{', '.join(where)}: {self.what}" if where else self.what
        return f"{text} ({self.hint})" if self.hint else text
