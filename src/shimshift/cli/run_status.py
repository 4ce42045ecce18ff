"""`shimshift status`'s words for the cluster's Lease and the run's copy there (docs/run-lease.md).

Pure rendering: takes the Lease and the copy as read, and the time; returns lines. The journal's own
view (this machine's runs) stays in migrate_cmd.status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shimshift.core.run_lease import stale_holder

if TYPE_CHECKING:
    from datetime import datetime

    from shimshift.core.run_copy import RunCopy
    from shimshift.core.run_lease import LeaseState


def lease_lines(lease: LeaseState | None, namespace: str, now: datetime) -> list[str]:
    """Who holds the Lease (and for how long more), or which run held it last and how that run ended."""
    where = f"Lease {namespace}/shimshift"
    if lease is None:
        return [f"{where}: none (no run has changed this cluster's nodes since shimshift has kept one)"]
    if lease.holder is None:
        last = f"; last run {lease.run_id}: {lease.run_status}" if lease.run_id else ""
        return [f"{where}: free{last}"]
    since = f"{lease.acquired:%Y-%m-%d %H:%M:%S} UTC" if lease.acquired else "?"
    expires = lease.expires()
    left = f", expires in {max(0, int((expires - now).total_seconds()))} s" if expires and expires > now else ""
    lines = [f"{where}: held by {lease.holder.describe()} since {since}{left}"]
    stale = stale_holder(lease, now)
    if stale is not None:
        # The Lease is the finding's subject (the line above): its severity, message and way on, one a line.
        lines += [f"  {stale.severity.value}: {stale.message}", f"  way on: {stale.hint}"]
    if lease.taken_over:
        lines.append(f"  taken over: {lease.taken_over}")
    return lines


def copy_lines(copy: RunCopy) -> list[str]:
    """The run as the cluster keeps it: its status, who began or last ran it, and each node's last record."""
    lines = [
        f"run {copy.run_id}: {copy.status} (started {copy.started_at:%Y-%m-%d %H:%M:%S} UTC"
        + (f", {copy.by}" if copy.by else "")
        + "; from the cluster)"
    ]
    for node, records in sorted(copy.nodes.items()):
        if not records:
            continue
        last = records[-1]
        message = str(last.detail.get("message", "")) if last.detail else ""
        lines.append(f"  {node}: {last.step} {last.phase}" + (f": {message}" if message else ""))
    return lines
