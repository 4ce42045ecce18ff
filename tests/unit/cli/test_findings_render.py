"""Findings as text and JSON, and the migrate guard's one screen.

Matrix: a finding's line and JSON shape for each subject kind; the guard screen names what breaks, the
nodes, the workloads (capped with a count) and both ways on, and stays within one screen for 500 workloads
and 300 nodes; the migrate options record keeps the opt-in across a resume.
"""

from __future__ import annotations

from typing import Any

from shimshift.cli.findings import LIST_CAP, findings_json, findings_text, guard_screen
from shimshift.core.findings import Finding, Severity, Subject, node_problems
from shimshift.core.hardened_pods import HardenedScan, decide_guard
from shimshift.orchestrator.session import MigrateOptions, _options_from_record

HARDENED_CONTAINER = {"name": "app", "securityContext": {"allowPrivilegeEscalation": False}}


def hardened_deployments(count: int) -> list[Any]:
    scan = HardenedScan()
    for index in range(count):
        scan.add_workload(
            "Deployment",
            {
                "metadata": {"name": f"app{index:03}", "namespace": "prod"},
                "spec": {"template": {"spec": {"containers": [HARDENED_CONTAINER]}}},
            },
        )
    return scan.result()


def test_finding_text_and_json_per_subject() -> None:
    findings = [
        Finding(Severity.ERROR, "a", "node bad", Subject.of_node("w1"), "fix"),
        Finding(Severity.WARNING, "b", "pod odd", Subject.of_pod("ns", "p", node="w2")),
        Finding(Severity.ERROR, "c", "refused", Subject.of_workload("Deployment", "ns", "web"), "", "x"),
        Finding(Severity.WARNING, "d", "old flag", Subject.of_file("/etc/f", 4)),
        Finding(Severity.WARNING, "e", "somewhere"),
    ]
    assert findings_text(findings) == [
        "node w1: error: node bad (fix)",
        "node w2, pod ns/p: warning: pod odd",
        "Deployment ns/web: error: refused",
        "/etc/f:4: warning: old flag",
        "-: warning: somewhere",
    ]
    assert findings_json(findings)[1] == {
        "severity": "warning",
        "code": "b",
        "message": "pod odd",
        "subject": {"kind": "pod", "name": "ns/p", "node": "w2"},
        "hint": "",
        "setting": None,
    }
    assert findings_json(findings)[3]["subject"] == {"kind": "file", "name": "/etc/f", "line": 4}


def test_guard_screen_says_everything_on_one_screen() -> None:
    decision = decide_guard(
        nodes=[(f"node{i}", "v1.23.17") for i in range(300)], workloads=hardened_deployments(500), accepted=False
    )
    text = guard_screen(decision)
    lines = text.splitlines()
    assert len(lines) <= 40 and max(map(len, lines)) <= 120
    assert "refused, nothing changed: 300 node(s)" in text and "500 hardened workload(s)" in text
    assert "allowPrivilegeEscalation: false" in text and "NoNewPrivs" in text
    assert "node0 (v1.23.17)" in text and "and 290 more" in text
    assert "Deployment prod/app000: no pod now (template); app (allowPrivilegeEscalation: false)" in text
    assert f"Deployment prod/app{LIST_CAP:03}" not in text
    assert f"... and {500 - LIST_CAP} more (shimshift audit -o json lists them all)" in text
    assert "1.24 or later in the same maintenance window" in text
    assert "--accept-refused-hardened-pods" in text


def test_opt_in_survives_the_journal_record() -> None:
    for accepted in (True, False):
        options = MigrateOptions(all_nodes=True, accept_refused_hardened_pods=accepted)
        record = options.to_record()
        assert record["accept_refused_hardened_pods"] is accepted
        assert _options_from_record(record) == options
    assert _options_from_record({}).accept_refused_hardened_pods is False


def test_node_problems_are_blocking_findings_about_the_node() -> None:
    (finding,) = node_problems("w1", ["cri-dockerd is not installed"], code="preflight-refused", hint="install it")
    assert finding.blocking and str(finding) == "node w1: error: cri-dockerd is not installed (install it)"
    assert finding.to_json()["subject"] == {"kind": "node", "name": "w1"}
