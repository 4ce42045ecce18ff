"""Nodes that must not be migrated, or must come back: preflight refusal, a cri-dockerd that breaks
after preflight, a cri-dockerd that lost its network plugin (verify's canary), an unknown SSH host key,
and the dry run that changes nothing.

Each test restores what it broke and leaves every node on dockershim.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from .helpers import (
    assert_on_cri_dockerd,
    assert_on_dockershim,
    back_to_dockershim,
    canary_pods,
    drop_the_network_plugin,
    is_ready,
    journal_has,
    kubectl,
    kubelet_cmdline,
    mend_the_network_plugin,
    node_json,
    report_nodes,
    run_breaking_after,
    shimshift,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e


def test_stopped_cri_dockerd_is_refused_and_the_others_migrate(lab: LabInfo, tmp_path: Path) -> None:
    broken, healthy = lab.workers[0].name, lab.workers[1].name
    journal = tmp_path / "journal.sqlite"
    lab.exec(broken, ["systemctl", "stop", "cri-docker.socket", "cri-docker.service"], check=True)
    try:
        result = shimshift(
            lab,
            journal,
            "migrate",
            broken,
            healthy,
            "--max-failures",
            "2",
            "--force",
            "--delete-emptydir-data",
            "--report-dir",
            str(tmp_path / "reports"),
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"{broken}: refused" in result.stderr
        assert_on_cri_dockerd(lab, healthy)
        assert_on_dockershim(lab, broken)
        report = json.loads(next((tmp_path / "reports").glob("*.json")).read_text())
        statuses = {node["node"]: node["status"] for node in report["nodes"]}
        assert statuses == {broken: "refused", healthy: "migrated"}
        assert not journal_has(journal, node=broken, step="cordon", phase="started")
    finally:
        lab.exec(broken, ["systemctl", "start", "cri-docker.socket"], check=True)
        back_to_dockershim(lab, journal, healthy)


def migrate_breaking_after(
    lab: LabInfo, journal: Path, args: list[str], *, node: str, step: str, breaks: Callable[[], object]
) -> tuple[int, str, str]:
    """Run `shimshift migrate ARGS`, freezing it after NODE's STEP to call ``breaks`` (run_breaking_after)."""
    return run_breaking_after(lab, journal, ["migrate", *args], node=node, step=step, breaks=breaks)


def test_cri_dockerd_broken_after_preflight_rolls_back(lab: LabInfo, tmp_path: Path) -> None:
    node = lab.workers[0].name
    journal = tmp_path / "journal.sqlite"
    try:
        # Break cri-dockerd while the run is frozen right after preflight. Removing only its socket file
        # would not do: the plan restarts cri-docker.service, and the socket unit is PartOf it, so the
        # restart recreates the socket. A binary gone from under its unit (the 203/EXEC of
        # docs/runtime-facts.md) stays broken.
        returncode, out, err = migrate_breaking_after(
            lab,
            journal,
            [node, "--force", "--delete-emptydir-data"],
            node=node,
            step="preflight",
            breaks=lambda: lab.exec(node, ["mv", "/usr/bin/cri-dockerd", "/usr/bin/cri-dockerd.away"], check=True),
        )
    finally:
        lab.exec(node, ["mv", "/usr/bin/cri-dockerd.away", "/usr/bin/cri-dockerd"], check=False)
        lab.exec(node, ["systemctl", "restart", "cri-docker.socket", "cri-docker.service"], check=False)
    try:
        assert returncode == 1, out + err
        assert f"{node}: rolled-back" in err
        assert_on_dockershim(lab, node)
        body = node_json(lab, node)
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in body["status"]["conditions"])
    finally:
        back_to_dockershim(lab, journal, node)


def test_cri_dockerd_without_its_network_plugin_fails_the_canary_and_rolls_back(
    lab: LabInfo, tmp_path: Path
) -> None:
    """cri-dockerd#73/#93: without --network-plugin=cni its sandboxes do not get the pod network. The
    node is Ready and lists every sandbox; only a pod started after the change shows it."""
    node = lab.workers[0].name
    journal = tmp_path / "journal.sqlite"
    reports = tmp_path / "reports"

    try:
        # After the restart step proved the planned command line runs: a later change is what verify sees.
        returncode, out, err = migrate_breaking_after(
            lab,
            journal,
            [node, "--force", "--delete-emptydir-data", "--report-dir", str(reports), "--canary-timeout", "30"],
            node=node,
            step="restart-cri-dockerd",
            breaks=lambda: drop_the_network_plugin(lab, node),
        )
    finally:
        mend_the_network_plugin(lab, node)
    try:
        assert returncode == 1, out + err
        assert f"{node}: rolled-back" in err, err
        canary = report_nodes(reports)[node]["canary"]
        assert canary["state"] == "failed", canary
        # The lab's Docker has no bridge network ("bridge": "none" in daemon.json): a sandbox without
        # the network plugin gets no address at all there; with a docker0 it would get a 172.17.x one.
        assert "without an IP address" in canary["message"] or "Docker's bridge" in canary["message"], canary
        assert canary["deleted"] is True
        assert canary_pods(lab) == []
        assert_on_dockershim(lab, node)  # also: not cordoned
        assert is_ready(node_json(lab, node))
    finally:
        back_to_dockershim(lab, journal, node)


def test_unknown_host_key_is_refused(lab: LabInfo, tmp_path: Path) -> None:
    node = lab.workers[0].name
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    before = kubelet_cmdline(lab, node)
    result = shimshift(
        lab,
        tmp_path / "journal.sqlite",
        "migrate",
        node,
        "--force",
        "--delete-emptydir-data",
        "--known-hosts",
        str(empty),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "host key" in (result.stdout + result.stderr).lower()
    assert kubelet_cmdline(lab, node) == before
    assert not node_json(lab, node)["spec"].get("unschedulable", False)


def test_plan_predicts_and_changes_nothing(lab: LabInfo, tmp_path: Path) -> None:
    node = lab.workers[0].name
    flags_before = lab.exec(node, ["cat", "/var/lib/kubelet/kubeadm-flags.env"]).stdout
    result = shimshift(
        lab, tmp_path / "journal.sqlite", "plan", node, "--force", "--delete-emptydir-data", "-o", "json"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (plan,) = json.loads(result.stdout)
    paths = [item["path"] for item in plan["files"]]
    assert "/var/lib/kubelet/kubeadm-flags.env" in paths
    assert plan["annotation"] == {"before": "/var/run/dockershim.sock", "after": "unix:///var/run/cri-dockerd.sock"}
    on_node = json.loads(kubectl(lab, "get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json"))
    stays: set[str] = set()
    goes: set[str] = set()
    for pod in on_node["items"]:
        name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        owners = pod["metadata"].get("ownerReferences", [])
        mirror = "kubernetes.io/config.mirror" in (pod["metadata"].get("annotations") or {})
        (stays if mirror or any(o["kind"] == "DaemonSet" for o in owners) else goes).add(name)
    # The dry run names exactly the pods a drain with these flags would evict, and leaves the rest.
    assert set(plan["drain"]["evict"]) == goes, plan["drain"]
    assert set(plan["drain"]["ignored"]) == stays, plan["drain"]
    assert lab.exec(node, ["cat", "/var/lib/kubelet/kubeadm-flags.env"]).stdout == flags_before
    assert not node_json(lab, node)["spec"].get("unschedulable", False)
    assert_on_dockershim(lab, node)
