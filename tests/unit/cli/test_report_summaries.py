"""A node's outcome read back from the journal alone (`shimshift report` of an earlier run): migrated,
rolled back, refused at preflight, failed at a step, or still inside a step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shimshift.cli.report import NodeSummary, TimelineEntry, summaries_from

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def records(node: str, *steps: tuple[str, str, str]) -> list[TimelineEntry]:
    return [
        TimelineEntry(node, step, phase, T0 + timedelta(seconds=n), {"message": message} if message else None)
        for n, (step, phase, message) in enumerate(steps)
    ]


def test_each_outcome_in_node_status_words() -> None:
    entries = [
        *records("a", ("verify", "finished", ""), ("uncordon", "finished", "")),
        *records("b", ("verify", "failed", "not healthy"), ("rollback:uncordon", "finished", "")),
        *records("c", ("preflight", "failed", "no cri-dockerd")),
        *records("d", ("drain", "failed", "PDB demo/web")),
        *records("e", ("restart-kubelet", "started", "")),
    ]
    assert summaries_from(entries, None) == [
        NodeSummary("a", "migrated"),
        NodeSummary("b", "rolled-back", "not healthy"),
        NodeSummary("c", "refused", "no cri-dockerd"),
        NodeSummary("d", "failed", "drain: PDB demo/web"),
        NodeSummary("e", "restart-kubelet started"),
    ]
