"""The HTML report, rendered pure: one section per node with a bar per step run on a time axis, findings,
evictions, the canary (whatever verify recorded under "canary"), the rollback; every journal string escaped;
nothing loaded from outside the file."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from shimshift.cli.report import NodeSummary, TimelineEntry
from shimshift.cli.report_html import render_html, step_spans
from shimshift.core.findings import Subject, error, warning

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def at(node: str, step: str, phase: str, seconds: float, detail: dict[str, Any] | None = None) -> TimelineEntry:
    return TimelineEntry(node, step, phase, T0 + timedelta(seconds=seconds), detail)


MIGRATED = [
    at("w1", "preflight", "started", 0),
    at("w1", "preflight", "finished", 1, {"plan": {"warnings": ["pause image moved to cri-dockerd"]}}),
    at("w1", "drain", "started", 1),
    at("w1", "drain", "finished", 21, {"evicted": ["demo/web-1", "demo/<b>x</b>"]}),
    at("w1", "verify", "started", 30),
    at("w1", "verify", "finished", 40, {"canary": {"pod": "shimshift-canary-w1", "ip": "10.244.1.7", "ready": True}}),
]
ROLLED_BACK = [
    at("w2", "write-config", "started", 50),
    at("w2", "write-config", "finished", 51),
    at("w2", "verify", "started", 52),
    at("w2", "verify", "failed", 60, {"message": "node not healthy", "canary": {"phase": "Pending"}}),
    at("w2", "rollback:restore-config", "started", 60),
    at("w2", "rollback:restore-config", "finished", 61),
]


def render(entries: list[TimelineEntry], summaries: list[NodeSummary] | None = None) -> str:
    if summaries is None:
        summaries = [NodeSummary("w1", "migrated"), NodeSummary("w2", "rolled-back")]
    return render_html(run_id="r1", cluster="https://cp:6443", summaries=summaries, entries=entries)


def test_spans_pair_starts_with_ends_and_mark_interrupted_steps() -> None:
    entries = [*MIGRATED[:4], at("w1", "cordon", "started", 22), at("w1", "cordon", "started", 25)]
    spans = [(span.step, span.result, span.seconds) for span in step_spans(entries)]
    assert spans == [
        ("preflight", "finished", 1.0),
        ("drain", "finished", 20.0),
        ("cordon", "interrupted", 3.0),  # started again by a resume: the first run never ended
        ("cordon", "interrupted", 0.0),  # the last record of the node
    ]


def test_one_section_and_one_bar_per_step_run_for_each_node() -> None:
    page = render(MIGRATED + ROLLED_BACK)
    assert re.findall(r'<section class="node" id="node-\d" data-node="([^"]+)"', page) == ["w1", "w2"]
    bars = re.findall(r'<rect class="bar (\w+)" data-step="([^"]+)" data-result="(\w+)"', page)
    assert bars == [
        ("finished", "preflight", "finished"),
        ("finished", "drain", "finished"),
        ("finished", "verify", "finished"),
        ("finished", "write-config", "finished"),
        ("failed", "verify", "failed"),
        ("rollback", "rollback:restore-config", "finished"),
    ]


def test_bars_sit_on_the_time_axis() -> None:
    page = render(MIGRATED, [NodeSummary("w1", "migrated")])
    # 40 s of node time: ticks every 5 s up to 40 s, the drain from 1 s to 21 s is half the chart wide.
    assert re.findall(r'class="tick"[^>]*>([^<]+)<', page) == [f"{n}s" for n in range(0, 45, 5)]
    drain = re.search(r'data-step="drain"[^>]* x="([\d.]+)"[^>]* width="([\d.]+)"', page)
    assert drain is not None
    assert abs(float(drain.group(2)) - 720 * 20 / 40) < 0.2
    assert abs(float(drain.group(1)) - (230 + 720 * 1 / 40)) < 0.2


def test_findings_evictions_canary_and_rollback_are_shown() -> None:
    page = render(MIGRATED + ROLLED_BACK)
    w1, w2 = page.split('data-node="w2"')
    assert "pause image moved to cri-dockerd" in w1
    assert "2 pod(s) evicted" in w1 and "<code>demo/web-1</code>" in w1
    assert "<th>ip</th><td>10.244.1.7</td>" in w1 and "<th>ready</th><td>true</td>" in w1
    assert "<h3>Rollback</h3><p>None.</p>" in w1
    assert "verify failed</strong>: node not healthy" in w2
    assert "<th>phase</th><td>Pending</td>" in w2  # the canary of a failed verify too
    assert "The rollback completed: back on dockershim." in w2
    assert "No drain was recorded." in w2


def test_the_plan_of_a_journal_an_earlier_build_wrote_is_shown() -> None:
    # Builds up to 41920b0 kept the plan under "change_set", its warnings as "notes".
    old = {"change_set": {"noop_reason": "the kubelet already uses cri-dockerd", "notes": ["a <note>"]}}
    page = render([at("w1", "preflight", "started", 0), at("w1", "preflight", "finished", 1, old)])
    assert "nothing to do</strong>: the kubelet already uses cri-dockerd" in page
    assert "plan note</strong>: a &lt;note&gt;" in page


def test_a_node_without_canary_or_steps_says_so() -> None:
    summaries = [NodeSummary("w1", "preflight started"), NodeSummary("w9", "not-started")]
    page = render([at("w1", "preflight", "started", 0)], summaries)
    assert "No canary was recorded by verify." in page
    assert 'data-result="interrupted"' in page
    assert "No step was recorded for this node." in page


def test_every_journal_string_is_escaped() -> None:
    evil = '<img src=x onerror="alert(1)">'
    entries = [
        at(evil, "preflight", "started", 0),
        at(evil, "preflight", "failed", 1, {"message": evil, "canary": {evil: evil}}),
    ]
    page = render_html(run_id=evil, cluster=evil, summaries=[NodeSummary(evil, "refused", evil)], entries=entries)
    assert "<img" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_the_page_is_self_contained() -> None:
    page = render(MIGRATED + ROLLED_BACK)
    assert page.startswith("<!DOCTYPE html>")
    for outside in ("<script", "<link", "src=", "url(", "@import", "http://", "https://www", "//cdn"):
        assert outside not in page, outside


def test_findings_as_this_build_journals_them_show_severity_words_and_hint() -> None:
    pause = warning("pause-image-default", "cri-dockerd will use <its> default", subject=Subject.of_node("w1"))
    message = "Docker Engine is not active; cri-docker.socket is not active"
    failed: dict[str, Any] = {
        "message": "Docker Engine is not active; cri-docker.socket is not active",
        "findings": [
            error("docker-inactive", "Docker Engine is not active", hint="systemctl start docker").to_json(),
            error("cri-dockerd-socket-inactive", "cri-docker.socket is not active").to_json(),
        ],
    }
    page = render(
        [
            at("w1", "preflight", "started", 0),
            at("w1", "preflight", "finished", 1, {"plan": {"warnings": [pause.to_json()]}}),
            at("w1", "verify", "failed", 2, failed),
        ]
    )
    assert '<li class="warning"><span class="severity">warning</span> <strong>plan note</strong>: ' in page
    assert "cri-dockerd will use &lt;its&gt; default" in page
    # One item per finding, not the joined message once more.
    assert "verify failed</strong>: Docker Engine is not active <span class=\"hint\">systemctl start docker" in page
    assert "verify failed</strong>: cri-docker.socket is not active</li>" in page
    assert message not in page
