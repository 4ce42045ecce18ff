"""The real kubelet 1.23.17 on cri-dockerd agrees with the detection rule, and the opt-in is recorded.

Matrix: one worker migrated with `--accept-refused-hardened-pods` while the `restricted` Deployment runs;
the run's report records the opt-in and names the Deployment. Then, pinned to that node: a pod whose
container sets allowPrivilegeEscalation: false stays Pending with reason NoNewPrivs (what the detection
flags); a pod that sets it only on an init container runs (the kubelet walks spec.containers only, so
the detection does not flag it); a plain pod runs. Each pod is checked against the pure rule too. The
node is rolled back afterwards.
"""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from shimshift.core.hardened_pods import refused_containers
from shimshift.lab import render
from shimshift.lab.model import WORKLOAD_IMAGE

from .conftest import restore_demo_workloads
from .helpers import DEMO, KUBECTL, assert_on_cri_dockerd, back_to_dockershim, kubectl, shimshift, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e
KEEPS_RESTRICTED_DEMO = True  # this module is about it (see conftest)
NAMESPACE = "shimshift-e2e-nnp"
NO_ESCALATION = {"allowPrivilegeEscalation": False}


def container(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": WORKLOAD_IMAGE, "imagePullPolicy": "Never", "command": command, **extra}


def pinned_pod(name: str, node: str, *, main: dict[str, Any], init: dict[str, Any] | None = None) -> dict[str, Any]:
    sleep = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    spec: dict[str, Any] = {
        "nodeName": node,
        "terminationGracePeriodSeconds": 1,
        "containers": [container("app", sleep, securityContext=main)],
    }
    if init is not None:
        spec["initContainers"] = [container("init", ["true"], securityContext=init)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


def pod_status(lab: LabInfo, name: str) -> dict[str, Any]:
    body = json.loads(kubectl(lab, "-n", NAMESPACE, "get", "pod", name, "-o", "json"))
    status: dict[str, Any] = body.get("status", {})
    return status


def test_kubelet_refuses_exactly_what_the_rule_flags(lab: LabInfo, tmp_path: Path) -> None:
    restore_demo_workloads(lab)  # the restricted Deployment runs (a lab built before it gets it here)
    node = lab.workers[1].name
    journal = tmp_path / "journal.sqlite"
    reports = tmp_path / "reports"
    pods = {
        "hardened": pinned_pod("hardened", node, main=NO_ESCALATION),
        "init-only": pinned_pod("init-only", node, main={}, init=NO_ESCALATION),
        "plain": pinned_pod("plain", node, main={}),
    }
    try:
        result = shimshift(
            lab,
            journal,
            "migrate",
            node,
            "--force",
            "--delete-emptydir-data",
            "--accept-refused-hardened-pods",
            "--report-dir",
            str(reports),
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert_on_cri_dockerd(lab, node)
        markdown = next(reports.glob("shimshift-*.md")).read_text()
        assert "**Opt-in `--accept-refused-hardened-pods`**" in markdown
        assert f"`Deployment {DEMO}/{render.RESTRICTED_DEPLOYMENT}`" in markdown
        report = json.loads(next(reports.glob("shimshift-*.json")).read_text())
        assert report["options"]["accept_refused_hardened_pods"] is True

        kubectl(lab, "create", "namespace", NAMESPACE)
        for body in pods.values():
            create(lab, body)

        def settled() -> bool:
            states = {name: pod_status(lab, name) for name in pods}
            return (
                states["hardened"].get("reason") == "NoNewPrivs"
                and states["init-only"].get("phase") == "Running"
                and states["plain"].get("phase") == "Running"
            )

        wait_until(settled, timeout=120, what="the kubelet's verdict on the three pinned pods")
        hardened = pod_status(lab, "hardened")
        assert hardened["phase"] == "Pending"
        assert "Cannot enforce NoNewPrivs" in hardened.get("message", ""), hardened
        # The pure rule says the same about each spec.
        assert [name for name, body in pods.items() if refused_containers(body["spec"])] == ["hardened"]
    finally:
        kubectl(lab, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
        back_to_dockershim(lab, journal, node)


def create(lab: LabInfo, body: dict[str, Any]) -> None:
    subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(lab.kubeconfig), "create", "-f", "-"],
        input=json.dumps(body),
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )
