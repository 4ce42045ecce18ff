"""One lab per machine, shared by every checkout and test session: a file lock says who uses it.

Exclusive to change it (`up`, `down`, the fixture's reuse-or-rebuild), shared while a test session
runs against it, so one session cannot tear the lab down under another (seen: two worktrees' test
sessions, each finding the other's half-built lab "unhealthy" and rebuilding it).
flock(2) locks go away with the process, so a crashed holder never leaves the lab locked.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from typing import IO, TYPE_CHECKING

from shimshift.lab.docker import LabError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def lock_path(directory: Path) -> Path:
    """Beside the lab directory (which `down` removes), e.g. /var/lib/shimshift/.lab.lock."""
    return directory.parent / f".{directory.name}.lock"


class LabLock:
    """flock on lock_path(directory). acquire(exclusive=...) waits up to timeout seconds."""

    def __init__(
        self, directory: Path, *, timeout: float = 1800, on_wait: Callable[[str], None] | None = None
    ) -> None:
        self.path = lock_path(directory)
        self.timeout = timeout
        self._file: IO[str] | None = None
        self._on_wait = on_wait

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def acquire(self, *, exclusive: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._file is None:
            self._file = self.path.open("a+")
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(self._file.fileno(), mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and self._on_wait is not None:
                    self._on_wait(f"lab is in use ({self._holder()}); waiting for it")
                    told = True
                if time.monotonic() >= deadline:
                    raise LabError(
                        f"the lab stayed in use for {self.timeout:.0f}s ({self._holder()}); "
                        f"lock file {self.path}"
                    ) from None
                time.sleep(1)
        if exclusive:
            self._file.seek(0)
            self._file.truncate()
            self._file.write(f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}\n")
            self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> LabLock:
        self.acquire(exclusive=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
