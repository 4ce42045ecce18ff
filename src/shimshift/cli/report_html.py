"""The HTML report of a run: one self-contained file (inline CSS and SVG, no script, nothing fetched).

Per node: a timeline with one bar per step on a time axis, the findings, the pods the drain evicted, the
canary that verify ran, and the rollback if there was one. Everything comes from the journal's step
records, so the file can be re-rendered from the journal at any time (``shimshift report -o html``).

Pure: entries in, a string out. Every piece of text from the journal (node names, messages, pod names,
details) goes through :func:`_text`, because a node name or an error message is not markup.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shimshift.cli.report import NodeSummary, TimelineEntry, canary_of, node_timelines
from shimshift.core.findings import Finding, recorded_failure
from shimshift.core.node_plan_record import warnings_from_record
from shimshift.core.procedures.migration import LEGACY_PLAN_KEY, PLAN_KEY
from shimshift.orchestrator.node_migration import ROLLBACK_PREFIX

_ENDS = {"finished", "failed"}
# Drawing geometry, in SVG user units (the SVG scales to the page width).
_LABEL_WIDTH = 230
_CHART_WIDTH = 720
_ROW_HEIGHT = 24
_BAR_HEIGHT = 14
_AXIS_HEIGHT = 30
_MIN_BAR = 3  # a step of a few milliseconds stays visible
_TICK_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
_MAX_TICKS = 8


@dataclass(frozen=True)
class StepSpan:
    """One run of one step: from its ``started`` record to its ``finished``/``failed`` one.

    ``result`` is ``interrupted`` when no end was recorded (the process died inside the step); the bar
    then ends at the node's last record.
    """

    step: str
    start: datetime
    end: datetime
    result: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def step_spans(timeline: Sequence[TimelineEntry]) -> list[StepSpan]:
    """Every run of every step, in start order (a resumed run can run a step twice)."""
    if not timeline:
        return []
    last_at = max(entry.at for entry in timeline)
    open_spans: dict[str, datetime] = {}
    spans: list[StepSpan] = []
    for entry in timeline:
        if entry.phase == "started":
            if entry.step in open_spans:
                spans.append(StepSpan(entry.step, open_spans[entry.step], entry.at, "interrupted"))
            open_spans[entry.step] = entry.at
        elif entry.phase in _ENDS:
            # A failure recorded without a start (a node refused before its first step) is an instant.
            start = open_spans.pop(entry.step, entry.at)
            spans.append(StepSpan(entry.step, start, entry.at, entry.phase))
    spans += [StepSpan(step, start, last_at, "interrupted") for step, start in open_spans.items()]
    return sorted(spans, key=lambda span: span.start)


def render_html(
    *, run_id: str, cluster: str, summaries: Iterable[NodeSummary], entries: Iterable[TimelineEntry]
) -> str:
    summaries = list(summaries)
    timelines = node_timelines(entries)
    everything = [entry for timeline in timelines.values() for entry in timeline]
    run_start = min((entry.at for entry in everything), default=None)
    run_end = max((entry.at for entry in everything), default=None)
    names = [summary.node for summary in summaries]
    names += [name for name in timelines if name not in names]
    by_name = {summary.node: summary for summary in summaries}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>shimshift run {_text(run_id)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<header><h1>shimshift run <code>{_text(run_id)}</code></h1>",
        f"<p>Cluster <code>{_text(cluster)}</code>",
    ]
    if run_start is not None and run_end is not None:
        parts.append(
            f" · {_text(f'{run_start:%Y-%m-%d %H:%M:%S}')} to {_text(f'{run_end:%H:%M:%S}')} UTC"
            f" ({_text(_duration((run_end - run_start).total_seconds()))})"
        )
    parts.append("</p></header>")
    parts.append(_summary_table(names, by_name))
    parts.append(_legend())
    for index, name in enumerate(names):
        summary = by_name.get(name, NodeSummary(name, "not recorded"))
        parts.append(_node_section(index, summary, timelines.get(name, []), run_start))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _summary_table(names: list[str], by_name: Mapping[str, NodeSummary]) -> str:
    rows = []
    for index, name in enumerate(names):
        summary = by_name.get(name, NodeSummary(name, "not recorded"))
        rows.append(
            f'<tr><td><a href="#node-{index}">{_text(name)}</a></td>'
            f'<td><span class="status {_status_class(summary.status)}">{_text(summary.status)}</span></td>'
            f"<td>{_text(summary.message)}</td></tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="3">no node in this run</td></tr>')
    return (
        '<section class="summary"><h2>Nodes</h2><table><thead><tr><th>node</th><th>result</th><th>note</th>'
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>"
    )


def _legend() -> str:
    items = [("finished", "finished"), ("failed", "failed"), ("interrupted", "interrupted"), ("rollback", "rollback")]
    swatches = "".join(f'<span class="swatch {css}"></span>{label} ' for css, label in items)
    return f'<p class="legend">Bars: {swatches}</p>'


def _node_section(index: int, summary: NodeSummary, timeline: list[TimelineEntry], run_start: datetime | None) -> str:
    spans = step_spans(timeline)
    parts = [
        f'<section class="node" id="node-{index}" data-node="{_text(summary.node)}">',
        f'<h2>{_text(summary.node)} <span class="status {_status_class(summary.status)}">'
        f"{_text(summary.status)}</span></h2>",
    ]
    if summary.message:
        parts.append(f'<p class="message">{_text(summary.message)}</p>')
    if spans:
        node_start = spans[0].start
        offset = f" (+{_duration((node_start - run_start).total_seconds())} into the run)" if run_start else ""
        parts.append(f"<h3>Timeline</h3><p class=\"axis-note\">from {node_start:%H:%M:%S} UTC{_text(offset)}</p>")
        parts.append(_timeline_svg(summary.node, spans))
        parts.append(_steps_table(spans, node_start))
    else:
        parts.append("<p>No step was recorded for this node.</p>")
    parts.append(_findings(timeline))
    parts.append(_evictions(timeline))
    parts.append(_canary(timeline))
    parts.append(_rollback(spans))
    parts.append("</section>")
    return "\n".join(parts)


def _timeline_svg(node: str, spans: list[StepSpan]) -> str:
    start = spans[0].start
    total = max((span.end - start).total_seconds() for span in spans)
    tick = _tick_step(total)
    # The axis ends on a whole tick, so the last label is never cut off.
    axis_end = max(tick, tick * -(-total // tick))
    rows = list(dict.fromkeys(span.step for span in spans))
    height = _AXIS_HEIGHT + _ROW_HEIGHT * len(rows) + 6
    width = _LABEL_WIDTH + _CHART_WIDTH + 20

    def x(seconds: float) -> float:
        return _LABEL_WIDTH + _CHART_WIDTH * seconds / axis_end

    out = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="timeline of {_text(node)}">'
    ]
    count = round(axis_end / tick)
    for number in range(count + 1):
        seconds = number * tick
        out.append(
            f'<line class="grid" x1="{x(seconds):.1f}" y1="{_AXIS_HEIGHT - 6}" x2="{x(seconds):.1f}" '
            f'y2="{height - 4}"/><text class="tick" x="{x(seconds):.1f}" y="{_AXIS_HEIGHT - 12}" '
            f'text-anchor="middle">{_text(_duration(seconds))}</text>'
        )
    for row, step in enumerate(rows):
        top = _AXIS_HEIGHT + row * _ROW_HEIGHT
        out.append(
            f'<text class="label" x="{_LABEL_WIDTH - 8}" y="{top + _ROW_HEIGHT / 2 + 4:.1f}" '
            f'text-anchor="end">{_text(step)}</text>'
        )
        for span in (span for span in spans if span.step == step):
            left = x((span.start - start).total_seconds())
            bar = max(_MIN_BAR, x((span.end - start).total_seconds()) - left)
            css = _bar_class(span)
            out.append(
                f'<rect class="bar {css}" data-step="{_text(step)}" data-result="{_text(span.result)}" '
                f'x="{left:.1f}" y="{top + (_ROW_HEIGHT - _BAR_HEIGHT) / 2:.1f}" width="{bar:.1f}" '
                f'height="{_BAR_HEIGHT}" rx="2"><title>{_text(step)}: {_text(span.result)} in '
                f"{_text(_duration(span.seconds))}</title></rect>"
            )
    out.append("</svg>")
    return "".join(out)


def _steps_table(spans: list[StepSpan], node_start: datetime) -> str:
    rows = "".join(
        f'<tr data-step="{_text(span.step)}"><td>{_text(span.step)}</td>'
        f'<td><span class="status {_status_class(span.result)}">{_text(span.result)}</span></td>'
        f'<td class="num">+{_text(_duration((span.start - node_start).total_seconds()))}</td>'
        f'<td class="num">{_text(_duration(span.seconds))}</td></tr>'
        for span in spans
    )
    return (
        '<details class="steps"><summary>Steps as a table</summary><table><thead><tr><th>step</th>'
        '<th>result</th><th class="num">start</th><th class="num">took</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details>"
    )


def _findings(timeline: list[TimelineEntry]) -> str:
    """What the run learned about the node: failures, the plan's notes, and findings steps recorded."""
    items: list[str] = []
    for entry in timeline:
        detail = entry.detail or {}
        if entry.phase == "failed":
            items += [_finding(finding, f"{entry.step} failed") for finding in recorded_failure(detail)]
            continue
        # Journals of builds up to 41920b0 keep the plan as "change_set", its warnings as "notes".
        plan = (detail.get(PLAN_KEY) or detail.get(LEGACY_PLAN_KEY)) if entry.phase == "finished" else None
        if isinstance(plan, Mapping):
            if plan.get("noop_reason"):
                items.append(_finding_item("info", "nothing to do", str(plan["noop_reason"])))
            notes = _as_list(plan.get("warnings", plan.get("notes")))
            items += [_finding(finding, "plan note") for finding in warnings_from_record(notes)]
        for finding in _as_list(detail.get("findings")):
            items.append(_structured_finding(entry.step, finding))
    body = f'<ul class="findings">{"".join(items)}</ul>' if items else "<p>None.</p>"
    return f"<h3>Findings</h3>{body}"


