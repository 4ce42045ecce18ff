"""Unified diffs of whole-file contents, as `shimshift flags plan` and `shimshift plan` print them."""

from __future__ import annotations

import difflib


def file_diff(path: str, before: bytes | None, after: bytes | None) -> str:
    """A unified diff; None on either side is an absent file (shown as /dev/null)."""

    def lines(data: bytes | None) -> list[str]:
        if data is None:
            return []
        text = data.decode("utf-8", "backslashreplace").splitlines(keepends=True)
        if text and not text[-1].endswith("\n"):
            text[-1] += "\n\\ No newline at end of file\n"
        return text

    return "".join(
        difflib.unified_diff(
            lines(before),
            lines(after),
            fromfile="/dev/null" if before is None else f"a{path}",
            tofile="/dev/null" if after is None else f"b{path}",
        )
    )
