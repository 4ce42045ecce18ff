"""`status`'s words for the Lease and the run's cluster copy (cli/run_status.py), at a fixed time.

Matrix: no Lease; a free Lease after a run (its status); a live holder (who, since, expires in); a holder
that stopped renewing (warning and the way on); a take-over on record; the copy's run and each node's
last record (message included, nodes in name order).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shimshift.cli.run_status import copy_lines, lease_lines
from shimshift.core.run_copy import CopiedRecord, RunCopy
from shimshift.core.run_lease import DEFAULT_DURATION, Holder, LeaseState, RunStatus

T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
ALICE = Holder("20261207T100000Z-aaaa0001", "alice", "laptop", 4242, "migrate")


def held(**changes: Any) -> LeaseState:
    return replace(LeaseState(ALICE, ALICE.run_id, RunStatus.RUNNING, T0, T0, DEFAULT_DURATION, 1), **changes)


def test_no_lease_and_a_free_one() -> None:
    assert lease_lines(None, "kube-system", T0) == [
        "Lease kube-system/shimshift: none (no run has changed this cluster's nodes since shimshift has kept one)"
    ]
    free = held(holder=None, run_status=RunStatus.SUCCEEDED, renewed=None)
    assert lease_lines(free, "kube-system", T0) == [
        f"Lease kube-system/shimshift: free; last run {ALICE.run_id}: succeeded"
    ]


def test_a_live_holder_and_when_its_lease_expires() -> None:
    assert lease_lines(held(), "ops", T0 + timedelta(seconds=12)) == [
        f"Lease ops/shimshift: held by migrate run {ALICE.run_id} by alice on laptop (pid 4242) since "
        "2026-12-07 10:00:00 UTC, expires in 18 s"
    ]


def test_a_stopped_holder_with_the_way_on_and_a_take_over_on_record() -> None:
    lines = lease_lines(held(taken_over="run X ...; taken over by Y"), "kube-system", T0 + timedelta(minutes=5))
    assert lines[0].endswith("since 2026-12-07 10:00:00 UTC")
    assert lines[1].startswith("  warning: migrate run") and "stopped renewing the Lease 5 min ago" in lines[1]
    assert lines[2] == (
        "  way on: finish it from any machine with `shimshift migrate --resume` (the cluster holds its state), "
        f"or begin anew with `--take-over {ALICE.run_id}`"
    )
    assert lines[3] == "  taken over: run X ...; taken over by Y"


def test_the_copy_shows_each_node_s_last_record() -> None:
    copy = RunCopy(
        ALICE.run_id,
        {},
        T0,
        "running",
        by="migrate run by alice on laptop",
        nodes={
            "w2": [CopiedRecord("preflight", "failed", {"message": "SSH refused"}, T0)],
            "cp": [CopiedRecord("preflight", "finished", {}, T0), CopiedRecord("drain", "started", {}, T0)],
        },
    )
    assert copy_lines(copy) == [
        f"run {ALICE.run_id}: running (started 2026-12-07 10:00:00 UTC, migrate run by alice on laptop; "
        "from the cluster)",
        "  cp: drain started",
        "  w2: preflight failed: SSH refused",
    ]
