"""Findings as text and JSON, and the migrate guard's one screen.

Matrix: a finding's line and JSON shape for each subject kind; the guard screen names what breaks, the
nodes, the workloads (capped with a count) and both ways on, and stays within one screen for 500 workloads
and 300 nodes; the migrate options record keeps the opt-in across a resume.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shimshift.cli.findings import LIST_CAP, findings_json, findings_text, guard_screen
from shimshift.core.errors import Refusal, with_node
from shimshift.core.findings import Finding, Severity, Subject, error, recorded_failure, warning
from shimshift.core.hardened_pods import HardenedScan, decide_guard
from shimshift.core.procedures.migration import StepFailed
from shimshift.orchestrator.session import MigrateOptions, _options_from_record, _preflight_findings

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


def test_a_check_without_a_subject_is_placed_on_its_node() -> None:
    placed = error("docker-inactive", "cri-dockerd is not installed", hint="install it").about(Subject.of_node("w1"))
    assert placed.blocking and str(placed) == "node w1: error: cri-dockerd is not installed (install it)"
    assert placed.to_json()["subject"] == {"kind": "node", "name": "w1"}
    elsewhere = warning("x", "y", subject=Subject.of_pod("ns", "p"))
    assert elsewhere.about(Subject.of_node("w1")) is elsewhere  # a finding keeps its own subject


@pytest.mark.parametrize(
    "finding",
    [
        Finding(Severity.ERROR, "refused", "bad value", Subject.of_file("/etc/f", 4, node="w1"), "fix it", "--x"),
        Finding(Severity.WARNING, "plan-note", "words", Subject.of_workload("Deployment", "ns", "web")),
        Finding(Severity.ERROR, "step-failed", "no subject"),
    ],
)
def test_findings_survive_the_journal(finding: Finding) -> None:
    assert Finding.from_json(json.loads(json.dumps(finding.to_json()))) == finding


def test_a_journal_of_an_older_build_keeps_words_only() -> None:
    assert recorded_failure({"message": "drain did not finish"}) == [
        Finding(Severity.ERROR, "recorded-message", "drain did not finish")
    ]
    assert recorded_failure({"message": "m", "findings": [error("drain-pods-left", "m").to_json()]}) == [
        error("drain-pods-left", "m")
    ]
    assert recorded_failure({}) == []


def test_a_refusal_is_a_finding_with_its_place_and_hint() -> None:
    refusal = Refusal("bad flag", hint="fix it", file="/etc/default/kubelet", line=3, node="w1", code="x-bad")
    finding = refusal.finding
    assert (finding.code, finding.file, finding.line, finding.hint, finding.blocking) == (
        "x-bad",
        "/etc/default/kubelet",
        3,
        "fix it",
        True,
    )
    assert str(finding.subject) == "node w1, /etc/default/kubelet:3" and str(refusal).startswith(str(finding.subject))
    assert Refusal("no nodes named").finding.code == "refused"
    assert Refusal("x", node="w1").finding.subject == Subject.of_node("w1")


def test_plan_keeps_a_refusal_s_own_code_and_place_and_names_the_others_preflight_refused() -> None:
    coded = Refusal("cgroup drivers differ", hint="set it", file="/var/lib/kubelet/config.yaml", line=7,
                    code="cgroup-driver-mismatch")
    (finding,) = _preflight_findings(coded, "w1")
    assert (finding.code, finding.file, finding.line, finding.hint) == (
        "cgroup-driver-mismatch",
        "/var/lib/kubelet/config.yaml",
        7,
        "set it",
    )
    (ssh,) = _preflight_findings(Refusal("SSH to w1:22: timed out", node="w1"), "w1")
    assert (ssh.code, ssh.subject) == ("preflight-refused", Subject.of_node("w1"))
    (step,) = _preflight_findings(StepFailed("preflight", error("no-cni-config", "no CNI")), "w1")
    assert (step.code, step.subject) == ("no-cni-config", Subject.of_node("w1"))


def test_a_refusal_placed_on_its_node_keeps_its_code_place_and_hint() -> None:
    def refuse() -> None:
        raise Refusal("no CRI API in common", hint="install another", file="/etc/f", line=2, code="cri-api-skew")

    with pytest.raises(Refusal) as caught:
        with_node("w1", refuse)
    placed = caught.value
    assert (placed.code, placed.node, placed.file, placed.line, placed.hint) == (
        "cri-api-skew",
        "w1",
        "/etc/f",
        2,
        "install another",
    )
    assert with_node("w1", lambda: 7) == 7