def _finding_item(severity: str, title: str, message: str, hint: str = "") -> str:
    hint_html = f' <span class="hint">{_text(hint)}</span>' if hint else ""
    return (
        f'<li class="{_text(severity)}"><span class="severity">{_text(severity)}</span> '
        f"<strong>{_text(title)}</strong>: {_text(message)}{hint_html}</li>"
    )


def _finding(finding: Finding, title: str) -> str:
    return _finding_item(finding.severity.value, title, finding.message, finding.hint)


def _structured_finding(step: str, finding: object) -> str:
    if not isinstance(finding, Mapping):
        return _finding_item("info", step, str(finding))
    title = " ".join(str(finding[key]) for key in ("code", "subject") if finding.get(key)) or step
    return _finding_item(
        str(finding.get("severity", "info")), title, str(finding.get("message", "")), str(finding.get("hint", ""))
    )


def _evictions(timeline: list[TimelineEntry]) -> str:
    drains = [entry for entry in timeline if entry.step == "drain" and entry.phase == "finished"]
    if not drains:
        started = any(entry.step == "drain" for entry in timeline)
        return f"<h3>Evictions</h3><p>{'The drain did not finish.' if started else 'No drain was recorded.'}</p>"
    evicted = [str(pod) for pod in _as_list((drains[-1].detail or {}).get("evicted"))]
    if not evicted:
        return "<h3>Evictions</h3><p>The drain evicted no pod.</p>"
    pods = "".join(f"<li><code>{_text(pod)}</code></li>" for pod in evicted)
    return f'<h3>Evictions</h3><p>{len(evicted)} pod(s) evicted:</p><ul class="pods">{pods}</ul>'


