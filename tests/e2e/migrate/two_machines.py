"""Two "machines" against one lab: two state directories (two journals), one cluster Lease.

A run started from machine A is frozen mid-drain (SIGSTOP), machine B's run is refused naming A's run,
then A is SIGKILLed (nothing released: its Lease must expire); B then resumes A's run from the state the
cluster keeps. Used by tests/e2e/migrate/test_lease_two_machines.py and tests/e2e/upgrade/test_lease_two_machines.py.
"""

from __future__ import annotations

import getpass
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .helpers import cli_argv, cli_env, journal_has, recorded_runs, shimshift

if TYPE_CHECKING:
    from pathlib import Path

    from shimshift.lab.model import LabInfo

@dataclass(frozen=True)
class Machines:
    a: Path  # machine A's journal (its state directory's)
    b: Path

    @classmethod
    def under(cls, directory: Path) -> Machines:
        (directory / "a").mkdir()
        (directory / "b").mkdir()
        return cls(directory / "a" / "journal.sqlite", directory / "b" / "journal.sqlite")


def refused_then_killed_mid_drain(
    lab: LabInfo, machines: Machines, args: list[str], *, node: str, timeout: float = 900
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Start `shimshift ARGS` on A; once NODE's drain started, freeze A, run the same command on B (which
    must be refused), then SIGKILL A. Returns A's run id and B's refused result."""
    process = subprocess.Popen(
        cli_argv(lab, machines.a, *args),
        env=cli_env(),
        cwd=machines.a.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while not journal_has(machines.a, node=node, step="drain", phase="started"):
            assert process.poll() is None, f"shimshift on A exited ({process.returncode}) before {node}'s drain"
            assert time.monotonic() < deadline, f"{node}'s drain never started within {timeout:.0f}s"
            time.sleep(0.02)
        process.send_signal(signal.SIGSTOP)  # mid-drain: A holds the Lease and renews no more
        refused = shimshift(lab, machines.b, *args, timeout=120)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    (run,) = recorded_runs(machines.a)
    return run.id, refused


def holder_words(run_id: str, verb: str) -> str:
    """How a refusal names machine A's run (core/run_lease.py, Holder.describe)."""
    return f"{verb} run {run_id} by {getpass.getuser()} on {socket.gethostname()}"
