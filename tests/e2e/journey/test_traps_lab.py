"""The journey's traps as the lab shows them: `plan --to` on the default 1.23.17 dockershim lab reads each
node's real files, cgroup version and the API servers' manifests over SSH, and says before anything
changes what each release on the road would break. Runs in CI (seconds, the lab left as found).

Matrix: `plan --all --to 1.37.2` without binaries (an operator plans the road before fetching fourteen
releases): the whole schedule (8 drains per node under kubeadm's own checks, 5 with `--skew
kubernetes`), the 1.35 cgroup v1 trap on every node (this machine's kernel runs cgroup v1: blocking, exit
1), the 1.36 WebSocket streaming trap on every node, both warnings with the operator's opt-ins
(`--allow-cgroup-v1`, `--kubelet-websockets-off`) and nothing else blocking; the 1.25
PodSecurityPolicy trap read from the control plane's real kube-apiserver (its mirror pod) once the
plugin is in its manifest, beside a policy the nodes may use as clusters running the plugin have (and
gone again when it is not); every node exactly as found afterwards.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.migrate.helpers import shimshift

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shimshift.lab.model import LabInfo
    from shimshift.lab.state import NodeStateGuard

pytestmark = pytest.mark.e2e

APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
PSP = "PodSecurityPolicy"


@pytest.fixture
def every_node_as_found(lab: LabInfo, node_state: NodeStateGuard) -> Iterator[None]:
    for node in lab.nodes:
        node_state.capture(node.name)
    yield  # node_state checks every captured node when the test ends


def plan_json(lab: LabInfo, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = shimshift(lab, tmp_path / "journal.sqlite", "plan", "--all", *args, "-o", "json", timeout=300)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)


def codes_by_node(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{code: {node: severity}} of the journey's findings that name a node."""
    found: dict[str, dict[str, str]] = {}
    for finding in data["journey"]["findings"]:
        subject = finding["subject"] or {}
        node = subject.get("node") or (subject.get("name") if subject.get("kind") == "node" else None)
        if node is not None:
            found.setdefault(finding["code"], {})[node] = finding["severity"]
    return found


@pytest.mark.usefixtures("every_node_as_found")
def test_plan_to_1_37_on_the_lab_names_every_trap_and_changes_nothing(lab: LabInfo, tmp_path: Path) -> None:
    names = [node.name for node in lab.nodes]

    code, data = plan_json(lab, tmp_path, "--to", "1.37.2")

    assert code == 1  # blocking findings: the run would stop before its first change
    journey = data["journey"]
    assert (journey["control_plane"], journey["target"], journey["rules"]) == ("v1.23.17", "v1.37.2", "kubeadm")
    assert journey["drains"] == dict.fromkeys(names, 8)
    found = codes_by_node(data)
    # Read from each node: the lab's nodes run on this machine's cgroup v1 hierarchy.
    assert found.get("cgroup-v1") == dict.fromkeys(names, "error"), found
    assert found.get("websocket-streaming") == dict.fromkeys(names, "error"), found
    assert "node-not-read" not in found  # every node's files were read over SSH
    assert "psp-admission-plugin" not in found


@pytest.mark.usefixtures("every_node_as_found")
def test_the_operator_s_opt_ins_turn_both_traps_into_recorded_warnings(lab: LabInfo, tmp_path: Path) -> None:
    names = [node.name for node in lab.nodes]
    opt_ins = ("--allow-cgroup-v1", "--kubelet-websockets-off")

    code, data = plan_json(lab, tmp_path, "--to", "1.37.2", "--skew", "kubernetes", *opt_ins)

    assert data["journey"]["drains"] == dict.fromkeys(names, 5)
    found = codes_by_node(data)
    assert found.get("cgroup-v1") == dict.fromkeys(names, "warning"), found
    assert found.get("websocket-streaming") == dict.fromkeys(names, "warning"), found
    # What still blocks is what the lab's 1.23 nodes lack for kubeadm 1.24 (`lab prepare-upgrade` brings it).
    blocking = {f["code"] for f in data["journey"]["findings"] if f["severity"] == "error"}
    assert (code, blocking) == (1, {"crictl-missing"}), data["journey"]["findings"]
    assert set(found["crictl-missing"]) == set(names)


