"""Node access for shimshift running as root on the node itself (asyncio subprocesses, argv lists)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from typing import TYPE_CHECKING

from shimshift.adapters.node_access import (
    LOCAL_ACCESS_NEEDS_ROOT,
    CommandNodeAccess,
    CommandResult,
    CommandTimeout,
    find_programs_here,
)
from shimshift.core.errors import Refusal

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from contextlib import AbstractAsyncContextManager
    from datetime import datetime


class LocalNodeAccess(CommandNodeAccess):
    """This machine as a node. Refuses to start unless running as root (everything it touches is root's)."""

    def __init__(self, node: str | None = None, *, clock: Callable[[], datetime] | None = None) -> None:
        if os.geteuid() != 0:
            raise Refusal(
                "local node access needs root",
                hint="run shimshift as root on the node (sudo shimshift ...), or use SSH access",
                code=LOCAL_ACCESS_NEEDS_ROOT,
            )
        super().__init__(node or socket.gethostname(), clock=clock)

    async def _exec(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None) -> CommandResult:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Its own process group, so a timeout stops the whole command (e.g. dd under sh), not only
            # its first process.
            start_new_session=True,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout)
        except TimeoutError as exc:
            await _stop(process)
            raise CommandTimeout(self._node, argv, timeout) from exc
        except BaseException:
            await _stop(process)
            raise
        assert process.returncode is not None
        return CommandResult(tuple(argv), process.returncode, stdout, stderr)

    def open_unix_socket_forward(self, remote_path: str) -> AbstractAsyncContextManager[str]:
        return _same_path(remote_path)

    async def find_programs(self, programs: Sequence[str]) -> dict[str, str | None]:
        return find_programs_here(programs)

    async def close(self) -> None:
        return None


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group (lets the file scripts remove their temporary file), SIGKILL after 5 s."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), grace)
            return
        except TimeoutError:
            continue


@contextlib.asynccontextmanager
async def _same_path(path: str) -> AsyncIterator[str]:
    # On the node itself the socket is already local.
    yield path
