"""Two "machines" against one lab: two state directories (two journals), one cluster Lease.

A run started from machine A is frozen mid-drain (SIGSTOP), machine B's run is refused naming A's run,
then A is SIGKILLed (nothing released: its Lease must expire); B then resumes A's run from the state the
cluster keeps. Used by tests/e2e/migrate/test_lease_two_machines.py and tests/e2e/upgrade/test_lease_two_machines.py.
"""

from __future__ import annotations

import base64
import getpass
import json
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shimshift.adapters.kube.run_state import configmap_name
from shimshift.core.run_copy import SHA_PREFIX, decode_node, node_key

from .helpers import KUBECTL, cli_argv, cli_env, journal_has, newest_run_id, recorded_runs, shimshift

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
        # A writes a record to its journal, then to the cluster's copy: stopped between the two, the copy
        # lags one record (a resume redoes that step; see core/run_copy.py). B must see the drain started,
        # so let A write its copy first, a few milliseconds at a time (a drain takes seconds).
        run_id = newest_run_id(machines.a)  # read-only: A may be stopped inside its journal's transaction
        while copied_steps(lab, run_id, node)[-1:] != [("drain", "started")]:
            assert ("drain", "finished") not in copied_steps(lab, run_id, node), f"{node}'s drain ended first"
            assert time.monotonic() < deadline, f"{node}'s drain never reached the cluster's copy"
            process.send_signal(signal.SIGCONT)
            time.sleep(0.02)
            process.send_signal(signal.SIGSTOP)
        refused = shimshift(lab, machines.b, *args, timeout=120)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    (run,) = recorded_runs(machines.a)
    return run.id, refused


def copied_steps(lab: LabInfo, run_id: str, node: str) -> list[tuple[str, str]]:
    """NODE's records as the cluster's copy of the run holds them: (step, phase) in order."""
    where = configmap_name(run_id)
    base = [str(KUBECTL), "--kubeconfig", str(lab.kubeconfig), "-n", "kube-system"]
    found = subprocess.run(
        [*base, "get", "configmap", where, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if found.returncode != 0:
        return []  # not written yet
    body = json.loads(found.stdout)
    key = node_key(node)
    encoded = (body.get("binaryData") or {}).get(key)
    if encoded is None:
        return []
    sha256 = (body.get("data") or {}).get(SHA_PREFIX + key, "")
    records = decode_node(node, base64.b64decode(encoded), sha256, where=where)
    return [(record.step, record.phase) for record in records]


def holder_words(run_id: str, verb: str) -> str:
    """How a refusal names machine A's run (core/run_lease.py, Holder.describe)."""
    return f"{verb} run {run_id} by {getpass.getuser()} on {socket.gethostname()}"
