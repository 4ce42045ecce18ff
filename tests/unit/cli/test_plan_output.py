"""`shimshift plan`'s rendering of one node's plan, text and JSON (the cluster part is a lab test).

Matrix: a dockershim node (every step, the file diffs, the annotation, cri-dockerd's moved settings, the
kubelet flags verify expects), a node already on cri-dockerd (nothing to do), a refused node (its findings
only).
"""

from __future__ import annotations

from shimshift.cli.flags_cmd import _render_plan
from shimshift.cli.migrate_cmd import _plan_data, _plan_text
from shimshift.core.node_files import CRI_DOCKERD_DROPIN, KUBEADM_FLAGS_ENV
from shimshift.core.procedures.migration import PreflightFacts, plan_from_facts
from shimshift.orchestrator.session import NodePlanReport

from ..core.nodes import cri_dockerd_node, dockershim_node

ENDPOINT = "unix:///var/run/cri-dockerd.sock"


def report(files: dict[str, bytes | None], annotation: str) -> NodePlanReport:
    facts = PreflightFacts("v1.23.17", "0.3.17", "systemd", files, annotation)
    return NodePlanReport("w1", plan_from_facts(facts, "w1"), None)


def test_a_dockershim_node_s_plan() -> None:
    item = report(dockershim_node(23), "/var/run/dockershim.sock")
    text = _plan_text(item).splitlines()
    assert text[:3] == ["== w1", "1. cordon (recorded as ours in shimshift.io/cordoned-by)", "3. write:"]
    assert f"4. annotate kubeadm.alpha.kubernetes.io/cri-socket: /var/run/dockershim.sock -> {ENDPOINT}" in text
    assert (
        "5. cri-dockerd (restart): --pod-infra-container-image=registry.k8s.io/pause:3.6 --network-plugin=cni "
        "--cri-dockerd-root-directory=/var/lib/dockershim --streaming-bind-addr=127.0.0.1"
    ) in text
    verify = f"--container-runtime=remote --container-runtime-endpoint={ENDPOINT}"
    assert f"6. restart kubelet; verify it runs with {verify}" in text
    data = _plan_data(item)
    assert [f["path"] for f in data["files"]] == [KUBEADM_FLAGS_ENV, CRI_DOCKERD_DROPIN]
    assert not any(f["removed"] for f in data["files"])
    assert data["annotation"] == {"before": "/var/run/dockershim.sock", "after": ENDPOINT}
    assert data["cri_dockerd"]["restart"] is True and data["noop"] is None and data["notes"] == []


def test_a_node_already_on_cri_dockerd_has_nothing_to_do() -> None:
    item = report(cri_dockerd_node(23), ENDPOINT)
    assert _plan_text(item).splitlines()[-1].startswith("nothing to do: the kubelet already uses cri-dockerd")
    assert _plan_data(item)["files"] == []


def test_a_refused_node_shows_its_findings_only() -> None:
    item = NodePlanReport("w1", None, None, "cri-dockerd is not installed")
    assert _plan_text(item) == "== w1"
    assert "files" not in _plan_data(item)


def test_plan_warnings_read_the_same_in_plan_and_flags_plan() -> None:
    # No --network-plugin and no pause image on the kubelet: two warnings, each with its code.
    files = dockershim_node(23, extra=None)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS=""\n'
    plan = plan_from_facts(PreflightFacts("v1.23.17", "0.3.17", "systemd", files, None), "w1")
    assert [w.code for w in plan.warnings] == ["network-plugin-none", "pause-image-default"]
    expected = [f"warning: {w.message}" for w in plan.warnings]
    assert _plan_text(NodePlanReport("w1", plan, None)).splitlines()[-2:] == expected
    assert _render_plan(plan).splitlines()[-2:] == expected
    notes = _plan_data(NodePlanReport("w1", plan, None))["notes"]
    assert [(n["severity"], n["code"], n["subject"]) for n in notes] == [
        ("warning", "network-plugin-none", {"kind": "node", "name": "w1"}),
        ("warning", "pause-image-default", {"kind": "node", "name": "w1"}),
    ]