# What a cluster that runs the plugin has: a policy its nodes may use, or admission refuses every pod the
# kubelet mirrors - kube-apiserver's own included, and shimshift reads the flags from that mirror pod.
PRIVILEGED_POLICY = """\
apiVersion: policy/v1beta1
kind: PodSecurityPolicy
metadata:
  name: shimshift-test-privileged
  # kubeadm's static pods ask for the RuntimeDefault seccomp profile; a policy without this refuses them.
  annotations: {seccomp.security.alpha.kubernetes.io/allowedProfileNames: "*"}
spec:
  privileged: true
  allowPrivilegeEscalation: true
  allowedCapabilities: ["*"]
  volumes: ["*"]
  hostNetwork: true
  hostPorts: [{min: 0, max: 65535}]
  hostIPC: true
  hostPID: true
  runAsUser: {rule: RunAsAny}
  seLinux: {rule: RunAsAny}
  supplementalGroups: {rule: RunAsAny}
  fsGroup: {rule: RunAsAny}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: shimshift-test-privileged-psp}
rules:
- {apiGroups: [policy], resources: [podsecuritypolicies], verbs: [use], resourceNames: [shimshift-test-privileged]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: shimshift-test-privileged-psp}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: shimshift-test-privileged-psp}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:nodes"}
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:serviceaccounts"}
"""
KUBECTL = ["kubectl", "--kubeconfig=/etc/kubernetes/admin.conf"]


def _wait_for_apiserver(lab: LabInfo, *, with_psp: bool, timeout: float = 240) -> None:
    """Until kube-apiserver answers and its mirror pod shows the plugin (or not): the kubelet restarts the
    static pod after its manifest changes, which takes the API away for half a minute."""
    control_plane = lab.control_plane.name
    mirror = ["-n", "kube-system", "get", "pod", f"kube-apiserver-{control_plane}"]
    deadline = time.monotonic() + timeout
    while True:
        found = lab.exec(control_plane, [*KUBECTL, *mirror, "-o", "jsonpath={.spec.containers[0].command}"])
        if found.returncode == 0 and (PSP in found.stdout) is with_psp:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"kube-apiserver's mirror pod did not show {'' if with_psp else 'no '}{PSP} in {timeout:.0f}s: "
                f"{found.stdout}{found.stderr}"
            )
        time.sleep(3)


def test_the_psp_plugin_in_the_real_manifest_blocks_a_journey_past_1_24(lab: LabInfo, tmp_path: Path) -> None:
    control_plane = lab.control_plane.name
    saved = lab.exec(control_plane, ["cat", APISERVER_MANIFEST], check=True).stdout
    assert "--enable-admission-plugins=NodeRestriction\n" in saved, saved  # kubeadm's own
    kubeadm_s = "--enable-admission-plugins=NodeRestriction"
    with_psp = saved.replace(kubeadm_s, f"{kubeadm_s},{PSP}")
    lab.exec(control_plane, [*KUBECTL, "apply", "-f", "-"], input=PRIVILEGED_POLICY, check=True)
    try:
        lab.exec(control_plane, ["sh", "-c", 'cat > "$1"', "sh", APISERVER_MANIFEST], input=with_psp, check=True)
        _wait_for_apiserver(lab, with_psp=True)

        code, data = plan_json(lab, tmp_path, "--to", "1.25.16")
    finally:
        lab.exec(control_plane, ["sh", "-c", 'cat > "$1"', "sh", APISERVER_MANIFEST], input=saved, check=True)
        _wait_for_apiserver(lab, with_psp=False)
        lab.exec(control_plane, [*KUBECTL, "delete", "--ignore-not-found", "-f", "-"], input=PRIVILEGED_POLICY)
    _, without = plan_json(lab, tmp_path, "--to", "1.25.16")

    assert code == 1
    psp = [f for f in data["journey"]["findings"] if f["code"] == "psp-admission-plugin"]
    assert [(f["severity"], f["subject"]["name"], f["subject"]["node"]) for f in psp] == [
        ("error", APISERVER_MANIFEST, control_plane)
    ], psp
    # The control: the same road with kubeadm's own manifest back says nothing of the plugin.
    assert "psp-admission-plugin" not in {f["code"] for f in without["journey"]["findings"]}