def _canary(timeline: list[TimelineEntry]) -> str:
    """Whatever verify recorded under ``canary`` (its last end record wins: a resumed verify runs again)."""
    canary = canary_of(timeline)
    if canary is None:
        return "<h3>Canary</h3><p>No canary was recorded by verify.</p>"
    return f'<h3>Canary</h3><div class="canary">{_value(canary)}</div>'


def _rollback(spans: list[StepSpan]) -> str:
    steps = [span for span in spans if span.step.startswith(ROLLBACK_PREFIX)]
    if not steps:
        return "<h3>Rollback</h3><p>None.</p>"
    failed = any(span.result != "finished" for span in steps)
    verdict = "did not complete" if failed else "completed: back on dockershim"
    items = "".join(
        f'<li><span class="status {_status_class(span.result)}">{_text(span.result)}</span> '
        f"{_text(span.step.removeprefix(ROLLBACK_PREFIX))} ({_text(_duration(span.seconds))})</li>"
        for span in steps
    )
    return f'<h3>Rollback</h3><p class="rollback">The rollback {verdict}.</p><ol class="rollback-steps">{items}</ol>'


def _value(value: object) -> str:
    """A journal detail value as HTML: mappings as tables, lists as lists, the rest as text."""
    if isinstance(value, Mapping):
        rows = "".join(f"<tr><th>{_text(str(key))}</th><td>{_value(item)}</td></tr>" for key, item in value.items())
        return f'<table class="detail">{rows}</table>'
    if isinstance(value, list | tuple):
        if all(not isinstance(item, Mapping | list | tuple) for item in value):
            return _text(", ".join(str(item) for item in value)) or "—"
        return "<ul>" + "".join(f"<li>{_value(item)}</li>" for item in value) + "</ul>"
    if isinstance(value, bool) or value is None:
        return _text(json.dumps(value))
    return _text(str(value))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _bar_class(span: StepSpan) -> str:
    if span.result == "finished" and span.step.startswith(ROLLBACK_PREFIX):
        return "rollback"
    return _status_class(span.result)


