"""Node access: run commands and change files on one node, over SSH or locally.

One interface (`NodeAccess`), two implementations: `shimshift.adapters.ssh.SSHNodeAccess` and
`shimshift.adapters.local.LocalNodeAccess`. Both are built on a single primitive, running an argument
vector; every file operation is one argv-built command (a constant ``sh -c`` script over coreutils:
``stat``, ``cp``, ``mktemp``, ``dd``, ``chown``, ``chmod``, ``mv``, ``sync``, with every value passed as
a positional parameter), so the same code path serves root logins, ``sudo -n`` logins and the local
node, and no untrusted value is ever spliced into a shell string.

Atomic writes: the new content goes to a temporary file in the target's own directory (same file
system, so ``rename(2)`` is atomic), is fsync'd (``dd conv=fsync``), takes the original's owner and mode,
then replaces the target with ``mv -T``; the directory is fsync'd last. A crash or timeout at any point
leaves either the old file or the new one, never a half-written one; a leftover temporary file is named
``.<name>.shimshift-tmp.XXXXXX`` and is removed when the write fails in a way we see.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shlex
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from shimshift.core.node_commands import SUDO_SECURE_PATH, parse_found_programs

# Finding codes of the refusals of node access (docs/findings.md), raised in adapters/ssh.py and local.py.
SSH_CONFIG_INVALID = "ssh-config-invalid"
SSH_LOGIN_REFUSED = "ssh-login-refused"
SSH_CONNECT_FAILED = "ssh-connect-failed"
SSH_SESSION_FAILED = "ssh-session-failed"
SSH_HOST_KEY_MISMATCH = "ssh-host-key-mismatch"
SSH_HOST_KEY_UNKNOWN = "ssh-host-key-unknown"
SUDO_PROMPT = "sudo-needs-password"
LOCAL_ACCESS_NEEDS_ROOT = "local-access-needs-root"

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from contextlib import AbstractAsyncContextManager

_STDERR_TAIL = 800
DEFAULT_NEW_FILE_MODE = 0o644


@dataclass(frozen=True)
class CommandResult:
    """What a finished command returned. ``argv`` is the command as asked for (without any sudo prefix)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class NodeAccessError(Exception):
    """A command or transfer on a node did not do what was asked (the node is reachable)."""

    def __init__(self, node: str, message: str) -> None:
        super().__init__(f"node {node}: {message}")
        self.node = node


