"""`shimshift migrate --all` on the lab, end to end, then the proofs the migration issue asks for.

Matrix: every node (control plane included) migrated with the PDB respected and DaemonSet containers
untouched; `verify` agrees; the reports exist next to the journal (Markdown, and HTML with every node
and step); kubelet 1.24.17 runs on the migrated files unchanged;
`rollback` brings every node back to dockershim (which also resets the lab for the next module); verify's
canary ran on every node (and answered exec) and is gone, and cri-dockerd's streaming server listens on
loopback only; from a pod on every node the Services still resolve through CoreDNS and answer through
kube-proxy, the pod's address is in its node's podCIDR, and the kube-proxy and flannel pods kept their
containers.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from shimshift.core.steps import kubelet_args
from shimshift.lab import render
from tests.e2e.network import assert_network_works, system_daemonset_containers

from .helpers import (
    DEMO,
    KUBECTL,
    ReadyReplicasWatch,
    assert_on_cri_dockerd,
    back_to_dockershim,
    canary_pods,
    cri_dockerd_listeners,
    daemonset_containers,
    is_ready,
    kubectl,
    kubelet_cmdline,
    node_json,
    report_nodes,
    shimshift,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e
KUBELET_124 = Path(os.environ.get("SHIMSHIFT_CACHE", "/var/cache/shimshift")) / "bin" / "v1.24.17" / "kubelet"


class Migrated:
    def __init__(self, lab: LabInfo, journal: Path, reports: Path) -> None:
        self.lab, self.journal, self.reports = lab, journal, reports
        self.result: subprocess.CompletedProcess[str] | None = None
        self.min_ready: int | None = None
        self.daemonset_before: dict[str, tuple[str, int]] = {}
        self.daemonset_after: dict[str, tuple[str, int]] = {}
        self.system_before: dict[str, tuple[str, int]] = {}
        self.system_after: dict[str, tuple[str, int]] = {}


@pytest.fixture(scope="module")
def migrated(lab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    work = tmp_path_factory.mktemp("migrate-all")
    # No --report-dir: the reports must land next to the journal by default.
    state = Migrated(lab, work / "journal.sqlite", work / "reports")
    state.daemonset_before = daemonset_containers(lab)
    state.system_before = system_daemonset_containers(lab)
    with ReadyReplicasWatch(lab) as watch:
        state.result = shimshift(
            lab,
            state.journal,
            "migrate",
            "--all",
            "--force",
            "--delete-emptydir-data",
        )
    state.min_ready = watch.minimum
    state.daemonset_after = daemonset_containers(lab)
    state.system_after = system_daemonset_containers(lab)
    yield state
    for node in lab.nodes:
        back_to_dockershim(lab, state.journal, node.name)


def test_every_node_runs_on_cri_dockerd(migrated: Migrated) -> None:
    assert migrated.result is not None
    assert migrated.result.returncode == 0, migrated.result.stdout + migrated.result.stderr
    for node in migrated.lab.nodes:
        assert_on_cri_dockerd(migrated.lab, node.name)


def test_pdb_never_violated(migrated: Migrated) -> None:
    # The demo Deployment has 3 replicas and a PodDisruptionBudget with minAvailable 2.
    assert migrated.min_ready is not None and migrated.min_ready >= 2, migrated.min_ready


def test_daemonset_containers_not_restarted(migrated: Migrated) -> None:
    assert migrated.daemonset_before, "the lab has no DaemonSet pods to watch"
    assert migrated.daemonset_after == migrated.daemonset_before


def test_kube_proxy_and_flannel_kept_their_containers(migrated: Migrated) -> None:
    assert len(migrated.system_before) == 2 * len(migrated.lab.nodes), migrated.system_before
    assert migrated.system_after == migrated.system_before


def test_services_resolve_and_answer_from_every_node(migrated: Migrated) -> None:
    assert migrated.result is not None and migrated.result.returncode == 0
    assert_network_works(migrated.lab)


def test_verify_agrees(migrated: Migrated) -> None:
    names = [node.name for node in migrated.lab.nodes]
    result = shimshift(migrated.lab, migrated.journal, "verify", *names)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("verified") == len(names)


def test_report_has_a_timeline_per_node(migrated: Migrated) -> None:
    reports = sorted(migrated.reports.glob("shimshift-*.md"))
    assert reports, list(migrated.reports.iterdir())
    text = reports[-1].read_text()
    for node in migrated.lab.nodes:
        assert f"## {node.name}" in text
    assert "| restart-kubelet | finished |" in text


def test_html_report_has_every_node_and_step_and_is_announced(migrated: Migrated) -> None:
    assert migrated.result is not None
    (html,) = migrated.reports.glob("shimshift-*.html")
    assert f"report: {html}" in migrated.result.stdout
    assert not (migrated.journal.parent / "shimshift-reports").exists()  # never the working directory
    page = html.read_text()
    for node in migrated.lab.nodes:
        section = page.split(f'data-node="{node.name}"', 1)[1].split("</section>", 1)[0]
        for step in ("preflight", "cordon", "drain", "write-config", "annotate", "restart-kubelet", "verify"):
            assert f'data-step="{step}" data-result="finished"' in section, (node.name, step)
        assert 'data-step="uncordon" data-result="finished"' in section, node.name


def test_the_canary_ran_and_was_deleted_on_every_node(migrated: Migrated) -> None:
    nodes = report_nodes(migrated.reports)
    for node in migrated.lab.nodes:
        canary = nodes[node.name]["canary"]
        assert canary is not None, nodes[node.name]
        assert canary["pod"] == f"kube-system/shimshift-canary-{node.name}"
        assert canary["state"] == "running" and canary["phase"] == "Running", canary
        assert canary["ip"] and canary["ip"] not in {"", None}
        # The lab's kubelets are 1.23: the one field they refuse is left out, and the report says so.
        # This module runs without the `restricted` Deployment: no workload needs the one field a 1.23
        # kubelet refuses, so the canary leaves it out without the opt-in, and the report says why.
        assert canary["omitted"] == ["allowPrivilegeEscalation"], canary
        assert "no workload of the cluster set it" in canary["note"], canary
        # exec through API server, kubelet and cri-dockerd's streaming server: the lab's pause (its
        # pause.c) answers -v as the real one does, exit 0.
        assert canary["exec"]["exit_code"] == 0, canary
        assert canary["exec"]["stdout"].startswith("shimshift pause"), canary
        assert canary["deleted"] is True
    assert canary_pods(migrated.lab) == []


def test_streaming_server_listens_on_loopback_only(migrated: Migrated) -> None:
    for node in migrated.lab.nodes:
        listeners = cri_dockerd_listeners(migrated.lab, node.name)
        # One streaming server per cri-dockerd: its port is random, its address must be loopback.
        assert listeners, f"cri-dockerd on {node.name} listens on no TCP port"
        assert all(item.startswith("127.0.0.1:") for item in listeners), (node.name, listeners)


def test_kubelet_124_starts_on_the_migrated_files(migrated: Migrated) -> None:
    """Swap in kubelet 1.24.17 (dockershim removed, its flags rejected) with no further edit."""
    assert KUBELET_124.exists(), f"{KUBELET_124} is missing: the lab build makes it (shimshift lab up)"
    lab = migrated.lab
    node = lab.workers[0].name
    lab.exec(node, ["cp", "/usr/bin/kubelet", "/usr/bin/kubelet-1.23"], check=True)
    try:
        subprocess.run(["docker", "cp", str(KUBELET_124), f"{node}:/usr/bin/kubelet.new"], check=True)
        lab.exec(node, ["mv", "/usr/bin/kubelet.new", "/usr/bin/kubelet"], check=True)
        lab.exec(node, ["systemctl", "restart", "kubelet"], check=True)
        wait_until(
            lambda: (
                node_json(lab, node)["status"]["nodeInfo"]["kubeletVersion"] == "v1.24.17"
                and is_ready(node_json(lab, node))
            ),
            timeout=180,
            what=f"{node} Ready with kubelet v1.24.17",
        )
        args = kubelet_args(kubelet_cmdline(lab, node))
        assert args.get("--container-runtime-endpoint") == "unix:///var/run/cri-dockerd.sock", args
        assert_restricted_pod_runs(lab, node)
    finally:
        lab.exec(node, ["mv", "/usr/bin/kubelet-1.23", "/usr/bin/kubelet"], check=True)
        lab.exec(node, ["systemctl", "restart", "kubelet"], check=True)
        wait_until(
            lambda: (
                node_json(lab, node)["status"]["nodeInfo"]["kubeletVersion"] == "v1.23.17"
                and is_ready(node_json(lab, node))
            ),
            timeout=180,
            what=f"{node} back on kubelet v1.23.17",
        )


def assert_restricted_pod_runs(lab: LabInfo, node: str) -> None:
    """The lab's `restricted` Deployment's own pod template, pinned to a node whose kubelet is 1.24: it runs
    there (kubelet 1.24 has no NoNewPrivs admit check), where a 1.23 kubelet on cri-dockerd refuses it."""
    documents = yaml.safe_load_all(render.workloads(first_worker=lab.workers[0].name))
    deployment = next(
        d
        for d in documents
        if d and d["kind"] == "Deployment" and d["metadata"]["name"] == render.RESTRICTED_DEPLOYMENT
    )
    spec = {**deployment["spec"]["template"]["spec"], "nodeName": node}
    assert spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    name = "restricted-on-kubelet-124"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": DEMO}, "spec": spec}
    subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(lab.kubeconfig), "apply", "-f", "-"],
        input=json.dumps(pod),
        text=True,
        check=True,
        timeout=60,
    )
    try:
        wait_until(
            lambda: (
                json.loads(kubectl(lab, "get", "pod", "-n", DEMO, name, "-o", "json"))["status"].get("phase")
                == "Running"
            ),
            timeout=120,
            what=f"pod {name} Running on {node} with kubelet v1.24.17",
        )
    finally:
        kubectl(lab, "delete", "pod", "-n", DEMO, name, "--grace-period=0", "--force", "--wait", "--ignore-not-found")
