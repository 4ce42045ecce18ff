"""Reports from journal entries: per-step durations, interrupted steps, JSON and Markdown shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from shimshift.cli.report import NodeSummary, TimelineEntry, render_json, render_markdown, step_durations
from shimshift.core.findings import error

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def entry(node: str, step: str, phase: str, seconds: float) -> TimelineEntry:
    return TimelineEntry(node, step, phase, T0 + timedelta(seconds=seconds))


ENTRIES = [
    entry("w1", "preflight", "started", 0),
    entry("w1", "preflight", "finished", 1.5),
    entry("w1", "drain", "started", 2),
    entry("w1", "drain", "failed", 32),
    entry("w2", "cordon", "started", 5),
]


def test_durations_and_interrupted_steps() -> None:
    assert step_durations(ENTRIES[:4]) == [("preflight", "finished", 1.5), ("drain", "failed", 30.0)]
    assert step_durations(ENTRIES[4:]) == [("cordon", "interrupted", None)]


def test_json_report_has_each_node_and_its_timeline() -> None:
    summaries = [NodeSummary("w1", "failed", "PDB demo/web blocks"), NodeSummary("w2", "interrupted")]
    report = json.loads(render_json(run_id="r1", cluster="https://cp:6443", summaries=summaries, entries=ENTRIES))
    assert [node["node"] for node in report["nodes"]] == ["w1", "w2"]
    assert report["nodes"][0]["steps"][1] == {"step": "drain", "result": "failed", "seconds": 30.0}
    assert len(report["nodes"][0]["timeline"]) == 4
    assert report["nodes"][0]["findings"] == [] and report["nodes"][1]["findings"] == []  # no failure recorded


def test_json_report_names_each_failure_s_findings_with_their_codes() -> None:
    blocked = error("drain-blocked-by-budget", "demo/web-1 blocked by PodDisruptionBudget demo/web")
    entries = [
        entry("w1", "drain", "started", 0),
        TimelineEntry("w1", "drain", "failed", T0, {"message": blocked.message, "findings": [blocked.to_json()]}),
        entry("w2", "preflight", "started", 0),
        TimelineEntry("w2", "preflight", "failed", T0, {"message": "an older build's words"}),
    ]
    summaries = [NodeSummary("w1", "failed"), NodeSummary("w2", "refused")]
    nodes = json.loads(render_json(run_id="r1", cluster="c", summaries=summaries, entries=entries))["nodes"]
    assert [(item["step"], item["code"], item["message"]) for item in nodes[0]["findings"]] == [
        ("drain", "drain-blocked-by-budget", blocked.message)
    ]
    assert [(item["code"], item["message"]) for item in nodes[1]["findings"]] == [
        ("recorded-message", "an older build's words")
    ]


def test_markdown_report_escapes_cells() -> None:
    text = render_markdown(run_id="r1", cluster="c", summaries=[NodeSummary("w1", "failed", "a|b")], entries=ENTRIES)
    assert "| w1 | failed | a\\|b |" in text
    assert "| drain | failed | 30.0 |" in text


def test_opt_in_in_both_reports() -> None:
    options = {
        "accept_refused_hardened_pods": True,
        "accepted_hardened_workloads": ["Deployment shimshift-demo/restricted"],
    }
    summaries = [NodeSummary("w1", "migrated")]
    data = json.loads(render_json(run_id="r1", cluster="c", summaries=summaries, entries=ENTRIES, options=options))
    assert data["options"]["accept_refused_hardened_pods"] is True
    text = render_markdown(run_id="r1", cluster="c", summaries=summaries, entries=ENTRIES, options=options)
    assert "**Opt-in `--accept-refused-hardened-pods`**" in text
    assert "`Deployment shimshift-demo/restricted`" in text
    plain = {"accept_refused_hardened_pods": False}
    without = render_markdown(run_id="r1", cluster="c", summaries=summaries, entries=ENTRIES, options=plain)
    assert "Opt-in" not in without


CANARY = {
    "pod": "kube-system/shimshift-canary-w1",
    "image": "registry.k8s.io/pause:3.6",
    "state": "running",
    "phase": "Running",
    "ip": "10.244.1.9",
    "verdict_after_s": 2.5,
    "deleted": True,
    "message": "running on 10.244.1.9",
    "note": "allowPrivilegeEscalation: false left out of the canary: kubelet v1.23.17 on cri-dockerd refuses it",
}


def test_reports_show_the_canary_of_the_last_verify() -> None:
    failed_first = {**CANARY, "state": "failed", "message": "bridge"}
    entries = [
        entry("w1", "verify", "started", 0),
        TimelineEntry("w1", "verify", "failed", T0 + timedelta(seconds=3), {"canary": failed_first}),
        entry("w1", "verify", "started", 4),
        TimelineEntry("w1", "verify", "finished", T0 + timedelta(seconds=7), {"canary": CANARY}),
        entry("w2", "cordon", "started", 5),
    ]
    summaries = [NodeSummary("w1", "migrated"), NodeSummary("w2", "interrupted")]
    report = json.loads(render_json(run_id="r1", cluster="c", summaries=summaries, entries=entries))
    assert report["nodes"][0]["canary"] == CANARY
    assert report["nodes"][1]["canary"] is None
    text = render_markdown(run_id="r1", cluster="c", summaries=summaries, entries=entries)
    assert (
        "Canary `kube-system/shimshift-canary-w1` (registry.k8s.io/pause:3.6): running, phase Running, "
        "IP 10.244.1.9, verdict after 2.5 s, deleted. running on 10.244.1.9"
    ) in text
    assert "Note: allowPrivilegeEscalation: false left out of the canary" in text
    assert text.count("Canary ") == 1
