"""The lab's one I/O edge towards Docker: the `docker` CLI on the host, argv lists only."""

from __future__ import annotations

import subprocess
import time
from typing import TYPE_CHECKING

from shimshift.lab.model import LABEL

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path


class LabError(RuntimeError):
    """The lab could not be built or inspected; the message says which step and shows Docker's words."""


def docker(
    *args: str,
    input: str | None = None,
    stdin_file: Path | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS...`; with check, a non-zero exit raises LabError naming the command."""
    cmd = ["docker", *args]
    try:
        if stdin_file is not None:
            with stdin_file.open("rb") as f:
                raw = subprocess.run(cmd, stdin=f, capture_output=True, timeout=timeout, check=False)
            proc = subprocess.CompletedProcess(
                raw.args,
                raw.returncode,
                raw.stdout.decode(errors="replace"),
                raw.stderr.decode(errors="replace"),
            )
        else:
            proc = subprocess.run(
                cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
            )
    except subprocess.TimeoutExpired as e:
        raise LabError(f"`{_show(cmd)}` did not finish within {timeout:.0f}s") from e
    except FileNotFoundError as e:
        raise LabError("the docker client is not installed (run scripts/setup.sh)") from e
    if check and proc.returncode != 0:
        raise LabError(f"`{_show(cmd)}` failed (exit {proc.returncode}): {_tail(proc.stderr or proc.stdout)}")
    return proc


def node_exec(
    node: str,
    argv: Sequence[str],
    *,
    input: str | None = None,
    stdin_file: Path | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run argv inside the node container (no shell unless argv asks for one)."""
    interactive = ["-i"] if input is not None or stdin_file is not None else []
    return docker(
        "exec", *interactive, node, *argv, input=input, stdin_file=stdin_file, timeout=timeout, check=check
    )


# The path travels as a positional parameter, never spliced into the script. The rename also replaces a
# binary that is running (writing over it in place fails with "Text file busy").
_WRITE_SCRIPT = 'set -e; mkdir -p "$(dirname "$1")"; cat > "$1.tmp"; chmod "$2" "$1.tmp"; mv -f "$1.tmp" "$1"'


def write_node_file(node: str, path: str, content: str, *, mode: str = "0644") -> None:
    """Write a file inside a node: a temporary file next to it, then rename (atomic for readers)."""
    node_exec(node, ["sh", "-c", _WRITE_SCRIPT, "sh", path, mode], input=content)


def copy_to_node(node: str, path: str, source: Path, *, mode: str = "0755") -> None:
    """Copy a local file (a binary) to ``path`` inside a node, atomically as :func:`write_node_file`."""
    node_exec(node, ["sh", "-c", _WRITE_SCRIPT, "sh", path, mode], stdin_file=source, timeout=120)


def wait_until(
    what: str,
    probe: Callable[[], str | None],
    *,
    timeout: float,
    interval: float = 1.0,
) -> None:
    """Call probe until it returns None (done); on timeout raise LabError with its last answer."""
    deadline = time.monotonic() + timeout
    last = "not checked yet"
    while True:
        try:
            answer = probe()
        except LabError as e:
            answer = str(e)
        if answer is None:
            return
        last = answer
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}: {last}")
        time.sleep(interval)


def _show(cmd: Sequence[str]) -> str:
    import shlex

    return shlex.join(cmd)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def labelled(kind: str, *extra: str) -> list[str]:
    """Names of lab-made objects: kind is 'ps', 'volume ls' or 'network ls'."""
    proc = docker(
        *kind.split(),
        *extra,
        "--filter",
        f"label={LABEL}=1",
        "--format",
        "{{.Name}}" if kind != "ps" else "{{.Names}}",
    )
    return [line for line in proc.stdout.split() if line]
