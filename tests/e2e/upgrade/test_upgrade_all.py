"""`shimshift upgrade --all --to 1.24.17` on a fresh 1.23.17 dockershim lab, end to end.

Matrix: every node Ready at v1.24.17 on cri-dockerd and the API server at v1.24.17; the `restricted`
Deployment (allowPrivilegeEscalation: false, PDB minAvailable 1) has every pod Running; neither PDB
was ever violated (ready replicas watched from outside); each node drained once; DaemonSet containers
not restarted; verify's canary ran *with* allowPrivilegeEscalation: false on every node; flannel kept its
containers and kube-proxy runs the target's image (kubeadm rolls it); from a pod on every node the Services
still resolve through CoreDNS and answer through kube-proxy, each pod's address in its node's podCIDR.

The lab cannot go back to 1.23 (kubeadm upgrade apply is not undone), so this module runs on a lab it
brings up itself and takes down afterwards; it comes last in the session (tests/e2e/upgrade sorts after
every other e2e directory), and the next session's `lab` fixture rebuilds the lab it finds gone.
"""

from __future__ import annotations

import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shimshift.lab import render
from tests.e2e.migrate.helpers import (
    ReadyReplicasWatch,
    assert_api_server_runs,
    assert_every_node_ready_on_cri_dockerd_at,
    assert_no_pdb_violated,
    assert_restricted_pods_run,
    canary_pods,
    daemonset_containers,
    recorded_runs,
    report_nodes,
    shimshift,
)
from tests.e2e.network import (
    assert_flannel_kept_and_kube_proxy_runs,
    assert_network_works,
    system_daemonset_containers,
)
from tests.e2e.upgrade.conftest import TARGET, UpgradeLab

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e


@dataclass
class Upgraded:
    lab: LabInfo
    journal: Path
    reports: Path
    result: subprocess.CompletedProcess[str]
    minimum: dict[str, int]
    daemonset_before: dict[str, tuple[str, int]]
    daemonset_after: dict[str, tuple[str, int]]
    system_before: dict[str, tuple[str, int]]
    system_after: dict[str, tuple[str, int]]


@pytest.fixture(scope="module")
def upgraded(upgrade_lab: UpgradeLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgraded]:
    lab = upgrade_lab.lab
    work = tmp_path_factory.mktemp("upgrade-all")
    journal = work / "journal.sqlite"
    before = daemonset_containers(lab)
    system_before = system_daemonset_containers(lab)
    with ReadyReplicasWatch(lab, deployments=("web", render.RESTRICTED_DEPLOYMENT)) as watch:
        result = shimshift(lab, journal, "upgrade", "--all", *upgrade_lab.upgrade_args(), timeout=2400)
    yield Upgraded(
        lab,
        journal,
        work / "reports",
        result,
        dict(watch.minimums),
        before,
        daemonset_containers(lab),
        system_before,
        system_daemonset_containers(lab),
    )


def test_every_node_is_ready_at_the_target_on_cri_dockerd(upgraded: Upgraded) -> None:
    assert upgraded.result.returncode == 0, upgraded.result.stdout + upgraded.result.stderr
    assert_every_node_ready_on_cri_dockerd_at(upgraded.lab, TARGET)


def test_the_api_server_runs_the_target(upgraded: Upgraded) -> None:
    assert_api_server_runs(upgraded.lab, TARGET)


def test_every_restricted_pod_runs(upgraded: Upgraded) -> None:
    assert_restricted_pods_run(upgraded.lab)


def test_no_pdb_was_violated(upgraded: Upgraded) -> None:
    assert_no_pdb_violated(upgraded.minimum)


def test_each_node_was_drained_once(upgraded: Upgraded) -> None:
    [run] = recorded_runs(upgraded.journal)
    with sqlite3.connect(upgraded.journal) as db:
        rows = db.execute(
            "SELECT node, COUNT(*) FROM steps WHERE run_id = ? AND step = 'drain' AND phase = 'started' GROUP BY node",
            (run.id,),
        ).fetchall()
    assert dict(rows) == {node.name: 1 for node in upgraded.lab.nodes}


def test_flannel_kept_its_containers_and_kube_proxy_runs_the_target(upgraded: Upgraded) -> None:
    assert_flannel_kept_and_kube_proxy_runs(upgraded.lab, upgraded.system_before, upgraded.system_after, TARGET)


def test_services_resolve_and_answer_from_every_node(upgraded: Upgraded) -> None:
    assert upgraded.result.returncode == 0
    assert_network_works(upgraded.lab)


def test_daemonset_containers_were_not_restarted(upgraded: Upgraded) -> None:
    assert upgraded.daemonset_before and upgraded.daemonset_after == upgraded.daemonset_before


def test_the_canary_ran_with_allow_privilege_escalation_false_everywhere(upgraded: Upgraded) -> None:
    nodes = report_nodes(upgraded.reports)
    for node in upgraded.lab.nodes:
        canary = nodes[node.name]["canary"]
        assert canary["state"] == "running" and canary["omitted"] == [], canary
    assert canary_pods(upgraded.lab) == []
