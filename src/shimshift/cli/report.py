"""Reports of a run, from the journal: JSON for machines, Markdown with a per-node timeline for people
(the HTML report is report_html.py; report_files.py writes all three).

Rendering is pure (entries in, text out) so the same journal always gives the same report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shimshift.core.findings import recorded_failure
from shimshift.orchestrator.node_migration import ROLLBACK_PREFIX

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


def failure_findings(timeline: Iterable[TimelineEntry]) -> list[dict[str, Any]]:
    """Why the node's steps failed, as findings with the step each failed in (docs/findings.md); a record
    of an older build gives its message as one finding with the code ``recorded-message``."""
    return [
        {"step": entry.step, **finding.to_json()}
        for entry in timeline
        if entry.phase == "failed"
        for finding in recorded_failure(entry.detail or {})
    ]


def render_json(
    *,
    run_id: str,
    cluster: str,
    summaries: Iterable[NodeSummary],
    entries: Iterable[TimelineEntry],
    options: Mapping[str, Any] | None = None,
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
                "findings": failure_findings(timelines.get(summary.node, [])),
                "timeline": [
                    {"step": entry.step, "phase": entry.phase, "at": entry.at.isoformat(), "detail": entry.detail}
                    for entry in timelines.get(summary.node, [])
                ],
            }
        )
    data = {"run": run_id, "cluster": cluster, "options": dict(options or {}), "nodes": nodes}
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def render_markdown(
    *,
    run_id: str,
    cluster: str,
    summaries: Iterable[NodeSummary],
    entries: Iterable[TimelineEntry],
    options: Mapping[str, Any] | None = None,
) -> str:
    summaries = list(summaries)
    timelines = node_timelines(entries)
    lines = [f"# shimshift run {run_id}", "", f"Cluster: `{cluster}`", ""]
    lines += _opt_in_lines(options or {})
    lines += ["| node | result | note |", "|---|---|---|"]
    lines += [f"| {item.node} | {item.status} | {_cell(item.message)} |" for item in summaries]
    for item in summaries:
        lines += ["", f"## {item.node}", "", "| step | result | seconds |", "|---|---|---:|"]
        for step, result, seconds in step_durations(timelines.get(item.node, [])):
            lines.append(f"| {step} | {result} | {'' if seconds is None else f'{seconds:.1f}'} |")
        lines += canary_lines(canary_of(timelines.get(item.node, [])))
    return "\n".join(lines) + "\n"


def _opt_in_lines(options: Mapping[str, Any]) -> list[str]:
    """The operator's opt-ins, said plainly: each one is a known breakage they accepted."""
    if not options.get("accept_refused_hardened_pods"):
        return []
    accepted = options.get("accepted_hardened_workloads") or []
    named = ", ".join(f"`{name}`" for name in accepted) if accepted else "none found when the run began"
    return [
        "**Opt-in `--accept-refused-hardened-pods`**: the operator accepted that kubelets before 1.24 on "
        "cri-dockerd refuse pods with `allowPrivilegeEscalation: false` (reason NoNewPrivs) until they are "
        f"upgraded to 1.24+. Hardened workloads at the start of the run: {named}.",
        "",
    ]


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


def timeline_entries(journal: Journal, run_id: str) -> list[TimelineEntry]:
    return [
        TimelineEntry(record.node, record.step, str(record.phase), record.at, record.detail)
        for record in journal.timeline(run_id)
    ]


def run_reports(journal: Journal, run_id: str, cluster: str, result: FleetResult | None = None) -> tuple[str, str]:
    """(JSON, Markdown) of one run, from its journal records."""
    entries = timeline_entries(journal, run_id)
    summaries = summaries_from(entries, result)
    run = journal.run(run_id)
    options = run.options if run is not None else {}
    return (
        render_json(run_id=run_id, cluster=cluster, summaries=summaries, entries=entries, options=options),
        render_markdown(run_id=run_id, cluster=cluster, summaries=summaries, entries=entries, options=options),
    )


def summaries_from(entries: list[TimelineEntry], result: FleetResult | None) -> list[NodeSummary]:
    if result is not None:
        summaries = [NodeSummary(outcome.node, str(outcome.status), outcome.message) for outcome in result.outcomes]
        summaries += [NodeSummary(name, "not-started", result.stopped_reason or "") for name in result.not_started]
        return summaries
    last: dict[str, TimelineEntry] = {}
    failed: dict[str, TimelineEntry] = {}
    for entry in entries:
        last[entry.node] = entry
        if entry.phase == "failed":
            failed.setdefault(entry.node, entry)
    return [_summary_from_records(last[node], failed.get(node)) for node in sorted(last)]


def _summary_from_records(last: TimelineEntry, first_failure: TimelineEntry | None) -> NodeSummary:
    """A node's outcome read back from its records, in the words OutcomeStatus uses where they apply."""
    message = str((first_failure.detail or {}).get("message", "")) if first_failure else ""
    if last.phase == "finished" and last.step == f"{ROLLBACK_PREFIX}uncordon":
        return NodeSummary(last.node, "rolled-back", message)
    if last.phase == "finished" and last.step == "uncordon":
        return NodeSummary(last.node, "migrated")
    if last.phase == "failed" and last.step in {"install-cri-dockerd", "preflight"}:
        return NodeSummary(last.node, "refused", message)
    if last.phase == "failed":
        return NodeSummary(last.node, "failed", f"{last.step}: {message}" if message else last.step)
    return NodeSummary(last.node, f"{last.step} {last.phase}", message)