def _status_class(status: str) -> str:
    if status in {"finished", "migrated", "already-migrated", "succeeded"}:
        return "finished"
    if status in {"failed", "refused"}:
        return "failed"
    if status == "rolled-back":
        return "rollback"
    return "interrupted"  # a step left started, a node not started


def _tick_step(total: float) -> float:
    for step in _TICK_STEPS:
        if total / step <= _MAX_TICKS:
            return step
    return _TICK_STEPS[-1] * (1 + int(total / (_TICK_STEPS[-1] * _MAX_TICKS)))


def _duration(seconds: float) -> str:
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s" if seconds >= 0.1 else f"{seconds * 1000:.0f}ms"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _text(value: str) -> str:
    return html.escape(value, quote=True)


_CSS = """
:root { color-scheme: light; --ok: #2e7d32; --bad: #c62828; --halt: #8d8d8d; --back: #ef6c00; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 960px;
       padding: 0 1rem; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { font-size: 1.2rem; margin: 0 0 .5rem; }
h3 { font-size: 1rem; margin: 1rem 0 .35rem; color: #444; }
code { font: .92em ui-monospace, SFMono-Regular, Menlo, monospace; background: #f3f3f5; padding: 0 .25em;
       border-radius: 3px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e3e3e8; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
section { margin: 1.5rem 0; }
section.node { border: 1px solid #dcdce2; border-radius: 8px; padding: 1rem 1.25rem; }
.status { display: inline-block; padding: 0 .5em; border-radius: 1em; font-size: .85em; color: #fff;
          background: var(--halt); }
.status.finished { background: var(--ok); } .status.failed { background: var(--bad); }
.status.rollback { background: var(--back); }
.legend { color: #555; font-size: .9em; }
.swatch { display: inline-block; width: 1.6em; height: .8em; margin: 0 .3em 0 .6em; border-radius: 2px;
          vertical-align: middle; background: var(--ok); }
.swatch.failed { background: var(--bad); } .swatch.interrupted { background: var(--halt); }
.swatch.rollback { background: var(--back); }
.message { margin: 0 0 .5rem; color: #333; }
.axis-note { margin: 0; color: #666; font-size: .85em; }
svg.timeline { display: block; margin: .25rem 0; }
svg.timeline .grid { stroke: #e6e6ea; stroke-width: 1; }
svg.timeline .tick { font: 11px system-ui, sans-serif; fill: #777; }
svg.timeline .label { font: 12px ui-monospace, Menlo, monospace; fill: #222; }
svg.timeline .bar { fill: var(--ok); } svg.timeline .bar.failed { fill: var(--bad); }
svg.timeline .bar.interrupted { fill: var(--halt); } svg.timeline .bar.rollback { fill: var(--back); }
details.steps summary { cursor: pointer; color: #555; font-size: .9em; }
ul.findings { list-style: none; padding: 0; margin: 0; }
ul.findings li { padding: .2rem 0; }
.severity { display: inline-block; min-width: 4.5em; font-size: .8em; text-transform: uppercase; color: #666; }
li.error .severity { color: var(--bad); font-weight: 600; } li.warning .severity { color: var(--back); }
.hint { color: #666; }
ul.pods { columns: 2; margin: 0; }
table.detail th { width: 11em; color: #555; font-weight: 500; }
"""
