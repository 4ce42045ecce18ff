"""On the lab (kubelet 1.23.17 everywhere, the `restricted` Deployment running): the guard.

Matrix: `audit -o json` lists the restricted Deployment and every node as refusing it on cri-dockerd;
`migrate --all` exits 2 naming every node and the Deployment, and changes nothing: every node exactly as
found (kubelet command line, files, annotation, cri-dockerd, Ready, not cordoned), no run in the journal,
no report, the Deployment's pods still running where they ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from shimshift.lab import render

from .conftest import restore_demo_workloads
from .helpers import DEMO, cli_env, kubectl, recorded_runs, shimshift

if TYPE_CHECKING:
    from pathlib import Path

    from shimshift.lab.model import LabInfo
    from shimshift.lab.state import NodeStateGuard

pytestmark = pytest.mark.e2e
KEEPS_RESTRICTED_DEMO = True  # this module is about it (see conftest)
RESTRICTED = f"Deployment {DEMO}/{render.RESTRICTED_DEPLOYMENT}"


def restricted_pods(lab: LabInfo) -> list[tuple[str, str, str]]:
    selector = f"app={render.RESTRICTED_DEPLOYMENT}"
    pods = json.loads(kubectl(lab, "-n", DEMO, "get", "pods", "-l", selector, "-o", "json"))["items"]
    return sorted((p["metadata"]["name"], p["spec"].get("nodeName", ""), p["status"]["phase"]) for p in pods)


@pytest.fixture(scope="module")
def with_restricted(lab: LabInfo) -> None:
    # A lab built before the restricted Deployment existed gets it here (apply is a no-op otherwise).
    restore_demo_workloads(lab)


@pytest.mark.usefixtures("with_restricted")
def test_audit_names_the_restricted_deployment(lab: LabInfo) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shimshift.cli.main", "audit", "-o", "json", "--kubeconfig", str(lab.kubeconfig)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    hardened = json.loads(result.stdout)["hardenedPods"]
    ours = [w for w in hardened["workloads"] if (w["namespace"], w["name"]) == (DEMO, render.RESTRICTED_DEPLOYMENT)]
    assert [(w["kind"], w["template"], w["pods"], w["reasons"]) for w in ours] == [
        ("Deployment", True, 2, ["NoNewPrivs"])
    ]
    assert sorted(hardened["refusingNodes"]) == sorted(node.name for node in lab.nodes)


@pytest.mark.usefixtures("with_restricted")
def test_migrate_all_refuses_every_node_and_changes_nothing(
    lab: LabInfo, tmp_path: Path, node_state: NodeStateGuard
) -> None:
    for node in lab.nodes:
        node_state.capture(node.name)
    pods_before = restricted_pods(lab)
    assert [phase for _, _, phase in pods_before] == ["Running", "Running"]
    journal = tmp_path / "journal.sqlite"
    reports = tmp_path / "reports"
    result = shimshift(
        lab, journal, "migrate", "--all", "--force", "--delete-emptydir-data", "--report-dir", str(reports)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    screen = result.stderr
    assert f"refused, nothing changed: {len(lab.nodes)} node(s) with a kubelet before 1.24" in screen
    for node in lab.nodes:
        assert f"{node.name} (v1.23.17)" in screen
    assert f"{RESTRICTED}: 2 pod(s) now (template); app (allowPrivilegeEscalation: false)" in screen
    assert "--accept-refused-hardened-pods" in screen
    for node in lab.nodes:
        node_state.assert_as_found(node.name)
    assert not reports.exists()
    assert recorded_runs(journal) == []
    assert restricted_pods(lab) == pods_before
