"""Reports of a run, from the journal: JSON for machines, Markdown with a per-node timeline for people.

Rendering is pure (entries in, text out) so the same journal always gives the same report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shimshift.adapters.journal import Journal
    from shimshift.orchestrator.fleet import FleetResult


@dataclass(frozen=True)
class TimelineEntry:
    node: str
    step: str
    phase: str
    at: datetime
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class NodeSummary:
    node: str
    status: str
    message: str = ""


def node_timelines(entries: Iterable[TimelineEntry]) -> dict[str, list[TimelineEntry]]:
    timelines: dict[str, list[TimelineEntry]] = {}
    for entry in sorted(entries, key=lambda item: item.at):
        timelines.setdefault(entry.node, []).append(entry)
    return timelines


def step_durations(timeline: Iterable[TimelineEntry]) -> list[tuple[str, str, float | None]]:
    """(step, final phase, seconds) per step, in the order the steps started."""
    started: dict[str, datetime] = {}
    order: list[str] = []
    ended: dict[str, tuple[str, float]] = {}
    for entry in timeline:
        if entry.phase == "started":
            if entry.step not in started:
                order.append(entry.step)
            started[entry.step] = entry.at
        elif entry.phase in {"finished", "failed"} and entry.step in started:
            ended[entry.step] = (entry.phase, (entry.at - started[entry.step]).total_seconds())
    return [
        (step, ended[step][0] if step in ended else "interrupted", ended[step][1] if step in ended else None)
        for step in order
    ]


def render_json(
    *, run_id: str, cluster: str, summaries: Iterable[NodeSummary], entries: Iterable[TimelineEntry]
) -> str:
    timelines = node_timelines(entries)
    nodes = []
    for summary in summaries:
        nodes.append(
            {
                "node": summary.node,
                "status": summary.status,
                "message": summary.message,
                "steps": [
                    {"step": step, "result": result, "seconds": seconds}
                    for step, result, seconds in step_durations(timelines.get(summary.node, []))
                ],
                "canary": canary_of(timelines.get(summary.node, [])),
                "timeline": [
                    {"step": entry.step, "phase": entry.phase, "at": entry.at.isoformat(), "detail": entry.detail}
                    for entry in timelines.get(summary.node, [])
                ],
            }
        )
    return json.dumps({"run": run_id, "cluster": cluster, "nodes": nodes}, indent=2, sort_keys=False) + "\n"


def render_markdown(
    *, run_id: str, cluster: str, summaries: Iterable[NodeSummary], entries: Iterable[TimelineEntry]
) -> str:
    summaries = list(summaries)
    timelines = node_timelines(entries)
    lines = [f"# shimshift run {run_id}", "", f"Cluster: `{cluster}`", "", "| node | result | note |", "|---|---|---|"]
    lines += [f"| {item.node} | {item.status} | {_cell(item.message)} |" for item in summaries]
    for item in summaries:
        lines += ["", f"## {item.node}", "", "| step | result | seconds |", "|---|---|---:|"]
        for step, result, seconds in step_durations(timelines.get(item.node, [])):
            lines.append(f"| {step} | {result} | {'' if seconds is None else f'{seconds:.1f}'} |")
        lines += canary_lines(canary_of(timelines.get(item.node, [])))
    return "\n".join(lines) + "\n"


def canary_of(timeline: Iterable[TimelineEntry]) -> Mapping[str, Any] | None:
    """What the node's last verify recorded of its canary pod (passed or failed), if it ran one."""
    found = None
    for entry in timeline:
        if entry.step == "verify" and entry.phase in {"finished", "failed"} and entry.detail:
            found = entry.detail.get("canary", found)
    return found


def canary_lines(canary: Mapping[str, Any] | None) -> list[str]:
    if not canary:
        return []
    deleted = "deleted" if canary.get("deleted") else "NOT deleted"
    lines = [
        "",
        f"Canary `{canary.get('pod')}` ({canary.get('image')}): {canary.get('state')}, phase "
        f"{canary.get('phase') or '-'}, IP {canary.get('ip') or '-'}, verdict after {canary.get('verdict_after_s')} s, "
        f"{deleted}. {_cell(str(canary.get('message', '')))}",
    ]
    if canary.get("note"):
        lines.append(f"Note: {canary['note']}.")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def run_reports(journal: Journal, run_id: str, cluster: str, result: FleetResult | None = None) -> tuple[str, str]:
    """(JSON, Markdown) of one run, from its journal records."""
    entries = [
        TimelineEntry(record.node, record.step, str(record.phase), record.at, record.detail)
        for record in journal.timeline(run_id)
    ]
    summaries = summaries_from(entries, result)
    return (
        render_json(run_id=run_id, cluster=cluster, summaries=summaries, entries=entries),
        render_markdown(run_id=run_id, cluster=cluster, summaries=summaries, entries=entries),
    )


def write_reports(
    journal: Journal, run_id: str, cluster: str, report_dir: Path, result: FleetResult | None = None
) -> tuple[Path, Path]:
    json_text, markdown_text = run_reports(journal, run_id, cluster, result)
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / f"shimshift-{run_id}.json"
    markdown_path = report_dir / f"shimshift-{run_id}.md"
    json_path.write_text(json_text)
    markdown_path.write_text(markdown_text)
    return json_path, markdown_path


def summaries_from(entries: list[TimelineEntry], result: FleetResult | None) -> list[NodeSummary]:
    if result is not None:
        summaries = [NodeSummary(outcome.node, str(outcome.status), outcome.message) for outcome in result.outcomes]
        summaries += [NodeSummary(name, "not-started", result.stopped_reason or "") for name in result.not_started]
        return summaries
    last: dict[str, TimelineEntry] = {}
    for entry in entries:
        last[entry.node] = entry
    return [
        NodeSummary(
            node,
            "migrated" if entry.step == "uncordon" and entry.phase == "finished" else f"{entry.step} {entry.phase}",
        )
        for node, entry in sorted(last.items())
    ]