def _tail(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text if len(text) <= _STDERR_TAIL else "..." + text[-_STDERR_TAIL:]


def display(argv: Sequence[str]) -> str:
    """The command as an operator would type it (for messages only, never executed)."""
    return shlex.join(argv)


class CommandFailed(NodeAccessError):
    """A command exited non-zero while ``check=True``."""

    def __init__(self, node: str, result: CommandResult) -> None:
        tail = _tail(result.stderr) or "(no stderr)"
        super().__init__(
            node, f"`{display(result.argv)}` exited with status {result.returncode}; stderr: {tail}"
        )
        self.result = result


class CommandTimeout(NodeAccessError):
    """A command did not finish within its timeout; it was killed (local) or its channel closed (SSH)."""

    def __init__(self, node: str, argv: Sequence[str], timeout: float) -> None:
        super().__init__(node, f"`{display(argv)}` did not finish within {timeout:g}s")
        self.argv = tuple(argv)
        self.timeout = timeout


@runtime_checkable
class NodeAccess(Protocol):
    """Commands and files on one node. Paths are absolute paths on the node."""

    @property
    def node(self) -> str:
        """The node's name as used in messages (the SSH host alias, or the local host name)."""
        ...

    async def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 60,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv`` as root on the node; raise `CommandFailed` on a non-zero exit if ``check``."""
        ...

    async def read_file(self, path: str, *, max_bytes: int | None = None) -> bytes | None:
        """The file's content, or None if it does not exist.

        With ``max_bytes``, at most ``max_bytes + 1`` bytes are transferred: a longer result means the
        file is over the limit (the caller refuses it, see `shimshift.core.node_hygiene`).
        """
        ...

    async def write_file_atomic(
        self,
        path: str,
        data: bytes,
        *,
        backup: bool = True,
        mode: int | None = None,
        timeout: float = 60,
    ) -> str | None:
        """Replace (or create) ``path`` atomically; return the backup's path, or None if there was none.

        An existing file keeps its owner and mode (``mode`` is ignored); a new file gets ``mode``
        (default 0644) and root:root, and missing parent directories are created (0755). A symlink's
        target is written. ``timeout`` bounds the transfer.
        """
        ...

    async def remove_file(self, path: str, *, backup: bool = True) -> str | None:
        """Remove ``path`` (moved to a backup if ``backup``); return the backup's path or None."""
        ...

    def open_unix_socket_forward(self, remote_path: str) -> AbstractAsyncContextManager[str]:
        """``async with access.open_unix_socket_forward(p) as local:`` a local socket path reaching ``p``."""
        ...

    async def find_programs(self, programs: Sequence[str]) -> dict[str, str | None]:
        """Each program's full path on the node as sudo would find it (None: not found); runs without sudo."""
        ...

    async def close(self) -> None:
        """Release the connection; idempotent."""
        ...


def backup_path(path: str, now: datetime) -> str:
    """``<path>.shimshift-<UTC timestamp>.bak``; microseconds keep two writes in one second apart."""
    return f"{path}.shimshift-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}.bak"


class CommandNodeAccess(ABC):
    """File operations built from argv commands; subclasses supply `_exec` (and the socket forward)."""

    def __init__(self, node: str, *, clock: Callable[[], datetime] | None = None) -> None:
        self._node = node
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def node(self) -> str:
        return self._node

    @abstractmethod
    async def _exec(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None) -> CommandResult:
        """Run argv as root; return its result whatever the exit status; raise CommandTimeout."""

    @abstractmethod
    def open_unix_socket_forward(self, remote_path: str) -> AbstractAsyncContextManager[str]: ...

    @abstractmethod
    async def find_programs(self, programs: Sequence[str]) -> dict[str, str | None]: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 60,
        stdin: bytes | None = None,
    ) -> CommandResult:
        if not argv:
            raise ValueError("empty command")
        result = await self._exec(tuple(argv), timeout=timeout, stdin=stdin)
        if check and not result.ok:
            raise CommandFailed(self._node, result)
        return result

    async def read_file(self, path: str, *, max_bytes: int | None = None) -> bytes | None:
        _require_absolute(path)
        if max_bytes is None:
            result = await self.run(["cat", "--", path], check=False)
        else:
            # head -c stops at the limit on the node: a huge (or endless) file never crosses the wire.
            result = await self.run(["head", "-c", str(max_bytes + 1), "--", path], check=False)
        if result.ok:
            return result.stdout
        if not (await self.run(["test", "-e", path], check=False)).ok:
            return None
        raise CommandFailed(self._node, result)

    async def write_file_atomic(
        self,
        path: str,
        data: bytes,
        *,
        backup: bool = True,
        mode: int | None = None,
        timeout: float = 60,
    ) -> str | None:
        _require_absolute(path)
        saved = backup_path(path, self._clock()) if backup else ""
        new_mode = f"{DEFAULT_NEW_FILE_MODE if mode is None else mode:o}"
        digest = hashlib.sha256(data).hexdigest()
        result = await self.run(
            ["sh", "-c", _WRITE_SCRIPT, "shimshift-write", path, saved, new_mode, digest],
            stdin=data,
            timeout=timeout,
        )
        # The script prints the backup it made (the target may have been a symlink, so the name can differ).
        made = result.stdout.decode().strip()
        return made or None

    async def remove_file(self, path: str, *, backup: bool = True) -> str | None:
        _require_absolute(path)
        saved = backup_path(path, self._clock()) if backup else ""
        result = await self.run(["sh", "-c", _REMOVE_SCRIPT, "shimshift-remove", path, saved])
        return result.stdout.decode().strip() or None


# Why one constant script per file operation instead of a command per step: every command over SSH is a
# new session (a fork on the node), about 0.3 s on a loaded machine, and a write needs nine steps. The
# scripts are constants; every value reaches them as a positional parameter ("$1"...), never spliced
# into the script text, so nothing untrusted is ever parsed by the shell.
#
# write: $1 target, $2 backup path ("" = no backup), $3 octal mode for a new file, $4 sha256 of the new
# content, which arrives on stdin. The digest check matters: when a transfer is cut (timeout, dropped
# connection) dd sees a plain end of file, and only the digest tells a truncated file from a whole one.
# A symlink is followed, so the link's target is rewritten (e.g. units linked into /etc/systemd/system).
# A missing directory is created (0755), as a drop-in directory such as kubelet.service.d may not exist.
# The temporary file lives in the target's directory (rename(2) is atomic only within a file system),
# is fsync'd by dd conv=fsync, gets the original's owner and mode, then replaces the target with mv -T;
# the directory is fsync'd last so the rename itself is durable. Any failure or signal removes the
# temporary file and leaves the target untouched. Prints the backup path if one was made.
_WRITE_SCRIPT = r"""set -eu
target=$1 backup=$2 mode=$3 owner=0:0
if [ -L "$target" ]; then target=$(readlink -f -- "$target"); backup=${backup:+$target${2#"$1"}}; fi
dir=$(dirname -- "$target") name=$(basename -- "$target")
if [ ! -d "$dir" ]; then mkdir -p -m 755 -- "$dir"; fi
if [ -e "$target" ]; then
  if [ ! -f "$target" ]; then echo "shimshift: $target is not a regular file" >&2; exit 3; fi
  owner=$(stat -c %u:%g -- "$target") mode=$(stat -c %a -- "$target")
  if [ -n "$backup" ]; then cp -p -- "$target" "$backup"; sync -- "$backup"; fi
else
  backup=
fi
tmp=$(mktemp -p "$dir" -- ".$name.shimshift-tmp.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE
dd of="$tmp" bs=65536 conv=fsync status=none
got=$(sha256sum -- "$tmp") got=${got%% *}
if [ "$got" != "$4" ]; then echo "shimshift: incomplete transfer (sha256 $got, expected $4)" >&2; exit 4; fi
chown -- "$owner" "$tmp"
chmod -- "$mode" "$tmp"
mv -f -T -- "$tmp" "$target"
trap - EXIT
sync -- "$dir"
if [ -n "$backup" ]; then printf '%s
' "$backup"; fi
"""

# remove: $1 target, $2 backup path ("" = delete). The backup is the file itself, moved (keeps everything).
_REMOVE_SCRIPT = r"""set -eu
target=$1 backup=$2
if [ ! -e "$target" ] && [ ! -L "$target" ]; then exit 0; fi
if [ -n "$backup" ]; then mv -T -- "$target" "$backup"; else rm -f -- "$target"; fi
sync -- "$(dirname -- "$target")"
if [ -n "$backup" ]; then printf '%s
' "$backup"; fi
"""


# find: $1 the search path, then program names; prints one line per program, its path or nothing. A walk
# over the path rather than `command -v`, which names shell builtins (test) instead of their binaries.
FIND_PROGRAMS_SCRIPT = r"""set -f
search=$1; shift
for p; do
  found=
  IFS=:
  for d in $search; do
    if [ -f "$d/$p" ] && [ -x "$d/$p" ]; then found=$d/$p; break; fi
  done
  unset IFS
  printf '%s\n' "$found"
done
"""


def find_programs_here(programs: Sequence[str]) -> dict[str, str | None]:
    """`NodeAccess.find_programs` for this machine (same search path as the node-side script)."""
    lines = "\n".join(shutil.which(p, path=SUDO_SECURE_PATH) or "" for p in programs)
    return parse_found_programs(programs, lines)


def _require_absolute(path: str) -> None:
    if not path.startswith("/"):
        raise ValueError(f"node paths must be absolute, got {path!r}")


class NodePool:
    """One `NodeAccess` per node, opened on first use; at most ``max_concurrency`` opened at once.

    ``connect`` opens the access for a node name (e.g. ``lambda n: SSHNodeAccess.connect(n, ...)``).
    Concurrent `get` calls for one node share one connection attempt.
    """

    def __init__(self, connect: Callable[[str], Awaitable[NodeAccess]], *, max_concurrency: int = 20) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._connect = connect
        self._handshakes = asyncio.Semaphore(max_concurrency)
        self._open: dict[str, asyncio.Task[NodeAccess]] = {}

    async def get(self, node: str) -> NodeAccess:
        task = self._open.get(node)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(self._connect_bounded(node))
            self._open[node] = task
        return await asyncio.shield(task)

    async def _connect_bounded(self, node: str) -> NodeAccess:
        async with self._handshakes:
            return await self._connect(node)

    async def discard(self, node: str) -> None:
        """Close and forget the node's connection (e.g. after it broke); the next `get` reconnects."""
        task = self._open.pop(node, None)
        if task is not None:
            await _close_task(task)

    async def close(self) -> None:
        tasks, self._open = list(self._open.values()), {}
        for task in tasks:
            await _close_task(task)


async def _close_task(task: asyncio.Task[NodeAccess]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):
        await (await task).close()
